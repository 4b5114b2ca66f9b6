//! The Windows installer, under Wine with a real box: `msiexec /i lanterne-station.msi /qn
//! BOX=… ENROL=CODE@FINGERPRINT` installs the agent in `C:\Program Files\Lanterne`, enrols the
//! PC with the box (as LocalSystem, before the service starts), installs and starts the
//! `LanterneStation` service, whose link then comes online at the box; `msiexec /x` stops and
//! removes the service and the program and keeps the school's `station.toml`. A wrong
//! enrolment code fails the whole installation and leaves no program behind.
//!
//! Run by `scripts/test-windows.sh`, which builds the MSI (`scripts/build-msi.sh`) and passes
//! it as `LANTERNE_WINDOWS_MSI`, with the Wine prefix (`WINEPREFIX`) and display. Ignored in
//! a plain `cargo test`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use lanterne_scenarios::BoxProcess;

const SERVICE: &str = "LanterneStation";

fn msi() -> PathBuf {
    PathBuf::from(std::env::var_os("LANTERNE_WINDOWS_MSI").expect(
        "LANTERNE_WINDOWS_MSI is not set: run this scenario through scripts/test-windows.sh",
    ))
}

fn drive_c() -> PathBuf {
    PathBuf::from(std::env::var_os("WINEPREFIX").expect("WINEPREFIX is not set")).join("drive_c")
}

/// A table of the MSI as `msiinfo export` prints it: the rows after the three header lines.
fn table(msi: &Path, name: &str) -> Vec<Vec<String>> {
    let out = Command::new("msiinfo")
        .arg("export")
        .arg(msi)
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "msiinfo export {name} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(3)
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Runs `wine` with `args` and returns its exit status and what it printed. The output goes
/// through a file, not a pipe: the first Wine program in a prefix starts the Wine server and
/// services (here: the station service the installer starts), which inherit its output and
/// keep a pipe open long after the program itself has ended.
fn wine(args: &[&str]) -> (ExitStatus, String) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("wine")
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .status()
        .unwrap();
    (
        status,
        std::fs::read_to_string(log.path()).unwrap_or_default(),
    )
}

/// `wine msiexec` with these arguments; its exit code is Windows' installer result (low byte).
fn msiexec(args: &[&str]) -> (ExitStatus, String) {
    let mut all = vec!["msiexec"];
    all.extend_from_slice(args);
    wine(&all)
}

fn wine_msi_path(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// What `sc query` says about the service (Windows' own service control tool, under Wine).
fn sc_query() -> (bool, String) {
    let (status, said) = wine(&["sc", "query", SERVICE]);
    (status.success(), said)
}

#[test]
#[ignore = "needs the MSI from scripts/build-msi.sh: run by scripts/test-windows.sh"]
fn the_msi_declares_the_service_the_enrolment_and_a_kept_allow_list() {
    let msi = msi();
    let services = table(&msi, "ServiceInstall");
    let svc = services
        .iter()
        .find(|r| r[1] == SERVICE)
        .unwrap_or_else(|| panic!("no {SERVICE} in ServiceInstall: {services:?}"));
    // Own process (16), started at boot (2), as LocalSystem, running `… service`.
    assert_eq!(
        (&svc[3][..], &svc[4][..], &svc[8][..], &svc[10][..]),
        ("16", "2", "LocalSystem", "service"),
        "{svc:?}"
    );
    let actions = table(&msi, "CustomAction");
    let enrol = actions.iter().find(|r| r[0] == "Enrol").unwrap();
    let ty: u32 = enrol[1].parse().unwrap();
    // Deferred, not impersonated, its command line kept out of the log.
    assert_eq!(ty & 0x400, 0x400, "{enrol:?}");
    assert_eq!(ty & 0x800, 0x800, "{enrol:?}");
    assert_eq!(ty & 0x2000, 0x2000, "{enrol:?}");
    assert!(enrol[3].contains("[BOX]") && enrol[3].contains("[ENROL]"));
    let components = table(&msi, "Component");
    let config = components.iter().find(|r| r[0] == "Config").unwrap();
    let attributes: u32 = config[3].parse().unwrap();
    assert_eq!(
        attributes & 0x90,
        0x90,
        "station.toml permanent, never overwritten"
    );
    let props = table(&msi, "Property");
    let secure = props
        .iter()
        .find(|r| r[0] == "SecureCustomProperties")
        .unwrap();
    assert!(secure[1].split(';').any(|p| p == "ENROL"), "{secure:?}");
    assert!(secure[1].split(';').any(|p| p == "BOX"), "{secure:?}");
}

#[tokio::test]
#[ignore = "needs the MSI, Wine and Xvfb: run by scripts/test-windows.sh"]
async fn the_msi_enrols_starts_the_service_and_uninstalls_cleanly_under_wine() {
    let msi = msi();
    let msi_arg = wine_msi_path(&msi);
    let c = drive_c();
    let exe = c.join("Program Files/Lanterne/lanterne-station.exe");
    let data = c.join("ProgramData/Lanterne");
    let b = BoxProcess::start().await.unwrap();

    // A code the box never issued: the enrolment fails, and with it the installation.
    let token = b.enrol_tokens(1).unwrap().remove(0);
    let box_arg = format!("BOX={}", b.ready.https_url);
    let wrong = format!("ENROL=0000000000@{}", token.ca_fingerprint);
    let (status, _) = msiexec(&["/i", &msi_arg, "/qn", &box_arg, &wrong]);
    // Wine's installer says 1627 (function failed) where Windows says 1603 (fatal error).
    assert!(
        !status.success(),
        "an installation with a wrong enrolment code succeeded"
    );
    assert!(
        !exe.exists(),
        "a failed installation left {}",
        exe.display()
    );
    assert!(!sc_query().0, "a failed installation left the service");

    // The right code: installed, enrolled, the service started and online at the box.
    let right = format!("ENROL={}@{}", token.code, token.ca_fingerprint);
    let (status, said) = msiexec(&["/i", &msi_arg, "/qn", &box_arg, &right]);
    assert!(
        status.success(),
        "msiexec /i failed ({:?}): {said}",
        status.code()
    );
    assert!(exe.is_file(), "{} is missing", exe.display());
    assert!(
        data.join("station.json").is_file(),
        "the PC was not enrolled"
    );
    assert!(
        data.join("station.toml").is_file(),
        "no allow-list installed"
    );
    let line = b
        .wait_log_line(&["station online"], Duration::from_secs(90))
        .await
        .unwrap();
    assert!(!line.is_empty());
    let (known, said) = sc_query();
    assert!(known && said.contains("RUNNING"), "sc query: {said}");

    // The school edits its allow-list; uninstalling keeps it and removes everything else.
    let toml = data.join("station.toml");
    std::fs::write(&toml, "# edited by the school\n").unwrap();
    let (status, said) = msiexec(&["/x", &msi_arg, "/qn"]);
    assert!(
        status.success(),
        "msiexec /x failed ({:?}): {said}",
        status.code()
    );
    assert!(!exe.exists(), "uninstalling left {}", exe.display());
    let (known, said) = sc_query();
    assert!(!known, "uninstalling left the service: {said}");
    assert_eq!(
        std::fs::read_to_string(&toml).unwrap(),
        "# edited by the school\n",
        "uninstalling must keep the school's allow-list"
    );
}
