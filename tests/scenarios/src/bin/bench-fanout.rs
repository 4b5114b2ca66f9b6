//! Fan-out benchmark: one replayed 1080p30 stream shown by the box to N receiving stations
//! over their mutually authenticated TLS links, on loopback.
//!
//! Run through `scripts/bench-fanout.sh` (builds release binaries, records the streams):
//!   target/release/bench-fanout run [receivers=60] [windows=5] [window_s=10] \
//!       [thumb=run/bench/thumb.lrp] [full=run/bench/full-1080p30.lrp] \
//!       [out=docs/bench/fanout.json]
//! (The scale benchmark runs it on its recorded screens with an `out` of its own.)
//!   target/release/bench-fanout record run/bench/full-1080p30.lrp
//!
//! What runs: a real `lanterne-box` process; in this process, the source station (a real
//! station agent replaying the recorded stream as its full stream) and N receivers. The
//! receivers are raw station-link clients with real enrolled identities: they do not decode
//! (this machine could not decode 60 × 1080p30), they time each demo frame and check its
//! sequence number, which the box numbers per connection, so every frame the box dropped for
//! a receiver is a gap.
//!
//! Measured per window, medians over windows:
//! - frames lost at healthy receivers (sequence gaps) and frames received;
//! - latency: receiver arrival − the frame's capture timestamp, stamped by the source when it
//!   sends the frame (same clock). That is source → box → receiver, so it is an upper bound of
//!   what the relay adds;
//! - box CPU (utime + stime of the box process; 100 % = one core) with the demo, and idle (the
//!   same box and stations before the demo: thumbnails and the mosaic); the relay's share is
//!   the difference, divided by N per receiver; box RSS;
//! - the same with one receiver throttled to a quarter of the stream's bitrate;
//! - baseline, in the same run: the same access units at the same pace through GStreamer's
//!   `tcpserversink` (plain TCP, no TLS, no per-receiver policy) in a child process, read by N
//!   plain TCP clients; its CPU per receiver, and the ratio.
//!
//! Writes docs/bench/fanout.json (scripts/bench/render.mjs turns it into docs/benchmarks.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use lanterne_scenarios::bench::{machine, median, now_iso, percentile, round1, round3};
use lanterne_scenarios::BoxProcess;
use lanterne_station::identity::{Identity, BOX_SERVER_NAME};
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::system::SimulatedSystem;
use lanterne_station::{spawn_station, SourceSpec};
use lanterne_wire::{Capabilities, Control, Frame, FrameCodec, Stream, PROTOCOL_VERSION};
use rustls::pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FPS: u32 = 30;
const BITRATE_KBPS: u32 = 4000;
/// Ten seconds, an IDR every two.
const RECORD_FRAMES: u32 = 300;
/// The throttled receiver reads at a quarter of the stream's bitrate.
const THROTTLE_BITS_PER_S: f64 = BITRATE_KBPS as f64 * 1000.0 / 4.0;

/// Each enrolled station needs a name the box accepts; the source is poste-00.
fn receiver_name(i: usize) -> String {
    format!("poste-{:02}", i + 1)
}

// ---- process readings ------------------------------------------------------------------------

/// Clock ticks per second of /proc's CPU times.
fn clock_ticks() -> anyhow::Result<f64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("getconf CLK_TCK")?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

/// utime + stime of a process, in ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .context("malformed /proc stat")?
        .1
        .split_whitespace()
        .collect::<Vec<_>>();
    let utime: u64 = rest[11].parse()?;
    let stime: u64 = rest[12].parse()?;
    Ok(utime + stime)
}

fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// CPU of `pid` over `window`, in % of one core.
async fn cpu_over(pid: u32, window: Duration, ticks: f64) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid)?;
    tokio::time::sleep(window).await;
    let c1 = cpu_ticks(pid)?;
    Ok(100.0 * (c1 - c0) as f64 / ticks / t0.elapsed().as_secs_f64())
}

// ---- recording the stream --------------------------------------------------------------------

/// Records the benchmark's full stream: moving colour bars with a running clock, 1080p30,
/// x264 at 4 Mbit/s with an IDR (and SPS/PPS) every two seconds: as busy as a scrolling
/// screen, so the bitrate is really ~4 Mbit/s (a flat test picture compresses far below).
fn record(path: &Path) -> anyhow::Result<()> {
    gst::init()?;
    let desc = format!(
        "videotestsrc num-buffers={RECORD_FRAMES} pattern=smpte horizontal-speed=8 \
         ! video/x-raw,width={WIDTH},height={HEIGHT},framerate={FPS}/1 \
         ! timeoverlay font-desc=\"Sans 60\" \
         ! x264enc bitrate={BITRATE_KBPS} speed-preset=ultrafast tune=zerolatency \
           key-int-max={} \
         ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! appsink name=out sync=false",
        2 * FPS
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("out")
        .context("appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("not an appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buf = sample.buffer().context("sample without buffer")?;
        let map = buf.map_readable()?;
        frames.push(lanterne_media::replay::ReplayFrame {
            pts_us: frames.len() as u64 * 1_000_000 / FPS as u64,
            keyframe: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: bytes::Bytes::copy_from_slice(map.as_slice()),
        });
    }
    pipeline.set_state(gst::State::Null)?;
    anyhow::ensure!(
        frames.len() == RECORD_FRAMES as usize,
        "recorded {} frames",
        frames.len()
    );
    let params = lanterne_media::StreamParams {
        width: WIDTH,
        height: HEIGHT,
        fps: FPS,
        bitrate_kbps: BITRATE_KBPS,
    };
    let bytes = lanterne_media::replay::encode(params, &frames);
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    let total: usize = frames.iter().map(|f| f.data.len()).sum();
    println!(
        "recorded {}: {} frames, {} keyframes, {:.0} kbit/s",
        path.display(),
        frames.len(),
        frames.iter().filter(|f| f.keyframe).count(),
        total as f64 * 8.0 / (frames.len() as f64 / FPS as f64) / 1000.0
    );
    Ok(())
}

// ---- receivers -------------------------------------------------------------------------------

#[derive(Default)]
struct Receiver {
    frames: AtomicU64,
    lost: AtomicU64,
    bytes: AtomicU64,
    last_seq: Mutex<Option<u64>>,
    /// Latency samples (ms) since the last window.
    latency_ms: Mutex<Vec<f64>>,
    throttled: AtomicBool,
    connected: AtomicBool,
}

impl Receiver {
    fn take_latencies(&self) -> Vec<f64> {
        std::mem::take(&mut *self.latency_ms.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Connects as an enrolled station and says hello, like a station agent would.
/// `small_buffer`: a receive buffer of a few kilobytes, as behind a slow network link where
/// the bottleneck holds little (on loopback the kernel would otherwise buffer megabytes for
/// a slow reader, hiding it from the box).
async fn connect(
    dir: &Path,
    name: &str,
    small_buffer: bool,
) -> anyhow::Result<Framed<Tls, FrameCodec>> {
    let id = Identity::load(dir)?;
    let addr: std::net::SocketAddr = id.enrolment.link.parse()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    if small_buffer {
        socket.set_recv_buffer_size(16 * 1024)?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(id.link_tls()?)
        .connect(ServerName::try_from(BOX_SERVER_NAME)?, tcp)
        .await?;
    let mut framed = Framed::new(tls, FrameCodec);
    framed
        .send(Frame::Control(Control::Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: "bench".into(),
            hostname: name.into(),
            capabilities: Capabilities::default(),
        }))
        .await?;
    match framed.next().await {
        Some(Ok(Frame::Control(Control::Welcome { .. }))) => Ok(framed),
        other => bail!("{name}: expected a welcome, got {other:?}"),
    }
}

/// Reads demo frames until the link ends: counts, checks sequence numbers, times them. A
/// throttled receiver sleeps after each frame as long as its bitrate allows.
async fn receive(framed: Framed<Tls, FrameCodec>, r: Arc<Receiver>) {
    let (mut sink, mut stream) = framed.split();
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Control>(16);
    // The writer: heartbeats every 3 s (a live station), and answers to the box's.
    tokio::spawn(async move {
        let mut beat = tokio::time::interval(Duration::from_secs(3));
        loop {
            let msg = tokio::select! {
                _ = beat.tick() => Control::Heartbeat { sent_us: lanterne_wire::now_us() },
                m = ctl_rx.recv() => match m { Some(m) => m, None => return },
            };
            if sink.send(Frame::Control(msg)).await.is_err() {
                return;
            }
        }
    });
    r.connected.store(true, Ordering::SeqCst);
    while let Some(Ok(frame)) = stream.next().await {
        match frame {
            Frame::Media { header, data } if header.stream == Stream::Demo => {
                let now = lanterne_wire::now_us();
                let latency = now.saturating_sub(header.capture_us) as f64 / 1000.0;
                {
                    let mut last = r.last_seq.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(prev) = *last {
                        if header.seq > prev + 1 {
                            r.lost.fetch_add(header.seq - prev - 1, Ordering::Relaxed);
                        }
                    }
                    *last = Some(header.seq);
                }
                r.frames.fetch_add(1, Ordering::Relaxed);
                r.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                r.latency_ms
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(latency);
                if r.throttled.load(Ordering::Relaxed) {
                    let secs = data.len() as f64 * 8.0 / THROTTLE_BITS_PER_S;
                    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                }
            }
            Frame::Control(Control::Heartbeat { sent_us }) => {
                let _ = ctl_tx.try_send(Control::HeartbeatAck { sent_us });
            }
            _ => {}
        }
    }
    r.connected.store(false, Ordering::SeqCst);
}

/// Totals of a set of receivers over one window.
#[derive(Default, Debug)]
struct WindowTotals {
    frames: u64,
    lost: u64,
    latencies: Vec<f64>,
}

fn snapshot(rs: &[Arc<Receiver>]) -> Vec<(u64, u64)> {
    rs.iter()
        .map(|r| {
            (
                r.frames.load(Ordering::Relaxed),
                r.lost.load(Ordering::Relaxed),
            )
        })
        .collect()
}

fn totals(rs: &[Arc<Receiver>], before: &[(u64, u64)]) -> WindowTotals {
    let mut t = WindowTotals::default();
    for (r, (f0, l0)) in rs.iter().zip(before) {
        t.frames += r.frames.load(Ordering::Relaxed) - f0;
        t.lost += r.lost.load(Ordering::Relaxed) - l0;
        t.latencies.extend(r.take_latencies());
    }
    t
}

/// The figures of one phase (several windows) for the healthy receivers.
#[derive(Debug, Default)]
struct Phase {
    frames: u64,
    lost: u64,
    latencies: Vec<f64>,
    box_cpu: Vec<f64>,
    box_rss_max: f64,
}

impl Phase {
    fn add(&mut self, other: Phase) {
        self.frames += other.frames;
        self.lost += other.lost;
        self.latencies.extend(other.latencies);
        self.box_cpu.extend(other.box_cpu);
        self.box_rss_max = self.box_rss_max.max(other.box_rss_max);
    }

    fn p(&self, pct: f64) -> f64 {
        percentile(&self.latencies, pct)
    }
}

async fn phase(
    healthy: &[Arc<Receiver>],
    box_pid: u32,
    windows: usize,
    window: Duration,
    ticks: f64,
) -> anyhow::Result<Phase> {
    let mut cpu = Vec::new();
    let mut lat = Vec::new();
    let (mut frames, mut lost, mut rss) = (0, 0, 0f64);
    // Only what arrives during the phase counts.
    for r in healthy {
        r.take_latencies();
    }
    for w in 0..windows {
        let before = snapshot(healthy);
        cpu.push(cpu_over(box_pid, window, ticks).await?);
        let t = totals(healthy, &before);
        rss = rss.max(rss_mb(box_pid)?);
        println!(
            "  window {}: box CPU {:.1} %, {} frames, {} lost, latency p50 {:.1} ms p99 {:.1} ms",
            w + 1,
            cpu[w],
            t.frames,
            t.lost,
            percentile(&t.latencies, 50.0),
            percentile(&t.latencies, 99.0)
        );
        frames += t.frames;
        lost += t.lost;
        lat.extend(t.latencies);
    }
    Ok(Phase {
        frames,
        lost,
        latencies: lat,
        box_cpu: cpu,
        box_rss_max: rss,
    })
}

// ---- baseline: tcpserversink -----------------------------------------------------------------

/// The baseline server (a child process): the same access units at the same pace into
/// `appsrc ! tcpserversink`, plain TCP. Writes the port it listens on to `port_file`.
async fn baseline_server(full: &Path, port_file: &Path) -> anyhow::Result<()> {
    gst::init()?;
    let file = Arc::new(lanterne_media::replay::ReplayFile::open(full)?);
    let pipeline = gst::parse::launch(
        "appsrc name=src is-live=true format=time \
           caps=video/x-h264,stream-format=byte-stream,alignment=au \
         ! tcpserversink name=sink host=127.0.0.1 port=0 sync=false \
           sync-method=latest-keyframe recover-policy=keyframe",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .context("appsrc")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| anyhow::anyhow!("not an appsrc"))?;
    let sink = pipeline.by_name("sink").context("tcpserversink")?;
    pipeline.set_state(gst::State::Playing)?;
    let port = loop {
        let p: i32 = sink.property("current-port");
        if p > 0 {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let tmp = port_file.with_extension("tmp");
    std::fs::write(&tmp, port.to_string())?;
    std::fs::rename(&tmp, port_file)?;
    let (tx, mut rx) = mpsc::channel(4);
    tokio::spawn(lanterne_media::replay::play(file, tx, true));
    while let Some(f) = rx.recv().await {
        let mut buf = gst::Buffer::from_slice(f.data);
        if !f.keyframe {
            buf.get_mut()
                .expect("a new buffer is writable")
                .set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        if src.push_buffer(buf).is_err() {
            break;
        }
    }
    pipeline.set_state(gst::State::Null)?;
    Ok(())
}

struct Baseline {
    server_cpu_median: f64,
    min_receiver_kbps: f64,
}

async fn baseline(
    full: &Path,
    receivers: usize,
    windows: usize,
    window: Duration,
    ticks: f64,
) -> anyhow::Result<Baseline> {
    let dir = tempfile::tempdir()?;
    let port_file = dir.path().join("port");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("baseline-server")
        .arg(full)
        .arg(&port_file)
        .spawn()
        .context("starting the baseline server")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let port: u16 = loop {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            break p.trim().parse()?;
        }
        anyhow::ensure!(Instant::now() < deadline, "baseline server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let counters: Vec<Arc<AtomicU64>> = (0..receivers).map(|_| Arc::default()).collect();
    for c in &counters {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let c = c.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = tcp.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                c.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut cpu = Vec::new();
    let mut min_kbps = f64::INFINITY;
    for w in 0..windows {
        let before: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let t0 = Instant::now();
        cpu.push(cpu_over(child.id(), window, ticks).await?);
        let secs = t0.elapsed().as_secs_f64();
        let slowest = counters
            .iter()
            .zip(&before)
            .map(|(c, b)| (c.load(Ordering::Relaxed) - b) as f64 * 8.0 / secs / 1000.0)
            .fold(f64::INFINITY, f64::min);
        min_kbps = min_kbps.min(slowest);
        println!(
            "  baseline window {}: server CPU {:.1} %, slowest receiver {:.0} kbit/s",
            w + 1,
            cpu[w],
            slowest
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(Baseline {
        server_cpu_median: median(&cpu),
        min_receiver_kbps: min_kbps,
    })
}

// ---- the run ---------------------------------------------------------------------------------

struct Args {
    receivers: usize,
    windows: usize,
    window: Duration,
    thumb: PathBuf,
    full: PathBuf,
    out: PathBuf,
}

fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let get = |i: usize| args.get(i).map(String::as_str);
    let receivers: usize = get(0).map(str::parse).transpose()?.unwrap_or(60);
    let windows: usize = get(1).map(str::parse).transpose()?.unwrap_or(5);
    let window_s: u64 = get(2).map(str::parse).transpose()?.unwrap_or(10);
    anyhow::ensure!((2..=200).contains(&receivers), "receivers: 2..=200");
    anyhow::ensure!((1..=20).contains(&windows), "windows: 1..=20");
    anyhow::ensure!((2..=120).contains(&window_s), "window_s: 2..=120");
    Ok(Args {
        receivers,
        windows,
        window: Duration::from_secs(window_s),
        thumb: get(3).unwrap_or("run/bench/thumb.lrp").into(),
        full: get(4).unwrap_or("run/bench/full-1080p30.lrp").into(),
        out: get(5).unwrap_or("docs/bench/fanout.json").into(),
    })
}

async fn run(a: Args) -> anyhow::Result<serde_json::Value> {
    let ticks = clock_ticks()?;
    let open = |p: &Path| {
        lanterne_media::replay::ReplayFile::open(p).with_context(|| {
            format!(
                "replay file {} (scripts/bench-fanout.sh records it)",
                p.display()
            )
        })
    };
    let thumb = Arc::new(open(&a.thumb)?);
    let full = Arc::new(open(&a.full)?);
    let full_kbps = full.frames().map(|f| f.data.len()).sum::<usize>() as f64 * 8.0
        / full.duration().as_secs_f64()
        / 1000.0;
    println!(
        "stream: {WIDTH}x{HEIGHT} {FPS} fps, {:.0} kbit/s; {} receivers, {} windows of {:?}",
        full_kbps, a.receivers, a.windows, a.window
    );

    // The source is a student's station: showing it is watching it, so inside a window.
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Banc d'essai\"\n[panel]\nbackend = \"simulated\"\n{}",
        lanterne_scenarios::schedule_including_now()
    ))
    .await?;
    let box_pid = b.pid();
    let dirs = tempfile::tempdir()?;
    let probe = lanterne_media::init()?;

    let source_dir = dirs.path().join("poste-00");
    let source_id = b.enrol(&source_dir, "poste-00").await?.station_id;
    let source = spawn_station(
        &source_dir,
        SourceSpec::ReplayWithFull { thumb, full },
        Arc::new(SimulatedScreen::default()),
        Arc::new(SimulatedSystem::default()),
        &probe,
        "poste-00".into(),
    )?;
    let mut receivers = Vec::new();
    let mut slow_id = 0;
    for i in 0..a.receivers {
        let name = receiver_name(i);
        let dir = dirs.path().join(&name);
        slow_id = b.enrol(&dir, &name).await?.station_id;
        // The last receiver is the one that will be throttled.
        let framed = connect(&dir, &name, i == a.receivers - 1).await?;
        let r = Arc::new(Receiver::default());
        tokio::spawn(receive(framed, r.clone()));
        receivers.push(r);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !source.status.borrow().connected
        || !receivers.iter().all(|r| r.connected.load(Ordering::SeqCst))
    {
        anyhow::ensure!(Instant::now() < deadline, "stations did not all connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    println!("idle box (stations connected, no demo):");
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(cpu_over(box_pid, a.window, ticks).await?);
    }
    let idle_cpu = median(&idle);
    println!("  box CPU {idle_cpu:.1} %");

    let https = b.https()?;
    let password = b.ready.admin_password.clone().context("first start")?;
    let cookie = https.login("admin", &password).await?;
    let res = https
        .post_json(
            &cookie,
            "/api/demo",
            serde_json::json!({ "source": source_id, "targets": null, "mode": "windowed" }),
        )
        .await;
    anyhow::ensure!(
        res.status == 200,
        "demo refused: {}",
        String::from_utf8_lossy(&res.body)
    );
    // Every receiver has its first keyframe before measuring.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !receivers
        .iter()
        .all(|r| r.frames.load(Ordering::Relaxed) > 0)
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "some receivers got no demo frame"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!("{} healthy receivers:", a.receivers);
    let all = phase(&receivers, box_pid, a.windows, a.window, ticks).await?;

    // One receiver slows down, then recovers, in alternate windows; the others are measured
    // in both conditions, so the machine's drift over the run affects both alike.
    let (others, slow) = receivers.split_at(a.receivers - 1);
    let slow = slow[0].clone();
    let (mut calm, mut throttled) = (Phase::default(), Phase::default());
    let mut slow_frames = 0;
    let slow_lost0 = slow.lost.load(Ordering::Relaxed);
    for w in 0..a.windows {
        for on in [false, true] {
            slow.throttled.store(on, Ordering::SeqCst);
            // Let the change settle (a recovering receiver drains its backlog).
            tokio::time::sleep(Duration::from_secs(2)).await;
            let f0 = slow.frames.load(Ordering::Relaxed);
            println!(
                "pair {}: {} other receivers, one {}:",
                w + 1,
                a.receivers - 1,
                if on {
                    "throttled to a quarter of the bitrate"
                } else {
                    "reading normally"
                }
            );
            let p = phase(others, box_pid, 1, a.window, ticks).await?;
            if on {
                throttled.add(p);
                slow_frames += slow.frames.load(Ordering::Relaxed) - f0;
            } else {
                calm.add(p);
            }
        }
    }
    let slow_lost = slow.lost.load(Ordering::Relaxed) - slow_lost0;
    // Gaps show only when the slow receiver reads past them; the relay's own counters say
    // what it dropped for each receiver.
    let room = https
        .request("GET", "/api/room", None, &[("cookie", &cookie)])
        .await?
        .json();
    let relay_dropped = |pred: &dyn Fn(u64) -> bool| -> Vec<u64> {
        room["demo"]["receivers"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter(|r| r["station_id"].as_u64().is_some_and(pred))
                    .filter_map(|r| r["relay"]["dropped"].as_u64())
                    .collect()
            })
            .unwrap_or_default()
    };
    let slow_dropped = relay_dropped(&|id| id == u64::from(slow_id))
        .first()
        .copied()
        .context("the throttled receiver is not in the demo")?;
    let others_dropped: u64 = relay_dropped(&|id| id != u64::from(slow_id)).iter().sum();
    println!(
        "  throttled receiver: {slow_frames} frames read while throttled, {slow_lost} gaps seen; \
         the relay dropped {slow_dropped} frames for it and {others_dropped} for the others"
    );

    let res = https
        .post_json(&cookie, "/api/demo/stop", serde_json::json!({}))
        .await;
    anyhow::ensure!(res.status < 300, "demo stop: {}", res.status);
    drop(source);
    drop(b);

    println!(
        "baseline, tcpserversink to {} plain TCP receivers:",
        a.receivers
    );
    let base = baseline(&a.full, a.receivers, a.windows, a.window, ticks).await?;

    let relay_cpu = (median(&all.box_cpu) - idle_cpu).max(0.0);
    let per_receiver = relay_cpu / a.receivers as f64;
    let base_per_receiver = base.server_cpu_median / a.receivers as f64;
    let p99_change = 100.0 * (throttled.p(99.0) - calm.p(99.0)) / calm.p(99.0);
    let results = serde_json::json!({
        "stream_kbps": full_kbps.round(),
        "healthy_frames_received": all.frames,
        "healthy_frames_lost": all.lost,
        "latency_ms_p50": round1(all.p(50.0)),
        "latency_ms_p99": round1(all.p(99.0)),
        "box_cpu_pct_median": round1(median(&all.box_cpu)),
        "box_cpu_idle_pct_median": round1(idle_cpu),
        "relay_cpu_pct_per_receiver": round3(per_receiver),
        "box_rss_mb_max": round1(all.box_rss_max.max(throttled.box_rss_max)),
        "throttled_others_frames_lost": throttled.lost + calm.lost,
        "unthrottled_others_latency_ms_p99": round1(calm.p(99.0)),
        "throttled_others_latency_ms_p50": round1(throttled.p(50.0)),
        "throttled_others_latency_ms_p99": round1(throttled.p(99.0)),
        "throttled_others_p99_change_pct": round1(p99_change),
        "throttled_box_cpu_pct_median": round1(median(&throttled.box_cpu)),
        "throttled_receiver_frames": slow_frames,
        "throttled_receiver_frames_lost": slow_lost,
        "throttled_receiver_relay_dropped": slow_dropped,
        "others_relay_dropped": others_dropped,
        "baseline_server_cpu_pct_median": round1(base.server_cpu_median),
        "baseline_cpu_pct_per_receiver": round3(base_per_receiver),
        "baseline_slowest_receiver_kbps": base.min_receiver_kbps.round(),
        "ratio_relay_to_baseline_cpu_per_receiver": round1(per_receiver / base_per_receiver),
    });
    Ok(serde_json::json!({
        "benchmark": "fanout",
        "date": now_iso(),
        "command": format!(
            "scripts/bench-fanout.sh {} {} {}",
            a.receivers,
            a.windows,
            a.window.as_secs()
        ),
        "machine": machine("n/a (the box relays without decoding or encoding)"),
        "params": {
            "receivers": a.receivers,
            "windows": a.windows,
            "window_s": a.window.as_secs(),
            "stream": format!("{WIDTH}x{HEIGHT} {FPS} fps {BITRATE_KBPS} kbit/s x264"),
            "throttled_kbps": THROTTLE_BITS_PER_S / 1000.0,
        },
        "results": results,
        "targets": { "healthy_frames_lost": 0, "latency_ms_p99_max": 20, "throttled_p99_change_pct_max": 10 },
        "met": {
            "no_frame_lost": all.lost == 0 && throttled.lost == 0 && calm.lost == 0
                && others_dropped == 0,
            "latency_p99": all.p(99.0) < 20.0,
            "throttled_others_p99": p99_change.abs() <= 10.0,
        },
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("record") => record(Path::new(args.get(1).context("record PATH")?)),
        Some("baseline-server") => {
            baseline_server(
                Path::new(args.get(1).context("full stream")?),
                Path::new(args.get(2).context("port file")?),
            )
            .await
        }
        Some("run") => {
            let args = parse_args(&args[1..])?;
            let out = args.out.clone();
            let result = run(args).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&out, serde_json::to_string_pretty(&result)? + "\n")?;
            println!("wrote {}", out.display());
            Ok(())
        }
        _ => bail!(
            "usage: bench-fanout run [receivers] [windows] [window_s] [thumb] [full] [out] | record PATH"
        ),
    }
}
