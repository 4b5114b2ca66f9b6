//! A hostile classroom network, on loopback: what one student PC can throw at the box, and
//! what a teacher sees meanwhile. Shared by the scenario test
//! (`tests/hostile_network.rs`, which asserts) and the benchmark (`bench-hostile`, which
//! writes `docs/bench/hostile.json`).
//!
//! The box runs under `prlimit --nofile=1024:1024`, the limit a systemd service gets, with
//! one simulated station streaming and a teacher watching the mosaic. Then, one after the
//! other, each attack runs while the teacher signs in again and again (each sign-in on a
//! fresh HTTPS connection from 127.0.0.1, as a tablet would) and the mosaic WebSocket, the
//! box's memory and descriptors and its being alive are sampled:
//!
//! ```text
//! half-requests, spread     N connections from 16 addresses 127.0.0.10–25, each sending half
//!                           of a POST /api/login and then nothing
//! half-requests, one addr.  the same N from 127.0.0.2 alone
//! slow headers              HTTPS: request heads sent a byte a second (127.0.1.x);
//!                           station link: TLS ClientHellos a byte a second (127.0.2.x);
//!                           a station connects meanwhile
//! slow bodies               HTTPS: whole heads, bodies a byte a second; station link: TLS
//!                           with a real (stolen) station certificate, its hello a byte a
//!                           second; a station connects meanwhile
//! logins                    M logins at once with random user names (127.0.3.x)
//! ```
//!
//! An attacker connection that the box closes is opened again after [`RETRY`] (jittered),
//! so each attack keeps its N connections going for the whole phase. The attackers run on
//! their own one-thread runtime: on a real network they would have their own PC; here they
//! share this machine's cores with the box, which makes the figures pessimistic.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::bench::{percentile, round1};
use crate::{next_item, BoxProcess, WsItem};

/// The open-file limit the box runs under: a systemd service's default.
pub const BOX_NOFILE: u64 = 1024;
/// How long a teacher's sign-in may take under attack.
pub const SIGN_IN_LIMIT: Duration = Duration::from_secs(2);
/// The box's resident memory must stay under this.
pub const RSS_LIMIT_MB: f64 = 300.0;
/// The box's request-head, request-body and handshake timeouts (its defaults).
pub const BOX_TIMEOUT: Duration = Duration::from_secs(10);
/// A slow connection may outlive [`BOX_TIMEOUT`] by this much (timer and scheduling slack).
pub const CUT_SLACK: Duration = Duration::from_secs(3);
/// The mosaic may pause this long at most while the box is under attack.
pub const MOSAIC_GAP_LIMIT: Duration = Duration::from_secs(2);
/// How long an attacker waits before opening again a connection the box closed.
pub const RETRY: Duration = Duration::from_millis(500);
/// How long a station may take to connect while the station link is attacked.
pub const STATION_CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// The room: small video so that the box's encoder leaves the machine's two cores to the
/// attack and the measurement.
const CONFIG: &str = "[room]\nname = \"Salle exposée\"\n[panel]\nbackend = \"simulated\"\n\
[mosaic]\nwidth = 640\nheight = 360\nfps = 5\nbitrate_kbps = 500\n\
[thumbnails]\nwidth = 320\nheight = 180\nfps = 5\nbitrate_kbps = 150\n";

/// How hard each phase pushes.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Connections each half-request attack keeps going.
    pub half_requests: usize,
    /// How long each half-request phase lasts.
    pub half_request_phase_s: u64,
    /// Slow HTTPS connections (headers, then bodies); below the box's HTTPS cap, so that
    /// what cuts them is its timeouts (phase 1 is about the caps).
    pub slow_https: usize,
    /// Slow station-link connections.
    pub slow_link: usize,
    /// How long each slow phase lasts: longer than the box's timeouts, so that cuts show.
    pub slow_phase_s: u64,
    /// Logins sent at once.
    pub logins: usize,
    /// Pause between two teacher sign-ins.
    pub sign_in_every_ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            half_requests: 2000,
            half_request_phase_s: 12,
            slow_https: 400,
            slow_link: 150,
            slow_phase_s: 15,
            logins: 500,
            sign_in_every_ms: 250,
        }
    }
}

/// What one phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub duration_s: f64,
    pub attacks: Vec<AttackFigures>,
    pub sign_ins: usize,
    pub sign_in_ms_p50: f64,
    pub sign_in_ms_p99: f64,
    pub sign_in_ms_max: f64,
    /// Sign-ins that failed or took longer than [`SIGN_IN_LIMIT`], with the reason.
    pub sign_in_failures: Vec<String>,
    pub mosaic_frames: usize,
    pub mosaic_max_gap_ms: f64,
    pub box_rss_mb_max: f64,
    pub box_fds_max: u64,
    pub box_alive: bool,
    /// Time for a station to connect during the phase (phases attacking the station link).
    pub station_connect_ms: Option<f64>,
    pub logins: Option<LoginFigures>,
}

/// One attack's figures over its phase.
#[derive(Debug, Clone, Serialize)]
pub struct AttackFigures {
    pub kind: String,
    pub target: String,
    pub connections: usize,
    pub sources: usize,
    /// Connections opened over the phase (each closed one is opened again).
    pub attempts: u64,
    /// Connections the box closed before the attack got going (refused at once, or closed
    /// during the TLS handshake).
    pub refused: u64,
    /// Most attack connections open at once, with their bytes sent, as the attacker saw it.
    pub held_max: i64,
    /// Connections the box cut once established (timeouts and evictions).
    pub cut: usize,
    /// How long the box let established connections live before cutting them.
    pub cut_after_s_p50: f64,
    pub cut_after_s_max: f64,
    /// The longest an established connection stayed open, cut or not.
    pub longest_held_s: f64,
}

impl AttackFigures {
    /// A slow-client attack (as opposed to one that holds connections silently).
    pub fn is_slow(&self) -> bool {
        self.kind.starts_with("slow")
    }

    /// Whether some connection was cut by the box's timeout (not earlier, by an eviction).
    /// The slow attacks stay below the caps so that they are.
    pub fn reached_the_timeout(&self) -> bool {
        self.cut_after_s_max >= (BOX_TIMEOUT - CUT_SLACK).as_secs_f64()
    }

    /// Cut within the box's timeout, and some by it.
    pub fn cut_by_the_timeout(&self) -> bool {
        self.reached_the_timeout() && self.longest_held_s <= (BOX_TIMEOUT + CUT_SLACK).as_secs_f64()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginFigures {
    pub sent: usize,
    /// Answers by HTTP status ("error" for a connection that failed or timed out).
    pub answers: BTreeMap<String, usize>,
    pub answer_ms_p50: f64,
    pub answer_ms_p99: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub box_nofile: u64,
    pub phases: Vec<Phase>,
    /// Accept errors the box logged (none expected: its caps keep it clear of its limit).
    pub box_accept_error_lines: usize,
    pub box_exited: bool,
    pub box_codecs: String,
}

impl Outcome {
    /// Every requirement that a phase missed, in words; empty when all were met.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.box_exited {
            out.push("the box exited".to_string());
        }
        for p in &self.phases {
            let n = &p.name;
            if !p.box_alive {
                out.push(format!("{n}: the box was not running"));
            }
            if p.sign_ins == 0 {
                out.push(format!("{n}: no sign-in was measured"));
            }
            for f in &p.sign_in_failures {
                out.push(format!("{n}: sign-in {f}"));
            }
            if p.mosaic_frames == 0 {
                out.push(format!("{n}: the mosaic sent no frame"));
            } else if p.mosaic_max_gap_ms > MOSAIC_GAP_LIMIT.as_secs_f64() * 1000.0 {
                out.push(format!(
                    "{n}: the mosaic paused {} ms (limit {} ms)",
                    p.mosaic_max_gap_ms,
                    MOSAIC_GAP_LIMIT.as_millis()
                ));
            }
            if p.box_rss_mb_max >= RSS_LIMIT_MB {
                out.push(format!(
                    "{n}: box RSS reached {} MB (limit {RSS_LIMIT_MB})",
                    p.box_rss_mb_max
                ));
            }
            if p.box_fds_max >= BOX_NOFILE {
                out.push(format!("{n}: the box ran out of descriptors"));
            }
            if let Some(ms) = p.station_connect_ms {
                if ms > STATION_CONNECT_LIMIT.as_secs_f64() * 1000.0 {
                    out.push(format!("{n}: a station took {ms} ms to connect"));
                }
            }
            for a in p.attacks.iter().filter(|a| a.is_slow()) {
                if a.longest_held_s > (BOX_TIMEOUT + CUT_SLACK).as_secs_f64() {
                    out.push(format!(
                        "{n}: a {} connection on {} lived {} s (the box's timeout is {} s)",
                        a.kind,
                        a.target,
                        a.longest_held_s,
                        BOX_TIMEOUT.as_secs()
                    ));
                }
                if !a.reached_the_timeout() {
                    out.push(format!(
                        "{n}: no {} connection on {} lasted until the box's timeout \
                         ({} cut, the longest after {} s)",
                        a.kind, a.target, a.cut, a.cut_after_s_max
                    ));
                }
            }
        }
        if self.box_accept_error_lines > 0 {
            out.push(format!(
                "the box logged {} accept-error lines",
                self.box_accept_error_lines
            ));
        }
        out
    }
}

/// What an attack connection does once connected.
#[derive(Clone)]
enum Kind {
    /// HTTPS: half of a POST /api/login, then silence.
    HalfRequest,
    /// HTTPS: the request head a byte at a time.
    SlowHeaders,
    /// HTTPS: the whole head, then the body a byte at a time.
    SlowBody,
    /// Station link: the TLS ClientHello a byte at a time.
    SlowClientHello,
    /// Station link: TLS with a station certificate, then its hello a byte at a time.
    SlowHello(Arc<rustls::ClientConfig>),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::HalfRequest => "half-request",
            Kind::SlowHeaders => "slow-headers",
            Kind::SlowBody => "slow-body",
            Kind::SlowClientHello => "slow-client-hello",
            Kind::SlowHello(_) => "slow-hello",
        }
    }
}

/// Bytes are trickled at this pace.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    refused: AtomicU64,
    held: AtomicI64,
    held_max: AtomicI64,
    cut_after: Mutex<Vec<f64>>,
    longest: Mutex<f64>,
}

impl Counters {
    fn hold(&self) {
        let now = self.held.fetch_add(1, Ordering::Relaxed) + 1;
        self.held_max.fetch_max(now, Ordering::Relaxed);
    }

    fn release(&self, held_for: Duration, cut_by_box: bool) {
        self.held.fetch_sub(1, Ordering::Relaxed);
        let s = held_for.as_secs_f64();
        if cut_by_box {
            self.cut_after.lock().expect("counters").push(s);
        }
        let mut longest = self.longest.lock().expect("counters");
        *longest = longest.max(s);
    }
}

struct Attack {
    kind: Kind,
    target: &'static str,
    connections: usize,
    sources: usize,
    counters: Arc<Counters>,
    stop: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// Where and how the attack connects.
#[derive(Clone)]
struct Aim {
    addr: SocketAddr,
    /// TLS for HTTPS (trusting the box CA, as anyone on the LAN can).
    https_tls: Arc<rustls::ClientConfig>,
    /// The HTTPS Host (and Origin) the requests name.
    host: String,
}

impl Attack {
    fn start(
        rt: &tokio::runtime::Handle,
        kind: Kind,
        target: &'static str,
        aim: Aim,
        connections: usize,
        sources: &[Ipv4Addr],
    ) -> Attack {
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let workers = (0..connections)
            .map(|i| {
                let source = sources[i % sources.len()];
                let (kind, aim, counters, stop) =
                    (kind.clone(), aim.clone(), counters.clone(), stop.clone());
                rt.spawn(async move {
                    while !stop.is_cancelled() {
                        counters.attempts.fetch_add(1, Ordering::Relaxed);
                        tokio::select! {
                            _ = one_connection(&kind, &aim, source, &counters, &stop) => {}
                            _ = stop.cancelled() => break,
                        }
                        let jitter = rand::random::<u64>() % (RETRY.as_millis() as u64 + 1);
                        tokio::select! {
                            _ = tokio::time::sleep(RETRY / 2 + Duration::from_millis(jitter)) => {}
                            _ = stop.cancelled() => break,
                        }
                    }
                })
            })
            .collect();
        Attack {
            target,
            connections,
            sources: sources.len(),
            kind,
            counters,
            stop,
            workers,
        }
    }

    async fn finish(self) -> AttackFigures {
        self.stop.cancel();
        for w in self.workers {
            let _ = w.await;
        }
        let c = &self.counters;
        let cut = c.cut_after.lock().expect("counters").clone();
        AttackFigures {
            kind: self.kind.name().to_string(),
            target: self.target.to_string(),
            connections: self.connections,
            sources: self.sources,
            attempts: c.attempts.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            held_max: c.held_max.load(Ordering::Relaxed),
            cut: cut.len(),
            cut_after_s_p50: round1(nan_to_zero(percentile(&cut, 50.0))),
            cut_after_s_max: round1(nan_to_zero(percentile(&cut, 100.0))),
            longest_held_s: round1(*c.longest.lock().expect("counters")),
        }
    }
}

fn nan_to_zero(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x
    }
}

async fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(addr).await
}

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// One attack connection: opened, brought to the point where it holds the box, then held
/// (trickling, or silent) until the box closes it or the attack stops.
async fn one_connection(
    kind: &Kind,
    aim: &Aim,
    source: Ipv4Addr,
    counters: &Counters,
    stop: &CancellationToken,
) {
    let refused = || {
        counters.refused.fetch_add(1, Ordering::Relaxed);
    };
    let Ok(Ok(tcp)) = tokio::time::timeout(STEP_TIMEOUT, connect_from(source, aim.addr)).await
    else {
        return refused();
    };
    let login_body = r#"{"username":"admin","password":"not-the-password-at-all"}"#;
    match kind {
        Kind::SlowClientHello => {
            let hello = client_hello_bytes(&aim.https_tls);
            hold(tcp, Vec::new(), hello, counters, stop).await;
        }
        Kind::SlowHello(tls) => {
            let Ok(Ok(stream)) = tokio::time::timeout(
                STEP_TIMEOUT,
                tokio_rustls::TlsConnector::from(tls.clone()).connect(
                    ServerName::try_from(lanterne_station::identity::BOX_SERVER_NAME)
                        .expect("static name"),
                    tcp,
                ),
            )
            .await
            else {
                return refused();
            };
            let mut frame = BytesMut::new();
            tokio_util::codec::Encoder::encode(
                &mut lanterne_wire::FrameCodec,
                lanterne_wire::Frame::Control(lanterne_wire::Control::Hello {
                    protocol: lanterne_wire::PROTOCOL_VERSION,
                    agent_version: "0.0.0".into(),
                    hostname: "poste-vole".into(),
                    capabilities: lanterne_wire::Capabilities::default(),
                }),
                &mut frame,
            )
            .expect("a hello encodes");
            hold(stream, Vec::new(), frame.to_vec(), counters, stop).await;
        }
        Kind::HalfRequest | Kind::SlowHeaders | Kind::SlowBody => {
            let name = ServerName::try_from("localhost").expect("static name");
            let Ok(Ok(stream)) = tokio::time::timeout(
                STEP_TIMEOUT,
                tokio_rustls::TlsConnector::from(aim.https_tls.clone()).connect(name, tcp),
            )
            .await
            else {
                return refused();
            };
            let host = &aim.host;
            let head = |len: usize| {
                format!(
                    "POST /api/login HTTP/1.1\r\nHost: {host}\r\nOrigin: https://{host}\r\n\
                     Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
                )
            };
            let (at_once, trickled) = match kind {
                Kind::HalfRequest => {
                    let whole = format!("{}{login_body}", head(login_body.len())).into_bytes();
                    (whole[..whole.len() / 2].to_vec(), Vec::new())
                }
                Kind::SlowHeaders => (Vec::new(), head(login_body.len()).into_bytes()),
                _ => (head(1000).into_bytes(), vec![b' '; 1000]),
            };
            hold(stream, at_once, trickled, counters, stop).await;
        }
    }
}

/// Sends `at_once`, then `trickled` a byte per [`TRICKLE_EVERY`], until the box closes the
/// connection (counted as cut) or the attack stops.
async fn hold<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    at_once: Vec<u8>,
    trickled: Vec<u8>,
    counters: &Counters,
    stop: &CancellationToken,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    if !at_once.is_empty() && wr.write_all(&at_once).await.is_err() {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let _ = wr.flush().await;
    counters.hold();
    let since = Instant::now();
    let closed = async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // an error answer; the box closes after it
            }
        }
    };
    let trickle = async {
        for b in trickled {
            if wr.write_all(&[b]).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(TRICKLE_EVERY).await;
        }
        // Sent everything a byte at a time (never, at this pace, within a phase): wait.
        std::future::pending::<()>().await
    };
    let cut_by_box = tokio::select! {
        _ = closed => true,
        _ = trickle => true,
        _ = stop.cancelled() => false,
    };
    counters.release(since.elapsed(), cut_by_box);
}

/// The first bytes a TLS client sends: its ClientHello.
fn client_hello_bytes(cfg: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        cfg.clone(),
        ServerName::try_from("lanterne-box").expect("static name"),
    )
    .expect("a client connection");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("writing to memory");
    }
    out
}

/// 127.`b`.`c`.(`from` + i) for i < n.
fn sources(b: u8, c: u8, from: u8, n: usize) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(127, b, c, from + i as u8))
        .collect()
}

fn https_client_tls(ca: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca)?)?;
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    ))
}

/// `count` logins at once with random user names and passwords, from `sources` in turn.
async fn login_storm(aim: &Aim, count: usize, sources: &[Ipv4Addr]) -> LoginFigures {
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let (aim, source, results) = (aim.clone(), sources[i % sources.len()], results.clone());
        set.spawn(async move {
            let t0 = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(60), one_login(&aim, source)).await;
            let answer = match r {
                Ok(Ok(status)) => status.to_string(),
                _ => "error".to_string(),
            };
            results
                .lock()
                .expect("results")
                .push((answer, t0.elapsed().as_secs_f64() * 1000.0));
        });
    }
    while set.join_next().await.is_some() {}
    let results = results.lock().expect("results").clone();
    let mut answers = BTreeMap::new();
    for (a, _) in &results {
        *answers.entry(a.clone()).or_insert(0) += 1;
    }
    let ms: Vec<f64> = results.iter().map(|(_, ms)| *ms).collect();
    LoginFigures {
        sent: count,
        answers,
        answer_ms_p50: round1(percentile(&ms, 50.0)),
        answer_ms_p99: round1(percentile(&ms, 99.0)),
    }
}

async fn one_login(aim: &Aim, source: Ipv4Addr) -> anyhow::Result<u16> {
    use http_body_util::{BodyExt, Full};
    let tcp = connect_from(source, aim.addr).await?;
    let tls = tokio_rustls::TlsConnector::from(aim.https_tls.clone())
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let user = format!("eleve-{:016x}", rand::random::<u64>());
    let password = format!("{:032x}", rand::random::<u128>());
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    let req = hyper::Request::post("/api/login")
        .header("host", &aim.host)
        .header("origin", format!("https://{}", aim.host))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await;
    Ok(status)
}

/// The box's resident memory (MB) and open descriptors, or None once it is gone.
fn box_usage(pid: u32) -> Option<(f64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'))
    {
        return None;
    }
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss_kb / 1024.0, fds))
}

/// What the samplers saw during a phase.
#[derive(Default)]
struct Samples {
    rss_mb_max: f64,
    fds_max: u64,
    dead: bool,
    mosaic: Vec<Instant>,
}

/// Runs every phase against a fresh box and returns the figures. Fails only when the set-up
/// fails; requirements missed are in [`Outcome::problems`].
pub async fn run(params: &Params) -> anyhow::Result<Outcome> {
    // 2,000 attack connections and more: this process needs the descriptors.
    let need = (params.half_requests + params.logins + params.slow_https + 512) as u64;
    let ours = rlimit::increase_nofile_limit(need * 2)?;
    if ours < need {
        bail!("this process may open {ours} files; the attacks need {need}");
    }
    let prlimit = format!("--nofile={BOX_NOFILE}:{BOX_NOFILE}");
    // A monitoring window around now, so the mosaic streams (no schedule: nothing is watched).
    let config = format!("{CONFIG}{}", crate::schedule_including_now());
    let b = BoxProcess::start_under(&["prlimit", &prlimit, "--"], &config)
        .await
        .context("starting the box under prlimit (util-linux)")?;
    let pid = b.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .context("no open-file limit")?;
    let soft: u64 = nofile
        .split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .context("open-file limit")?;
    anyhow::ensure!(
        soft == BOX_NOFILE,
        "the box runs with {nofile:?}, not {BOX_NOFILE}"
    );
    let codecs = std::fs::read_to_string(b.dir.path().join("ready.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["codec"].as_str().map(str::to_string))
        .unwrap_or_default();

    // The room: one station streaming, one to connect during the link attacks, and the
    // identity of a stolen PC.
    let probe = lanterne_media::init()?;
    let dirs = tempfile::tempdir()?;
    let station_dir = |n: &str| dirs.path().join(n);
    b.enrol(&station_dir("poste-01"), "poste-01").await?;
    b.enrol(&station_dir("poste-02"), "poste-02").await?;
    b.enrol(&station_dir("poste-vole"), "poste-vole").await?;
    let start_station = |name: &str| {
        lanterne_station::spawn_station(
            &station_dir(name),
            lanterne_station::SourceSpec::Live(lanterne_media::CaptureSource::Synthetic {
                label: name.into(),
                rgb: [40, 70, 200],
            }),
            Arc::new(lanterne_station::screen::SimulatedScreen::default()),
            Arc::new(lanterne_station::system::SimulatedSystem::default()),
            &probe,
            name.into(),
        )
    };
    let streaming = start_station("poste-01")?;
    let until = Instant::now() + Duration::from_secs(30);
    while !streaming.status.borrow().connected {
        anyhow::ensure!(Instant::now() < until, "the station did not connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stolen_tls =
        lanterne_station::identity::Identity::load(&station_dir("poste-vole"))?.link_tls()?;

    let https = b.https()?;
    let password = b.ready.admin_password.clone().context("first start")?;
    let cookie = https.login("admin", &password).await?;
    let mut ws = https.websocket("/api/mosaic", &cookie).await?;
    let samples = Arc::new(Mutex::new(Samples::default()));
    // The mosaic: wait for its first frame, then timestamp every one.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        anyhow::ensure!(Instant::now() < until, "no mosaic frame");
        if let WsItem::Video(_) = next_item(&mut ws, Duration::from_secs(30)).await? {
            break;
        }
    }
    let mosaic_task = {
        let samples = samples.clone();
        tokio::spawn(async move {
            while let Ok(item) = next_item(&mut ws, Duration::from_secs(3600)).await {
                if let WsItem::Video(_) = item {
                    samples.lock().expect("samples").mosaic.push(Instant::now());
                }
            }
        })
    };
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            loop {
                let usage = box_usage(pid);
                {
                    let mut s = samples.lock().expect("samples");
                    match usage {
                        Some((rss, fds)) => {
                            s.rss_mb_max = s.rss_mb_max.max(rss);
                            s.fds_max = s.fds_max.max(fds);
                        }
                        None => s.dead = true,
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The attackers' own runtime (one thread: one PC).
    let attack_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("attacker")
        .enable_all()
        .build()?;
    let rt = attack_rt.handle().clone();
    let https_port: u16 = b
        .ready
        .https_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .context("HTTPS port")?;
    let https_aim = Aim {
        addr: SocketAddr::from(([127, 0, 0, 1], https_port)),
        https_tls: https_client_tls(&b.ready.ca_cert)?,
        host: format!("127.0.0.1:{https_port}"),
    };
    let link_aim = Aim {
        addr: b.ready.station_link,
        ..https_aim.clone()
    };

    let mut phases = Vec::new();
    let every = Duration::from_millis(params.sign_in_every_ms);
    let teacher = Teacher {
        https: &https,
        password: &password,
        every,
    };

    // Baseline: no attack.
    phases.push(
        phase(
            "no attack",
            &samples,
            &teacher,
            Vec::new(),
            tokio::time::sleep(Duration::from_secs(3)),
            None,
        )
        .await,
    );

    // 1. Half-sent requests, from 16 addresses, then from one.
    for (name, from) in [
        ("half-requests, 16 addresses", sources(0, 0, 10, 16)),
        ("half-requests, one address", sources(0, 0, 2, 1)),
    ] {
        let attack = Attack::start(
            &rt,
            Kind::HalfRequest,
            "https",
            https_aim.clone(),
            params.half_requests,
            &from,
        );
        phases.push(
            phase(
                name,
                &samples,
                &teacher,
                vec![attack],
                tokio::time::sleep(Duration::from_secs(params.half_request_phase_s)),
                None,
            )
            .await,
        );
    }

    // 2. and 3. Slow heads and slow bodies, on both ports, while a station connects.
    for (name, https_kind, link_kind) in [
        ("slow headers", Kind::SlowHeaders, Kind::SlowClientHello),
        (
            "slow bodies",
            Kind::SlowBody,
            Kind::SlowHello(stolen_tls.clone()),
        ),
    ] {
        let attacks = vec![
            Attack::start(
                &rt,
                https_kind,
                "https",
                https_aim.clone(),
                params.slow_https,
                &sources(0, 1, 1, 40),
            ),
            Attack::start(
                &rt,
                link_kind,
                "station-link",
                link_aim.clone(),
                params.slow_link,
                &sources(0, 2, 1, 20),
            ),
        ];
        phases.push(
            phase(
                name,
                &samples,
                &teacher,
                attacks,
                tokio::time::sleep(Duration::from_secs(params.slow_phase_s)),
                Some(&start_station),
            )
            .await,
        );
    }

    // 4. Logins at once, with random names.
    let figures = Arc::new(Mutex::new(None));
    let storm = rt.spawn({
        let (aim, figures, count) = (https_aim.clone(), figures.clone(), params.logins);
        async move {
            let f = login_storm(&aim, count, &sources(0, 3, 1, 16)).await;
            *figures.lock().expect("figures") = Some(f);
        }
    });
    let mut p = phase("logins", &samples, &teacher, Vec::new(), storm, None).await;
    p.logins = figures.lock().expect("figures").take();
    phases.push(p);

    sampler.abort();
    mosaic_task.abort();
    attack_rt.shutdown_background();
    streaming.shutdown().await;
    let log = b.log();
    let box_exited = box_usage(pid).is_none();
    Ok(Outcome {
        box_nofile: soft,
        phases,
        box_accept_error_lines: log.lines().filter(|l| l.contains("accept failed")).count(),
        box_exited,
        box_codecs: codecs,
    })
}

/// Starts a station by name (enrolled already).
type StartStation<'a> = dyn Fn(&str) -> anyhow::Result<lanterne_station::RunningStation> + 'a;

/// Signs the teacher in, again and again.
struct Teacher<'a> {
    https: &'a crate::Https,
    password: &'a str,
    every: Duration,
}

impl Teacher<'_> {
    /// Signs in until `until` resolves; returns each sign-in's time (ms) and the failures.
    async fn sign_in_until<F: std::future::Future>(&self, until: F) -> (Vec<f64>, Vec<String>) {
        let mut times = Vec::new();
        let mut failures = Vec::new();
        let mut until = std::pin::pin!(until);
        loop {
            let t0 = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(15),
                self.https.login("admin", self.password),
            )
            .await;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            match r {
                Ok(Ok(_)) => {
                    times.push(ms);
                    if ms > SIGN_IN_LIMIT.as_secs_f64() * 1000.0 {
                        failures.push(format!("took {} ms", round1(ms)));
                    }
                }
                Ok(Err(e)) => failures.push(format!("failed after {} ms: {e}", round1(ms))),
                Err(_) => failures.push("did not finish within 15 s".to_string()),
            }
            tokio::select! {
                _ = &mut until => return (times, failures),
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }
}

/// Runs one phase: the attacks are already started; the teacher signs in until `until`
/// resolves (after the attacks had [`RAMP`] to open their connections); a station connects
/// meanwhile if `station` is given.
async fn phase<F: std::future::Future>(
    name: &str,
    samples: &Mutex<Samples>,
    teacher: &Teacher<'_>,
    attacks: Vec<Attack>,
    until: F,
    station: Option<&StartStation<'_>>,
) -> Phase {
    let started = Instant::now();
    if !attacks.is_empty() {
        tokio::time::sleep(RAMP).await;
    }
    {
        let mut s = samples.lock().expect("samples");
        s.rss_mb_max = 0.0;
        s.fds_max = 0;
        s.mosaic.clear();
    }
    let measured_from = Instant::now();
    let station_probe = async {
        let s = station?;
        let t0 = Instant::now();
        let running = s("poste-02").ok()?;
        let mut status = running.status.clone();
        let connected =
            tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| s.connected))
                .await
                .is_ok_and(|r| r.is_ok());
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        running.shutdown().await;
        Some(if connected { ms } else { f64::INFINITY })
    };
    let ((times, failures), station_ms) = tokio::join!(teacher.sign_in_until(until), station_probe);
    let measured_to = Instant::now();
    let mut figures = Vec::new();
    for a in attacks {
        figures.push(a.finish().await);
    }
    let s = samples.lock().expect("samples");
    let mut gaps = Vec::new();
    let mut last = measured_from;
    for t in s
        .mosaic
        .iter()
        .filter(|t| **t >= measured_from && **t <= measured_to)
    {
        gaps.push((*t - last).as_secs_f64() * 1000.0);
        last = *t;
    }
    gaps.push((measured_to - last).as_secs_f64() * 1000.0);
    Phase {
        name: name.to_string(),
        duration_s: round1(started.elapsed().as_secs_f64()),
        attacks: figures,
        sign_ins: times.len(),
        sign_in_ms_p50: round1(nan_to_zero(percentile(&times, 50.0))),
        sign_in_ms_p99: round1(nan_to_zero(percentile(&times, 99.0))),
        sign_in_ms_max: round1(nan_to_zero(percentile(&times, 100.0))),
        sign_in_failures: failures,
        mosaic_frames: gaps.len() - 1,
        mosaic_max_gap_ms: round1(gaps.iter().cloned().fold(0.0, f64::max)),
        box_rss_mb_max: round1(s.rss_mb_max),
        box_fds_max: s.fds_max,
        box_alive: !s.dead,
        station_connect_ms: station_ms.map(round1),
        logins: None,
    }
}

/// How long the attacks get to open their connections before the teacher is measured.
const RAMP: Duration = Duration::from_secs(2);
