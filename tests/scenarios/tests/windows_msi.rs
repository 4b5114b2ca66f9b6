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
use std::process::{Command, Output};
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

/// `wine msiexec` with these arguments; its exit code is Windows' installer result (low byte).
fn msiexec(args: &[&str]) -> Output {
    Command::new("wine")
        .arg("msiexec")
        .args(args)
        .output()
        .unwrap()
}

fn wine_msi_path(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// What `sc query` says about the service (Windows' own service control tool, under Wine).
fn sc_query() -> (bool, String) {
    let out = Command::new("wine")
        .args(["sc", "query", SERVICE])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
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
    let out = msiexec(&["/i", &msi_arg, "/qn", &box_arg, &wrong]);
    assert!(
        !out.status.success(),
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
    let out = msiexec(&["/i", &msi_arg, "/qn", &box_arg, &right]);
    assert!(
        out.status.success(),
        "msiexec /i failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
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
    let out = msiexec(&["/x", &msi_arg, "/qn"]);
    assert!(
        out.status.success(),
        "msiexec /x failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
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
