//! The Windows station agent, under Wine on Xvfb, with a real box: the agent enrols itself
//! (`lanterne-station.exe enrol`), a Windows program covers the Wine desktop with one colour,
//! the agent runs (`lanterne-station.exe desktop`: GDI capture, OpenH264), and the box's focus
//! view, opened like a tablet, decodes that colour.
//!
//! Run by `scripts/test-windows.sh`, which cross-builds the Windows programs, makes the Wine
//! prefix and the display, and passes them in the environment: `LANTERNE_WINDOWS_BIN_DIR`
//! (the folder of `lanterne-station.exe` and `examples/colour-window.exe`), `WINEPREFIX`,
//! `DISPLAY`. Ignored in a plain `cargo test`, which has none of them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanterne_scenarios::{close_to, decode_last_rgb, mean_rgb, next_item, BoxProcess, WsItem};

/// A process under Wine, ended with the test.
struct WineProcess(Child);

impl Drop for WineProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn windows_bin_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("LANTERNE_WINDOWS_BIN_DIR").expect(
        "LANTERNE_WINDOWS_BIN_DIR is not set: run this scenario through scripts/test-windows.sh",
    ))
}

/// A Linux path as the Windows program sees it (Wine maps Z: to /).
fn wine_path(p: &Path) -> String {
    format!("Z:{}", p.display())
}

fn wine(exe: &Path) -> Command {
    let mut c = Command::new("wine");
    c.arg(exe);
    c
}

#[tokio::test]
#[ignore = "needs the cross-built Windows agent, Wine and Xvfb: run by scripts/test-windows.sh"]
async fn a_windows_agent_under_wine_enrols_and_its_screen_reaches_the_focus_view() {
    let bins = windows_bin_dir();
    let agent = bins.join("lanterne-station.exe");
    let painter = bins.join("examples").join("colour-window.exe");
    let b = BoxProcess::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("station");

    // The agent enrols itself with a one-time code, as an admin would at install time.
    let token = b.enrol_tokens(1).unwrap().remove(0);
    let out = wine(&agent)
        .args(["enrol", "--data-dir", &wine_path(&data)])
        .args(["--box", &b.ready.https_url, "--hostname", "poste-wine"])
        .args([
            "--token",
            &format!("{}@{}", token.code, token.ca_fingerprint),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "enrolment failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Enrolled as 'poste-wine'"), "{said}");
    let station_id: u32 = said
        .split("(station ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no station id in: {said}"));

    // A Windows program paints the desktop.
    let painted = [200u8, 50, 20];
    let mut painter = WineProcess(
        wine(&painter)
            .arg("C83214")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(painter.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "shown", "the colour window did not open");

    // The agent runs in the session: link, capture, encoder, watched badge.
    let _agent = WineProcess(
        wine(&agent)
            .args(["desktop", "--data-dir", &wine_path(&data)])
            .args(["--config", &wine_path(&dir.path().join("station.toml"))])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    // The focus view is refused until the station is online.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ws = loop {
        match https
            .websocket(&format!("/api/stations/{station_id}/focus"), &cookie)
            .await
        {
            Ok(ws) => break ws,
            Err(e) => {
                assert!(Instant::now() < deadline, "focus view never opened: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let mut aus: Vec<Bytes> = Vec::new();
    while aus.len() < 30 {
        // A still screen sends its keyframe and then nothing: two quiet seconds after a
        // frame mean the picture is complete.
        let wait = Duration::from_secs(if aus.is_empty() { 30 } else { 2 });
        match next_item(&mut ws, wait).await {
            Ok(WsItem::Video(v)) => {
                assert!(!aus.is_empty() || v.keyframe, "viewers start at a keyframe");
                aus.push(v.au);
            }
            Ok(WsItem::Json(j)) => assert_ne!(j["type"], "ended", "focus ended early: {j}"),
            Err(_) if !aus.is_empty() => break,
            Err(e) => panic!("no video from the Windows agent: {e}"),
        }
    }
    let img = decode_last_rgb(&aus).unwrap();
    let (w, h, _) = img;
    // Left of the centre, away from the watched badge (top right).
    let seen = mean_rgb(&img, w / 4, h / 2, 8);
    assert!(
        close_to(seen, painted, 30),
        "the Windows screen arrives as {seen:?}, expected about {painted:?}"
    );
    b.wait_log_line(
        &["station online", "poste-wine", "capture=gdi"],
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    drop(painter);
}
