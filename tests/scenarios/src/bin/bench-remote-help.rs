//! Remote-help benchmark: a tap on the tablet → the pixel it changes on the station's screen.
//!
//! A real box, a real station (its service and its session helper as a student's account on
//! Xvfb) and an ordinary X application (tests/e2e/lib/help-target.py: a button that flips
//! between red and green at each click). The student accepts the prompt with a click; then
//! each round sends what the tablet sends for a tap — pointer move, press, release — as one
//! `POST /api/stations/{id}/help/input` on a kept-alive HTTPS connection, and polls the
//! button's pixel on the X server until its colour flips. The time from sending the request
//! to seeing the new colour is one sample.
//!
//! Baseline, measured in the same run: the same click played straight into the X server with
//! XTEST (what the station itself does last), timed the same way; the difference is what the
//! box, the link, the service and the helper add.
//!
//! Run through `scripts/bench-remote-help.sh` (release build, as root):
//!   target/release/bench-remote-help [rounds=200]
//! Writes docs/bench/remote-help.json.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use lanterne_scenarios::bench::{machine, now_iso, percentile, round1};
use lanterne_scenarios::xscreen::XScreen;
use lanterne_scenarios::xvfb::{start_xvfb, Xvfb};
use lanterne_scenarios::{bin, BoxProcess};

const RED: [u8; 3] = [0xc8, 0x32, 0x32];
const GREEN: [u8; 3] = [0x32, 0xa8, 0x52];
/// Where the pixel is read: on the button (left half), clear of its label.
const PROBE: (i16, i16) = (160, 620);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn id(args: &[&str]) -> anyhow::Result<u32> {
    let out = Command::new("id").args(args).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// Waits until the probe pixel is `want`; the time it took.
fn wait_colour(screen: &XScreen, want: [u8; 3], limit: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        if screen.pixel(PROBE.0, PROBE.1)? == want {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(t0.elapsed() < limit, "the button never turned {want:?}");
    }
}

/// A child process killed on drop.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    anyhow::ensure!(id(&["-u"])? == 0, "run as root: the helper runs as nobody");
    let (_xvfb, display): (Xvfb, String) = start_xvfb();
    let screen = XScreen::connect(&display)?;
    let _app = Child(
        Command::new("/usr/bin/python3")
            .arg("tests/e2e/lib/help-target.py")
            .arg(format!("{}x{}", screen.width, screen.height))
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .spawn()
            .context("python3-tk (scripts/setup.sh installs it)")?,
    );
    wait_colour(&screen, RED, Duration::from_secs(20))?;

    let b = BoxProcess::start().await?;
    let password = b.ready.admin_password.clone().context("first start")?;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let station_id = b
        .enrol(&dir.path().join("data"), "poste-aide")
        .await?
        .station_id;
    let socket = dir.path().join("session.sock");
    let config = dir.path().join("station.toml");
    std::fs::write(
        &config,
        format!("[session]\nsocket = {:?}\n", socket.display().to_string()),
    )?;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))?;
    let _service = Child(
        Command::new(bin("lanterne-station"))
            .args(["run", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        anyhow::ensure!(Instant::now() < deadline, "the service never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home)?;
    let (uid, gid) = (id(&["-u", "nobody"])?, id(&["-g", "nobody"])?);
    std::os::unix::fs::chown(&home, Some(uid), Some(gid))?;
    let _helper = Child(
        Command::new(bin("lanterne-station"))
            .arg("session")
            .arg("--socket")
            .arg(&socket)
            .args(["--source", "x11", "--display", &display])
            .env("HOME", &home)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .uid(uid)
            .gid(gid)
            .spawn()?,
    );

    let https = b.https()?;
    let cookie = https.login("admin", &password).await?;
    let origin = https.origin();
    let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let mut conn = https.keep_alive().await?;
    let help = format!("/api/stations/{station_id}/help");
    // The station must be online (its helper connected) before it can be asked.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = conn.request("POST", &help, None, &headers).await?;
        if res.status == 200 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "cannot ask for help: {}",
            res.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The student accepts, as a person: a click on "Accepter" once the prompt armed.
    let accept = screen.wait_for([0x15, 0x80, 0x3d], Duration::from_secs(20))?;
    tokio::time::sleep(Duration::from_millis(900)).await;
    screen.click(accept.0, accept.1)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = conn.request("GET", &help, None, &headers).await?.json();
        if view["help"]["state"] == "active" {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the help never became active: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The banner covers the top of the screen, not the probe.
    let x = (i32::from(PROBE.0) * 65535 / i32::from(screen.width - 1)) as u16;
    let y = (i32::from(PROBE.1) * 65535 / i32::from(screen.height - 1)) as u16;
    let tap = serde_json::json!({ "events": [
        { "PointerMove": { "x": x, "y": y } },
        { "Button": { "button": "Left", "pressed": true } },
        { "Button": { "button": "Left", "pressed": false } },
    ]});

    let mut colour = screen.pixel(PROBE.0, PROBE.1)?;
    let flip = |c: [u8; 3]| if c == RED { GREEN } else { RED };
    let mut lanterne = Vec::with_capacity(rounds);
    let mut baseline = Vec::with_capacity(rounds);
    let input = format!("{help}/input");
    for round in 0..rounds * 2 {
        let want = flip(colour);
        let t0 = Instant::now();
        if round % 2 == 0 {
            let res = conn
                .request("POST", &input, Some(tap.clone()), &headers)
                .await?;
            anyhow::ensure!(res.status == 204, "input: {} {:?}", res.status, res.body);
            wait_colour(&screen, want, Duration::from_secs(5))?;
            lanterne.push(ms(t0.elapsed()));
        } else {
            screen.click(PROBE.0, PROBE.1)?;
            wait_colour(&screen, want, Duration::from_secs(5))?;
            baseline.push(ms(t0.elapsed()));
        }
        colour = want;
        // Spaced like a person's taps, under the box's input rate limit.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let _ = conn
        .request("POST", &format!("{help}/stop"), None, &headers)
        .await?;

    let (p50, p99) = (percentile(&lanterne, 50.0), percentile(&lanterne, 99.0));
    let (b50, b99) = (percentile(&baseline, 50.0), percentile(&baseline, 99.0));
    let results = serde_json::json!({
        "input_to_pixel_ms_p50": round1(p50),
        "input_to_pixel_ms_p99": round1(p99),
        "input_to_pixel_ms_max": round1(lanterne.iter().cloned().fold(0.0, f64::max)),
        "baseline_xtest_click_to_pixel_ms_p50": round1(b50),
        "baseline_xtest_click_to_pixel_ms_p99": round1(b99),
        "added_by_lanterne_ms_p50": round1(p50 - b50),
        "samples": lanterne.len(),
    });
    let report = serde_json::json!({
        "benchmark": "remote-help",
        "command": "sudo scripts/bench-remote-help.sh",
        "date": now_iso(),
        "params": {
            "rounds": rounds,
            "screen": format!("{}x{}", screen.width, screen.height),
            "transport": "HTTPS keep-alive on loopback (one POST per tap), station link over TLS on loopback",
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        },
        "machine": machine("n/a (input path only)"),
        "results": results,
        "met": {
            "p50 < 100 ms": p50 < 100.0,
            "p99 < 200 ms": p99 < 200.0,
            "at least 200 samples": lanterne.len() >= 200,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::create_dir_all("docs/bench")?;
    std::fs::write(
        "docs/bench/remote-help.json",
        format!("{}\n", serde_json::to_string_pretty(&report)?),
    )?;
    Ok(())
}
