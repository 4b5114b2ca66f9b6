//! The Windows station agent, under Wine on Xvfb, with a real box: the agent enrols itself
//! (`lanterne-station.exe enrol`), a Windows program covers the Wine desktop with one colour,
//! the agent runs split as on a real PC, two processes joined by the named pipe (`run`: the
//! service's link; `session`: GDI capture, OpenH264, the screen), and the box's focus view,
//! opened like a tablet, decodes that colour. Then the room lock puts the lock screen
//! up (seen through the same focus view) and takes it down, a command the box approved but
//! the PC's own allow-list does not list is refused by the station, and a teacher's message
//! appears on the Wine screen, is acknowledged with the Enter key (through the X server, as a
//! student's keyboard would) and the box records it as read. Last, remote help: the consent
//! prompt appears on the Wine screen and the student accepts it with the mouse, the helper's
//! click (played by the agent with SendInput) presses the banner's "Arrêter", the box records
//! that the help ended, and input after that is refused. Then a demo of another station (a
//! Linux agent with a synthetic screen, in this process) is played full screen by the Windows
//! agent, which reports to the box the colour its OpenH264 player decoded.
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
use lanterne_scenarios::{
    close_to, decode_last_rgb, development_config, mean_rgb, next_item, BoxProcess, Https, WsItem,
};

/// The Windows lock screen's night blue (`platform::windows::screen::LOCK_RGB`).
const LOCK_RGB: [u8; 3] = [0x0b, 0x14, 0x26];

/// The named pipe of the station under test (not the default, to show the configuration
/// is followed by the service; the helper is told the same).
const PIPE: &str = r"\\.\pipe\lanterne-station-scenario";

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
async fn a_windows_agent_under_wine_streams_locks_refuses_unlisted_commands_and_acknowledges_messages(
) {
    let bins = windows_bin_dir();
    let agent = bins.join("lanterne-station.exe");
    let painter = bins.join("examples").join("colour-window.exe");
    // The box approves a command that this PC's own list does not have.
    let b = BoxProcess::start_with_config(&format!(
        "{}\n[[commands]]\nname = \"marque\"\nprogram = \"/usr/bin/touch\"\nargs = [\"x\"]\n",
        development_config()
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("station");
    let station_toml = dir.path().join("station.toml");
    std::fs::write(
        &station_toml,
        format!("[[commands]]\nprogram = 'C:\\windows\\system32\\cmd.exe'\nargs = ['/c', 'echo', 'bonjour']\n\
         [session]\nsocket = '{PIPE}'\n"),
    )
    .unwrap();

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

    // The agent runs split: the service (link, commands) and the session helper (capture,
    // encoder, watched badge, lock, messages) on the named pipe. Under Wine both run as the
    // one Wine user, so the helper is told to trust that account instead of LocalSystem.
    let _service = WineProcess(
        wine(&agent)
            .args(["run", "--data-dir", &wine_path(&data)])
            .args(["--config", &wine_path(&station_toml)])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // Wine's account is the Unix user's.
    let id = Command::new("id").arg("-un").output().unwrap();
    let wine_user = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let _helper = WineProcess(
        wine(&agent)
            .args(["session", "--socket", PIPE, "--service-user", &wine_user])
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
    let img = focus_picture(&https, &cookie, station_id).await;
    let (w, h, _) = img;
    // Left of the centre, away from the watched badge (top right).
    let seen = mean_rgb(&img, w / 4, h / 2, 8);
    assert!(
        close_to(seen, painted, 30),
        "the Windows screen arrives as {seen:?}, expected about {painted:?}"
    );
    // It enrolled with one of this PC's MAC addresses (Wine lists the host's adapters, in
    // its own order, so not necessarily the one the Linux agent would pick).
    let stations = https
        .request("GET", "/api/stations", None, &[("cookie", &cookie)])
        .await
        .unwrap()
        .json();
    let mac = stations[0]["mac"].as_str().unwrap_or_default().to_string();
    let host_macs: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("address")).ok())
        .map(|a| a.trim().to_string())
        .collect();
    assert!(
        mac != "00:00:00:00:00:00" && host_macs.contains(&mac),
        "enrolled with {mac:?}; this machine's are {host_macs:?}"
    );
    // The service may reach the box before its helper connects (then it says "no session"):
    // the colour above is what proves the helper's GDI capture.
    b.wait_log_line(&["station online", "poste-wine"], Duration::from_secs(5))
        .await
        .unwrap();

    // The room lock: the station reports the lock screen up, and its stream shows it.
    let origin = https.origin();
    let lock = |locked: bool| {
        let (https, cookie, origin) = (&https, &cookie, &origin);
        async move {
            let res = https
                .request(
                    "POST",
                    "/api/room/lock",
                    Some(serde_json::json!({ "locked": locked })),
                    &[("cookie", cookie), ("origin", origin)],
                )
                .await
                .unwrap();
            assert_eq!(res.status, 200);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let room = https
                    .request("GET", "/api/room", None, &[("cookie", cookie)])
                    .await
                    .unwrap()
                    .json();
                if room["mosaic"]["tiles"][0]["locked"] == locked {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the station never reported locked = {locked}: {room}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    lock(true).await;
    let img = focus_picture(&https, &cookie, station_id).await;
    let seen = mean_rgb(&img, img.0 / 4, img.1 / 2, 8);
    assert!(
        close_to(seen, LOCK_RGB, 30),
        "the locked Windows screen shows {seen:?}, expected the lock screen {LOCK_RGB:?}"
    );
    lock(false).await;
    let img = focus_picture(&https, &cookie, station_id).await;
    let seen = mean_rgb(&img, img.0 / 4, img.1 / 2, 8);
    assert!(
        close_to(seen, painted, 30),
        "after the lock the Windows screen shows {seen:?}, expected {painted:?}"
    );

    // A command the box approved but this PC's own list lacks is refused by the station.
    let res = https
        .post_json(
            &cookie,
            "/api/commands/run",
            serde_json::json!({ "name": "marque", "stations": null }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["sent_to"], serde_json::json!(["poste-wine"]));
    let run_id = res.json()["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        let run = https
            .request(
                "GET",
                &format!("/api/commands/runs/{run_id}"),
                None,
                &[("cookie", &cookie)],
            )
            .await
            .unwrap()
            .json();
        if run["results"][0]["done"] == true {
            break run["results"][0].clone();
        }
        assert!(Instant::now() < deadline, "no result in time: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(result["exit_code"], serde_json::Value::Null, "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("'/usr/bin/touch' is not in this station's allow-list")
            && error.contains("station.toml"),
        "{result}"
    );

    // A teacher's message: on the Wine screen, read with Enter, recorded by the box.
    let res = https
        .post_json(
            &cookie,
            "/api/messages",
            serde_json::json!({ "text": "Enregistrez votre travail.", "stations": null }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let message_id = res.json()["id"].as_u64().unwrap();
    let window = x_window_named("Message de admin");
    let status = Command::new("xdotool")
        .args(["windowfocus", "--sync", &window, "key", "Return"])
        .status()
        .expect("xdotool (scripts/setup.sh installs it)");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = https
            .request("GET", "/api/messages", None, &[("cookie", &cookie)])
            .await
            .unwrap()
            .json();
        let m = list
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == message_id)
            .cloned()
            .unwrap();
        if m["targets"][0]["read"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the read never reached the box: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Remote help: the consent prompt on the Wine screen, accepted with the student's mouse
    // (through the X server); then the helper's input, played by the agent with SendInput,
    // clicks the banner's "Arrêter", and the box hears that the student's side ended it.
    let help_path = format!("/api/stations/{station_id}/help");
    let res = https
        .post_json(&cookie, &help_path, serde_json::json!({}))
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let prompt = x_window_named("Lanterne — demande de prise en main");
    let (_, _, pw, ph) = x_geometry(&prompt);
    // The prompt's bottom-right corner is its "Accepter" button. Clicks in the prompt's
    // first 0.7 s do not count (they were meant for what was under it): click until it takes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = get_json(&https, &cookie, &help_path).await;
        if view["help"]["state"] == "active" {
            break;
        }
        assert!(Instant::now() < deadline, "never accepted: {view}");
        // The prompt may be gone by the time xdotool runs: only the state counts.
        let _ = Command::new("xdotool")
            .args(["mousemove", "--window", &prompt])
            .args([(pw - 20).to_string(), (ph - 20).to_string()])
            .args(["click", "1"])
            .status();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let banner = x_window_named("Lanterne — prise en main en cours");
    let (bx, by, bw, bh) = x_geometry(&banner);
    let (sw, sh) = x_display_size();
    // "Arrêter" is at the banner's right end, as a fraction of the whole screen.
    let frac = |v: i64, size: i64| (v * 65535 / (size - 1)).clamp(0, 65535);
    let (fx, fy) = (frac(bx + bw - 20, sw), frac(by + bh / 2, sh));
    let res = https
        .post_json(
            &cookie,
            &format!("{help_path}/input"),
            serde_json::json!({ "events": [
                { "PointerMove": { "x": fx, "y": fy } },
                { "Button": { "button": "Left", "pressed": true } },
                { "Button": { "button": "Left", "pressed": false } },
            ] }),
        )
        .await;
    assert_eq!(res.status, 204, "{}", String::from_utf8_lossy(&res.body));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = get_json(&https, &cookie, &help_path).await;
        let ended = view["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["step"] == "ended" && s["by"] == "student")
        });
        if ended && view["help"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the helper's click on \"Arrêter\" never ended the help: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = https
        .post_json(
            &cookie,
            &format!("{help_path}/input"),
            serde_json::json!({ "events": [{ "PointerMove": { "x": 0, "y": 0 } }] }),
        )
        .await;
    assert_eq!(res.status, 409, "input after the end is refused");

    // A demo: a Linux station's synthetic screen, relayed by the box, played full screen by
    // the Windows agent, whose OpenH264 player reports the colour it decoded.
    let source_colour = lanterne_station::PALETTE[2];
    let source_dir = dir.path().join("source");
    let source_id = b
        .enrol(&source_dir, "poste-source")
        .await
        .unwrap()
        .station_id;
    let _source = lanterne_station::spawn_station(
        &source_dir,
        lanterne_station::SourceSpec::Live(lanterne_media::CaptureSource::Synthetic {
            label: "poste-source".into(),
            rgb: source_colour,
        }),
        std::sync::Arc::new(lanterne_station::screen::SimulatedScreen::default()),
        std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &lanterne_media::init().unwrap(),
        "poste-source".into(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = https
            .post_json(
                &cookie,
                "/api/demo",
                serde_json::json!({ "source": source_id, "targets": [station_id], "mode": "fullscreen" }),
            )
            .await;
        if res.status == 200 {
            break;
        }
        // The source may still be connecting.
        assert!(
            Instant::now() < deadline,
            "the demo never started: {} {}",
            res.status,
            String::from_utf8_lossy(&res.body)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let room = get_json(&https, &cookie, "/api/room").await;
        let health = &room["demo"]["receivers"][0]["health"];
        let centre: Option<[u8; 3]> = serde_json::from_value(health["centre_rgb"].clone()).ok();
        if health["frames_decoded"].as_u64() > Some(10)
            && centre.is_some_and(|c| close_to(c, source_colour, 40))
        {
            assert_eq!(room["demo"]["receivers"][0]["name"], "poste-wine");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Windows agent never decoded the demo in the source's colour: {}",
            room["demo"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let res = https
        .post_json(&cookie, "/api/demo/stop", serde_json::json!({}))
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    drop(painter);
}

async fn get_json(https: &Https, cookie: &str, path: &str) -> serde_json::Value {
    https
        .request("GET", path, None, &[("cookie", cookie)])
        .await
        .unwrap()
        .json()
}

/// (x, y, width, height) of an X window.
fn x_geometry(window: &str) -> (i64, i64, i64, i64) {
    let out = Command::new("xdotool")
        .args(["getwindowgeometry", "--shell", window])
        .output()
        .expect("xdotool (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |key: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in xdotool's answer: {text}"))
    };
    (get("X"), get("Y"), get("WIDTH"), get("HEIGHT"))
}

/// The X display's size in pixels.
fn x_display_size() -> (i64, i64) {
    let out = Command::new("xdotool")
        .arg("getdisplaygeometry")
        .output()
        .expect("xdotool (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<i64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// The Windows service under Wine's service control manager: installed with `sc create` as
/// the MSI does (`lanterne-station.exe service`), started with `net start`, it starts the
/// session helper in the console session through `WTSQueryUserToken` and
/// `CreateProcessAsUserW` (Wine hands out the one Wine user's token), the helper connects on
/// the default pipe, and the box sees the station. A helper that dies is started again; when
/// the service stops, its helper ends.
///
/// What Wine cannot show: LocalSystem (every Wine process runs as the one Wine user, so the
/// helper is told to trust that account, as the service always tells it its own), sessions
/// and logons (Wine has one session), the pipe's DACL (not enforced by Wine). On a real PC,
/// as an administrator: `sc create LanterneStation binPath= "C:\Program Files\Lanterne\
/// lanterne-station.exe service" start= auto obj= LocalSystem`, `net start LanterneStation`,
/// then in Task Manager's Details tab `lanterne-station.exe` runs twice: as SYSTEM in session
/// 0 and as the logged-in user in their session; logging off and on again starts a new
/// helper; `%ProgramData%\Lanterne\service.log` says each step.
#[tokio::test]
#[ignore = "needs the cross-built Windows agent, Wine and Xvfb: run by scripts/test-windows.sh"]
async fn a_windows_service_under_wine_starts_restarts_and_stops_its_session_helper() {
    let agent = windows_bin_dir().join("lanterne-station.exe");
    let b = BoxProcess::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("station");
    let station_toml = dir.path().join("station.toml");
    std::fs::write(&station_toml, "").unwrap();
    let token = b.enrol_tokens(1).unwrap().remove(0);
    let out = wine(&agent)
        .args(["enrol", "--data-dir", &wine_path(&data)])
        .args(["--box", &b.ready.https_url, "--hostname", "poste-service"])
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

    // Wine shuts its prefix down (services included) once no program but its own services
    // runs: a Windows program stays open throughout, as the user's desktop would on a PC.
    let mut painter = WineProcess(
        wine(&windows_bin_dir().join("examples").join("colour-window.exe"))
            .arg("3C64C8")
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

    let bin_path = format!(
        "{} service --data-dir {} --config {}",
        wine_path(&agent),
        wine_path(&data),
        wine_path(&station_toml)
    )
    .replace('/', "\\");
    // To a file, not a pipe: the service and Wine's own processes that these commands
    // start inherit the output and would hold a pipe open.
    let sc_out = dir.path().join("sc.txt");
    let sc = |args: &[&str]| {
        let out = std::fs::File::create(&sc_out).unwrap();
        let status = Command::new("wine")
            .args(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        let said = std::fs::read_to_string(&sc_out).unwrap_or_default();
        assert!(status.success(), "wine {args:?}: {said}");
    };
    sc(&["sc", "create", "LanterneStation", "binPath=", &bin_path]);
    let _installed = Uninstall;
    sc(&["net", "start", "LanterneStation"]);

    let log = data.join("service.log");
    // The helper tries DXGI Desktop Duplication first; Wine refuses it, so GDI is reported.
    wait_for(&log, &["session connected", "capture=gdi"], 1);
    b.wait_log_line(
        &["station online", "poste-service"],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let first = helper_pids();
    assert_eq!(first.len(), 1, "one session helper: {first:?}");

    // A helper that is ended (as from Task Manager) is started again, and connects again.
    let started = std::fs::read_to_string(&log).unwrap();
    let windows_pid = started
        .lines()
        .find(|l| l.contains("session helper started"))
        .and_then(|l| l.split("pid=").nth(1))
        .and_then(|p| p.split_whitespace().next())
        .expect("the service logs the helper's process id")
        .to_string();
    sc(&["taskkill", "/f", "/pid", &windows_pid]);
    wait_for(&log, &["the session helper exited"], 1);
    wait_for(&log, &["session connected", "capture=gdi"], 2);

    // Stopping the service ends its helper.
    sc(&["net", "stop", "LanterneStation"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !helper_pids().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the session helper outlived the service: {:?}",
            helper_pids()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(painter);
}

/// Removes the test's service from Wine's service manager, whatever the test's outcome.
struct Uninstall;

impl Drop for Uninstall {
    fn drop(&mut self) {
        for args in [["net", "stop"], ["sc", "delete"]] {
            let _ = Command::new("wine")
                .args(args)
                .arg("LanterneStation")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Waits up to 60 s until `count` lines of the file contain all of `needles`.
fn wait_for(path: &Path, needles: &[&str], count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let found = text
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count();
        if found >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} line(s) with {needles:?} never appeared in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Linux processes of session helpers the service started (Wine shows their Windows
/// command line as the process's), in this test's Wine prefix only: other Wine programs on
/// the machine are none of its business.
fn helper_pids() -> Vec<u32> {
    let prefix = std::env::var("WINEPREFIX").expect("WINEPREFIX is set by test-windows.sh");
    let ours = format!("WINEPREFIX={prefix}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(e.path().join("environ")).ok()?;
            if !environ.split(|&b| b == 0).any(|v| v == ours.as_bytes()) {
                return None;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("lanterne-station.exe")
                && cmdline.contains(" session ")
                && cmdline.contains("--service-user"))
            .then_some(pid)
        })
        .collect()
}

/// The X window (id) with this exact title on the display, waiting up to 20 s for it.
fn x_window_named(title: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", &format!("^{title}$")])
            .output()
            .expect("xdotool (scripts/setup.sh installs it)");
        if let Some(id) = String::from_utf8_lossy(&out.stdout).lines().next() {
            return id.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no window titled '{title}' on the Wine screen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens the station's focus view (retrying until the station is online) and returns its
/// picture once the stream goes quiet (a still screen sends a keyframe, then nothing).
async fn focus_picture(https: &Https, cookie: &str, station_id: u32) -> (u32, u32, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ws = loop {
        match https
            .websocket(&format!("/api/stations/{station_id}/focus"), cookie)
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
    decode_last_rgb(&aus).unwrap()
}
