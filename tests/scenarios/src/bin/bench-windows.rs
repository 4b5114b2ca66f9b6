//! Windows agent benchmark: the Windows station agent under Wine, next to the Linux agent on
//! the same screen, each streaming to a real box: its CPU and memory with nobody watching,
//! while it sends a thumbnail (the mosaic open) and while it sends its full stream (the
//! station's focus view open), plus what it sent.
//!
//! One Xvfb display (1280×720) shows a moving picture drawn by a Windows program under Wine
//! (`colour-window.exe 3C64C8 C83214`: a red square bouncing over blue, 25 steps a second).
//! Both agents capture that same display, one after the other: the Windows agent
//! (`lanterne-station.exe desktop`, GDI capture and OpenH264, one process under Wine), then
//! the Linux agent (`lanterne-station run` as root and its session helper on the X display as
//! nobody, as deployed). For each phase and agent, a few windows of a few seconds each:
//! CPU (utime + stime of the agent's processes over the window, in % of one core), RSS at the
//! end of each window (medians over the windows), the bytes its TCP connection to the box's
//! station link sent (the kernel's `bytes_sent`, TLS and all: `ss -ti`), and the frames that
//! reached the viewer (thumbnail frames the mosaic took in; access units of the focus view).
//! Under Wine, the agent's pid is the Wine process whose command line names
//! `lanterne-station.exe`; the wineserver's CPU (shared with the painter and Wine's own
//! services) is reported apart.
//!
//! Run through `scripts/bench-windows.sh`, which builds, makes the display and the Wine prefix
//! and passes `LANTERNE_WINDOWS_BIN_DIR`, `WINEPREFIX` and `DISPLAY`:
//!   target/release/bench-windows [window_seconds=10] [windows=5]
//! Writes docs/bench/windows.json.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lanterne_scenarios::bench::{machine, median, now_iso, round1};
use lanterne_scenarios::{bin, next_item, BoxProcess, Https, Ws, WsItem};

/// A child process killed on drop.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn id(args: &[&str]) -> anyhow::Result<u32> {
    let out = Command::new("id").args(args).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// A Linux path as a Windows program sees it (Wine maps Z: to /).
fn wine_path(p: &Path) -> String {
    format!("Z:{}", p.display())
}

/// Clock ticks per second of /proc/<pid>/stat.
fn clock_ticks() -> anyhow::Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// utime + stime of `pid`, in clock ticks (None once it is gone).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Resident memory of `pid` in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The processes whose command line contains `needle` (zombies and this process excluded).
fn pids_with(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || rss_kb(pid).is_none() {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// The processes whose name (as /proc/<pid>/comm spells it) starts with `prefix`.
fn pids_named(prefix: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with(prefix))
        {
            pids.push(pid);
        }
    }
    pids
}

/// Bytes sent so far by the established TCP connections to `port` on loopback (the agent's
/// side of its station link), from the kernel's TCP info.
fn bytes_sent_to(port: u16) -> anyhow::Result<u64> {
    let out = Command::new("ss")
        .args([
            "-tinH",
            "state",
            "established",
            "dport",
            "=",
            &format!(":{port}"),
        ])
        .output()
        .context("ss (iproute2)")?;
    anyhow::ensure!(out.status.success(), "ss failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut total = 0;
    let mut found = false;
    for word in text.split_whitespace() {
        if let Some(n) = word.strip_prefix("bytes_sent:") {
            total += n.parse::<u64>()?;
            found = true;
        }
    }
    anyhow::ensure!(
        found,
        "no connection to port {port} with bytes_sent: {text}"
    );
    Ok(total)
}

/// One agent under test: its processes, the station it is, its link to the box.
struct Agent {
    label: &'static str,
    station_id: u32,
    name: String,
    /// Its processes (found once it is online).
    pids: Vec<u32>,
    _children: Vec<Child>,
}

/// What one measuring window saw.
#[derive(Default)]
struct Window {
    cpu_pct: f64,
    wineserver_cpu_pct: f64,
    rss_mb: f64,
    sent_kbps: f64,
    frames_per_s: f64,
    received_kbps: f64,
}

/// What a phase's viewer is.
enum Viewer {
    None,
    Mosaic(Ws),
    Focus(Ws),
}

/// Reads the viewer until `until`; counts the frames (thumbnail frames in the mosaic's
/// updates, or the focus view's access units) and the video bytes received.
async fn watch(viewer: &mut Viewer, until: Instant) -> anyhow::Result<(u64, u64)> {
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut last_capture: Option<u64> = None;
    let focus = matches!(viewer, Viewer::Focus(_));
    let ws = match viewer {
        Viewer::None => {
            tokio::time::sleep_until(until.into()).await;
            return Ok((0, 0));
        }
        Viewer::Mosaic(ws) | Viewer::Focus(ws) => ws,
    };
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((frames, bytes));
        }
        match next_item(ws, left).await {
            Ok(WsItem::Video(v)) => {
                bytes += v.au.len() as u64;
                if focus {
                    frames += 1;
                } else {
                    // One station online: each new capture time in the updates is one
                    // thumbnail frame the mosaic took in.
                    for (_, capture_us) in v.updates {
                        if last_capture != Some(capture_us) {
                            frames += 1;
                            last_capture = Some(capture_us);
                        }
                    }
                }
            }
            Ok(WsItem::Json(j)) => anyhow::ensure!(j["type"] != "ended", "viewer ended: {j}"),
            Err(_) if Instant::now() >= until => return Ok((frames, bytes)),
            Err(e) => return Err(e),
        }
    }
}

/// Waits until the viewer delivers video for this station (the stream is flowing).
async fn first_video(viewer: &mut Viewer) -> anyhow::Result<()> {
    let (Viewer::Mosaic(ws) | Viewer::Focus(ws)) = viewer else {
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_item(ws, left).await? {
            WsItem::Video(v) if !v.updates.is_empty() || v.keyframe => return Ok(()),
            WsItem::Json(j) => anyhow::ensure!(j["type"] != "ended", "viewer ended: {j}"),
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "no video within 60 s");
    }
}

struct Run<'a> {
    link_port: u16,
    ticks: f64,
    window: Duration,
    windows: usize,
    https: &'a Https,
    cookie: &'a str,
}

impl Run<'_> {
    /// Measures one phase of `agent`: warm-up, then `windows` windows.
    async fn phase(&self, agent: &Agent, phase: &str) -> anyhow::Result<serde_json::Value> {
        let mut viewer = match phase {
            "idle" => Viewer::None,
            "thumbnail" => Viewer::Mosaic(self.https.websocket("/api/mosaic", self.cookie).await?),
            "full" => Viewer::Focus(
                self.https
                    .websocket(
                        &format!("/api/stations/{}/focus", agent.station_id),
                        self.cookie,
                    )
                    .await?,
            ),
            _ => bail!("unknown phase {phase}"),
        };
        first_video(&mut viewer).await?;
        // Warm-up: the encoder settles (first keyframe, rate control).
        watch(&mut viewer, Instant::now() + Duration::from_secs(3)).await?;
        let wineservers = pids_named("wineserver");
        let mut out = Vec::new();
        for _ in 0..self.windows {
            let cpu0: u64 = agent.pids.iter().filter_map(|&p| cpu_ticks(p)).sum();
            let ws0: u64 = wineservers.iter().filter_map(|&p| cpu_ticks(p)).sum();
            let sent0 = bytes_sent_to(self.link_port)?;
            let t0 = Instant::now();
            let (frames, received) = watch(&mut viewer, t0 + self.window).await?;
            let secs = t0.elapsed().as_secs_f64();
            let cpu1: u64 = agent.pids.iter().filter_map(|&p| cpu_ticks(p)).sum();
            let ws1: u64 = wineservers.iter().filter_map(|&p| cpu_ticks(p)).sum();
            let sent1 = bytes_sent_to(self.link_port)?;
            let rss: u64 = agent.pids.iter().filter_map(|&p| rss_kb(p)).sum();
            anyhow::ensure!(
                agent.pids.iter().all(|&p| cpu_ticks(p).is_some()),
                "the {} agent's processes ended during the run",
                agent.label
            );
            out.push(Window {
                cpu_pct: (cpu1 - cpu0) as f64 / self.ticks / secs * 100.0,
                wineserver_cpu_pct: (ws1 - ws0) as f64 / self.ticks / secs * 100.0,
                rss_mb: rss as f64 / 1024.0,
                sent_kbps: (sent1 - sent0) as f64 / 1000.0 / secs,
                frames_per_s: frames as f64 / secs,
                received_kbps: received as f64 / 1000.0 / secs,
            });
        }
        drop(viewer);
        let m = |f: fn(&Window) -> f64| round1(median(&out.iter().map(f).collect::<Vec<_>>()));
        let mut v = serde_json::json!({
            "cpu_pct_median": m(|w| w.cpu_pct),
            "cpu_pct_windows": out.iter().map(|w| round1(w.cpu_pct)).collect::<Vec<_>>(),
            "rss_mb_median": m(|w| w.rss_mb),
            "sent_kB_per_s_median": m(|w| w.sent_kbps),
        });
        match phase {
            "thumbnail" => v["thumbnail_frames_per_s_median"] = m(|w| w.frames_per_s).into(),
            "full" => {
                v["focus_frames_per_s_median"] = m(|w| w.frames_per_s).into();
                v["focus_video_kB_per_s_median"] = m(|w| w.received_kbps).into();
            }
            _ => {}
        }
        if agent.label == "windows" {
            v["wineserver_cpu_pct_median"] = m(|w| w.wineserver_cpu_pct).into();
        }
        println!("{} {phase}: {v}", agent.label);
        Ok(v)
    }
}

/// The `key=value` field of a box log line (the station's capture and encoder).
fn log_field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or("?")
        .trim_matches('"')
        .to_string()
}

/// Waits until the box says the station `name` is online; returns the box's line.
async fn online(b: &BoxProcess, name: &str) -> anyhow::Result<String> {
    b.wait_log_line(&["station online", name], Duration::from_secs(60))
        .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let window_s: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let windows: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    anyhow::ensure!(
        (1..=120).contains(&window_s) && (1..=50).contains(&windows),
        "window_seconds 1..=120, windows 1..=50"
    );
    anyhow::ensure!(
        id(&["-u"])? == 0,
        "run as root: the Linux helper runs as nobody"
    );
    let bins = PathBuf::from(
        std::env::var_os("LANTERNE_WINDOWS_BIN_DIR")
            .context("LANTERNE_WINDOWS_BIN_DIR is not set: run scripts/bench-windows.sh")?,
    );
    let display = std::env::var("DISPLAY").context("DISPLAY is not set")?;
    let exe = bins.join("lanterne-station.exe");
    let painter_exe = bins.join("examples").join("colour-window.exe");

    // The moving picture, drawn by a Windows program on the shared display.
    let mut painter = Child(
        Command::new("wine")
            .arg(&painter_exe)
            .args(["3C64C8", "C83214"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("wine")?,
    );
    let mut line = String::new();
    BufReader::new(painter.0.stdout.take().context("stdout")?).read_line(&mut line)?;
    anyhow::ensure!(
        line.trim() == "shown",
        "the painter did not start: {line:?}"
    );

    let b = BoxProcess::start().await?;
    let password = b.ready.admin_password.clone().context("first start")?;
    let https = b.https()?;
    let cookie = https.login("admin", &password).await?;
    let run = Run {
        link_port: b.ready.station_link.port(),
        ticks: clock_ticks()?,
        window: Duration::from_secs(window_s),
        windows,
        https: &https,
        cookie: &cookie,
    };
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let mut results = serde_json::Map::new();
    let mut agents_seen = serde_json::Map::new();

    // The Windows agent: enrols itself, then runs as one process in the Wine session.
    {
        let data = dir.path().join("wine-station");
        let token = b.enrol_tokens(1)?.remove(0);
        let out = Command::new("wine")
            .arg(&exe)
            .args(["enrol", "--data-dir", &wine_path(&data)])
            .args(["--box", &b.ready.https_url, "--hostname", "poste-wine"])
            .args([
                "--token",
                &format!("{}@{}", token.code, token.ca_fingerprint),
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "enrolment under Wine failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        let station_id: u32 = said
            .split("(station ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no station id in: {said}"))?;
        let config = dir.path().join("wine-station.toml");
        std::fs::write(&config, "")?;
        let child = Child(
            Command::new("wine")
                .arg(&exe)
                .args(["desktop", "--data-dir", &wine_path(&data)])
                .args(["--config", &wine_path(&config)])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()?,
        );
        let line = online(&b, "poste-wine").await?;
        let pids = pids_with("lanterne-station.exe");
        anyhow::ensure!(!pids.is_empty(), "no process for lanterne-station.exe");
        agents_seen.insert(
            "windows".into(),
            serde_json::json!({
                "how": "lanterne-station.exe desktop under wine64 (one process)",
                "capture": log_field(&line, "capture"),
                "encoder": log_field(&line, "encoder"),
                "processes": pids.len(),
            }),
        );
        let agent = Agent {
            label: "windows",
            station_id,
            name: "poste-wine".into(),
            pids,
            _children: vec![child],
        };
        let mut phases = serde_json::Map::new();
        for phase in ["idle", "thumbnail", "full"] {
            phases.insert(phase.into(), run.phase(&agent, phase).await?);
        }
        results.insert("windows".into(), phases.into());
        let agent_pids = agent.pids.clone();
        drop(agent);
        // Killing `wine` ends the agent's process (the same pid); if Wine left it behind,
        // those pids (which this run started) get SIGKILL.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut killed = false;
        while agent_pids.iter().any(|&p| rss_kb(p).is_some()) {
            anyhow::ensure!(Instant::now() < deadline, "the Windows agent did not end");
            if !killed && deadline - Instant::now() < Duration::from_secs(15) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .args(agent_pids.iter().map(u32::to_string))
                    .status();
                killed = true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The Linux agent, as deployed: the service as root, the helper as the (nobody) student.
    {
        let data = dir.path().join("linux-station");
        let station_id = b.enrol(&data, "poste-linux").await?.station_id;
        let socket = dir.path().join("session.sock");
        let config = dir.path().join("linux-station.toml");
        std::fs::write(
            &config,
            format!("[session]\nsocket = {:?}\n", socket.display().to_string()),
        )?;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))?;
        let service = Child(
            Command::new(bin("lanterne-station"))
                .args(["run", "--data-dir"])
                .arg(&data)
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
        let helper_log = dir.path().join("helper.log");
        let helper = Child(
            Command::new(bin("lanterne-station"))
                .arg("session")
                .arg("--socket")
                .arg(&socket)
                .args(["--source", "x11", "--display", &display])
                .env("HOME", &home)
                // Info: its "screen encoder started" line names its source and encoder (the
                // box's "station online" line is the service's, before the helper joins).
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&helper_log)?)
                .uid(uid)
                .gid(gid)
                .spawn()?,
        );
        online(&b, "poste-linux").await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let line = loop {
            let log = std::fs::read_to_string(&helper_log).unwrap_or_default();
            if let Some(l) = log.lines().find(|l| l.contains("screen encoder started")) {
                break l.to_string();
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the session helper never started its encoder: {log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let pids = vec![service.0.id(), helper.0.id()];
        agents_seen.insert(
            "linux".into(),
            serde_json::json!({
                "how": "lanterne-station run (root) + lanterne-station session --source x11 (nobody), CPU and RSS summed",
                "capture": log_field(&line, "source"),
                "encoder": log_field(&line, "encoder"),
                "processes": pids.len(),
            }),
        );
        let agent = Agent {
            label: "linux",
            station_id,
            name: "poste-linux".into(),
            pids,
            _children: vec![helper, service],
        };
        let mut phases = serde_json::Map::new();
        for phase in ["idle", "thumbnail", "full"] {
            phases.insert(phase.into(), run.phase(&agent, phase).await?);
        }
        results.insert("linux".into(), phases.into());
        println!("{} done", agent.name);
    }
    drop(painter);

    let report = serde_json::json!({
        "benchmark": "windows",
        "command": format!("sudo scripts/bench-windows.sh {window_s} {windows}"),
        "date": now_iso(),
        "params": {
            "window_seconds": window_s,
            "windows": windows,
            "warm_up_seconds": 3,
            "screen": "1280x720 Xvfb, shared by both agents (one after the other)",
            "content": "colour-window.exe 3C64C8 C83214 under Wine: a 320x180 red square bouncing over blue, 8 px per step, 25 steps/s",
            "streams": "box defaults: thumbnail 480x270 5 fps 250 kbps, focus 1280x720 30 fps 3000 kbps",
            "wine": wine_version(),
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "agents": agents_seen,
        },
        "machine": machine("n/a (agents only)"),
        "results": results,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::create_dir_all("docs/bench")?;
    std::fs::write(
        "docs/bench/windows.json",
        format!("{}\n", serde_json::to_string_pretty(&report)?),
    )?;
    Ok(())
}

fn wine_version() -> String {
    Command::new("wine")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
