//! Harness for cross-process scenarios: starts the real `lanterne-box` binary in a temporary
//! directory, enrols stations through its HTTPS API, logs in like a tablet, reads the video
//! WebSockets and decodes what arrives.
//!
//! The binaries must be built first (`cargo build --workspace --bins`; `scripts/test.sh` does
//! it). They are looked up next to the test executable (`target/<profile>/`).

pub mod bench;
pub mod hostile;
pub mod xscreen;
pub mod xvfb;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, Limited};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;
pub type Ws = tokio_tungstenite::WebSocketStream<Tls>;

/// Path of a workspace binary built in the same profile as this test or benchmark.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own executable path");
    // Tests live in target/<profile>/deps/, benchmark binaries in target/<profile>/.
    let mut dir = exe.parent().expect("executable has a directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("deps has a parent");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (same profile) first",
        path.display()
    );
    path
}

#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    pub https_url: String,
    #[serde(default)]
    pub http_redirect: Option<std::net::SocketAddr>,
    pub station_link: std::net::SocketAddr,
    /// The HTTPS CA: what a tablet installs.
    pub ca_cert: PathBuf,
    pub ca_fingerprint: String,
    /// The station CA: what stations pin (enrolment tokens carry its fingerprint).
    pub station_ca_cert: PathBuf,
    pub station_ca_fingerprint: String,
    pub admin_password: Option<String>,
}

/// The development room (what the box runs without `--config`) with a monitoring schedule
/// that includes the present, so screens may be watched: see [`schedule_including_now`].
pub fn development_config() -> String {
    format!(
        "[room]\nname = \"Salle de démonstration\"\nschool = \"Établissement de démonstration\"\n\
         [panel]\nbackend = \"simulated\"\n[accounts]\nrequire_totp_for_admins = false\n{}",
        schedule_including_now()
    )
}

/// A `[schedule]` section under which screens may be watched now and for about eleven hours
/// either way: stations open all day every day, watched all day but for the policy's
/// 30-minute monitoring-free slot, placed about twelve hours from now (box local time, as
/// the box reads it: the same time zone as this process). A box without a schedule watches
/// nothing, so every scenario that needs video starts its box with one.
pub fn schedule_including_now() -> String {
    use lanterne_privacy::policy::Clock;
    let now = lanterne_privacy::policy::SystemClock::new().now();
    let minute = u32::from(now.hour()) * 60 + u32::from(now.minute());
    // Both monitoring windows stay non-empty: the slot starts between 01:00 and 23:00.
    let free = ((minute + 12 * 60) % (24 * 60)).clamp(60, 23 * 60);
    let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let days = r#"["mon", "tue", "wed", "thu", "fri", "sat", "sun"]"#;
    format!(
        "[schedule]\n\
         access = [{{ days = {days}, start = \"00:00\", end = \"24:00\" }}]\n\
         monitoring = [\n\
         {{ days = {days}, start = \"00:00\", end = \"{}\" }},\n\
         {{ days = {days}, start = \"{}\", end = \"24:00\" }},\n\
         ]\n",
        hhmm(free),
        hhmm(free + 30)
    )
}

/// A running `lanterne-box run`, killed on drop.
pub struct BoxProcess {
    child: Child,
    pub dir: tempfile::TempDir,
    pub ready: Ready,
    log: PathBuf,
}

impl BoxProcess {
    /// The development room, with a schedule that allows monitoring now
    /// ([`development_config`]).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_config(&development_config()).await
    }

    /// The development room exactly as the box runs it without `--config`: no schedule, so
    /// no screen may ever be watched.
    pub async fn start_unscheduled() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir).await
    }

    /// Starts the box with this room configuration (TOML); addresses are still overridden
    /// to free loopback ports.
    pub async fn start_with_config(toml: &str) -> anyhow::Result<Self> {
        Self::start_with(toml, &[]).await
    }

    /// Like [`BoxProcess::start_with_config`], with extra environment variables for the box
    /// (e.g. `TZ`, to give the box another local time than the stations).
    ///
    /// Unless the config has an `[accounts]` section, two-factor login is not required of the
    /// admin, so scenarios about other things can log in with the password alone
    /// (`two_factor.rs` tests the requirement itself).
    pub async fn start_with(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut toml = toml.to_string();
        if !toml.contains("[accounts]") {
            toml.push_str("\n[accounts]\nrequire_totp_for_admins = false\n");
        }
        std::fs::write(dir.path().join("lanterne.toml"), toml)?;
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        std::fs::write(dir.path().join("env"), vars.join("\n"))?;
        Self::start_in(dir).await
    }

    /// Like [`BoxProcess::start_with_config`], with the box started through `wrapper` (a
    /// command that runs the rest of its arguments in its own place, e.g.
    /// `["prlimit", "--nofile=1024:1024", "--"]`), so that [`BoxProcess::pid`] is still the box.
    pub async fn start_under(wrapper: &[&str], toml: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut toml = toml.to_string();
        if !toml.contains("[accounts]") {
            toml.push_str("\n[accounts]\nrequire_totp_for_admins = false\n");
        }
        std::fs::write(dir.path().join("lanterne.toml"), toml)?;
        std::fs::write(dir.path().join("wrapper"), wrapper.join("\n"))?;
        Self::start_in(dir).await
    }

    /// Starts the box on an existing data directory (for restart scenarios). A
    /// `lanterne.toml` in it is used as the configuration.
    pub async fn start_in(dir: tempfile::TempDir) -> anyhow::Result<Self> {
        let ready_path = dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready_path);
        let log = dir.path().join("box.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        // A restarted box takes the ports it had, as a real box does: enrolled stations keep
        // the station link address they were given.
        let ports_file = dir.path().join("ports.json");
        let (https, link) = match std::fs::read_to_string(&ports_file) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_str(&text)?;
                (
                    v["https"].as_str().unwrap_or("127.0.0.1:0").to_string(),
                    v["link"].as_str().unwrap_or("127.0.0.1:0").to_string(),
                )
            }
            Err(_) => ("127.0.0.1:0".to_string(), "127.0.0.1:0".to_string()),
        };
        let wrapper = std::fs::read_to_string(dir.path().join("wrapper")).unwrap_or_default();
        let mut wrapper = wrapper.lines().filter(|l| !l.is_empty());
        let mut cmd = match wrapper.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(wrapper).arg(bin("lanterne-box"));
                cmd
            }
            None => Command::new(bin("lanterne-box")),
        };
        cmd.args(["run", "--data-dir"]).arg(dir.path().join("box"));
        let config = dir.path().join("lanterne.toml");
        if config.exists() {
            cmd.arg("--config").arg(config);
        }
        if let Ok(vars) = std::fs::read_to_string(dir.path().join("env")) {
            for line in vars.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    cmd.env(k, v);
                }
            }
        }
        let child = cmd
            .args(["--https", &https, "--station-link", &link])
            .arg("--ready-file")
            .arg(&ready_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("starting lanterne-box")?;
        let mut me = BoxProcess {
            child,
            dir,
            ready: Ready {
                https_url: String::new(),
                http_redirect: None,
                station_link: "0.0.0.0:0".parse().expect("static"),
                ca_cert: PathBuf::new(),
                ca_fingerprint: String::new(),
                station_ca_cert: PathBuf::new(),
                station_ca_fingerprint: String::new(),
                admin_password: None,
            },
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = me.child.try_wait()? {
                bail!("lanterne-box exited with {status}:\n{}", me.log());
            }
            if let Ok(text) = std::fs::read_to_string(&ready_path) {
                if let Ok(r) = serde_json::from_str::<Ready>(&text) {
                    let https_port = r.https_url.rsplit(':').next().unwrap_or("0");
                    std::fs::write(
                        &ports_file,
                        serde_json::json!({
                            "https": format!("127.0.0.1:{https_port}"),
                            "link": r.station_link.to_string(),
                        })
                        .to_string(),
                    )?;
                    me.ready = r;
                    // The first admin's generated password must be replaced at the first
                    // sign-in; the harness does it (as the admin would) unless the scenario
                    // is about that step itself (`keep-first-password` in the directory).
                    // A box serving the school's own certificate cannot be reached through
                    // the box CA the harness trusts: such scenarios sign in themselves.
                    let school_cert = std::fs::read_to_string(me.dir.path().join("lanterne.toml"))
                        .is_ok_and(|t| t.contains("tls_cert"));
                    if let Some(pw) = me.ready.admin_password.clone() {
                        if !school_cert && !me.dir.path().join("keep-first-password").exists() {
                            let new = format!("{pw}-Lt9");
                            me.https()?.replace_first_password(&pw, &new).await?;
                            me.ready.admin_password = Some(new);
                        }
                    }
                    return Ok(me);
                }
            }
            if Instant::now() > deadline {
                bail!("lanterne-box not ready after 60 s:\n{}", me.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn box_dir(&self) -> PathBuf {
        self.dir.path().join("box")
    }

    /// Everything the box logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the box log contains every one of `needles` on one line.
    pub async fn wait_log_line(
        &self,
        needles: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Ok(line.to_string());
            }
            if Instant::now() > deadline {
                bail!(
                    "no log line with {needles:?} within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn enrol_tokens(&self, count: u32) -> anyhow::Result<Vec<lanterne_station::enrol::Token>> {
        let out = Command::new(bin("lanterne-box"))
            .args(["enrol-codes", "--data-dir"])
            .arg(self.box_dir())
            .args(["--count", &count.to_string()])
            .output()?;
        if !out.status.success() {
            bail!(
                "enrol-codes failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout)?
            .lines()
            .map(|l| l.parse().map_err(|e| anyhow!("{e}")))
            .collect()
    }

    /// Enrols a station identity into `dir` (as `hostname`) with a fresh token.
    pub async fn enrol(
        &self,
        dir: &Path,
        hostname: &str,
    ) -> anyhow::Result<lanterne_station::identity::Enrolment> {
        let token = self.enrol_tokens(1)?.remove(0);
        Ok(
            lanterne_station::enrol::enrol(dir, &self.ready.https_url, &token, hostname, None)
                .await?,
        )
    }

    pub fn https(&self) -> anyhow::Result<Https> {
        Https::new(&self.ready.https_url, &self.ready.ca_cert)
    }

    /// The box's process id (for CPU and memory readings in benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the box with SIGTERM-like kill and returns its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }
}

impl Drop for BoxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 connection to the box that serves one request after the other.
pub struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl KeepAlive {
    /// One request on this connection; `headers` are added as given.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        self.sender.ready().await?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(&v)?)
            }
            None => Bytes::new(),
        };
        let res = self.sender.send_request(req.body(Full::new(body))?).await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = Limited::new(res.into_body(), 4 << 20)
            .collect()
            .await
            .map_err(|e| anyhow!("{e}"))?
            .to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A minimal HTTPS client that trusts only the box's HTTPS CA, like a tablet that installed it.
pub struct Https {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Https {
    pub fn new(url: &str, ca: &Path) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("https://").context("https URL")?;
        let (host, port) = rest.rsplit_once(':').context("host:port")?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(ca)?)?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Https {
            host: host.to_string(),
            port: port.trim_end_matches('/').parse()?,
            tls: Arc::new(tls),
        })
    }

    pub fn origin(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }

    async fn connect(&self) -> anyhow::Result<Tls> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let name = ServerName::try_from(self.host.clone())?;
        Ok(tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?)
    }

    /// One request on a fresh connection. `headers` are added as given (e.g. Origin, Cookie).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        self.keep_alive()
            .await?
            .request(method, path, body, headers)
            .await
    }

    /// One connection kept open for many requests, as a browser keeps one to the box.
    pub async fn keep_alive(&self) -> anyhow::Result<KeepAlive> {
        let stream = self.connect().await?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(KeepAlive {
            sender,
            host: format!("{}:{}", self.host, self.port),
        })
    }

    /// A same-origin JSON POST with a session cookie, as the tablet's page makes it.
    pub async fn post_json(&self, cookie: &str, path: &str, body: serde_json::Value) -> Response {
        let origin = self.origin();
        self.request(
            "POST",
            path,
            Some(body),
            &[("cookie", cookie), ("origin", &origin)],
        )
        .await
        .expect("the box answers")
    }

    /// Logs in and returns the `Cookie` header value of the session.
    pub async fn login(&self, user: &str, password: &str) -> anyhow::Result<String> {
        let origin = self.origin();
        let res = self
            .request(
                "POST",
                "/api/login",
                Some(serde_json::json!({ "username": user, "password": password })),
                &[("origin", origin.as_str())],
            )
            .await?;
        if res.status != 200 {
            bail!(
                "login failed: {} {}",
                res.status,
                String::from_utf8_lossy(&res.body)
            );
        }
        let set = res
            .headers
            .get("set-cookie")
            .context("no session cookie")?
            .to_str()?;
        Ok(set.split(';').next().unwrap_or_default().to_string())
    }

    /// Signs `admin` in with the generated first password and replaces it, as the first
    /// sign-in demands.
    pub async fn replace_first_password(&self, first: &str, new: &str) -> anyhow::Result<()> {
        let cookie = self.login("admin", first).await?;
        let res = self
            .post_json(
                &cookie,
                "/api/account/password",
                serde_json::json!({ "current_password": first, "new_password": new }),
            )
            .await;
        if res.status != 204 {
            bail!(
                "replacing the first password failed: {} {}",
                res.status,
                String::from_utf8_lossy(&res.body)
            );
        }
        Ok(())
    }

    /// Opens a WebSocket with the session cookie and a same-origin `Origin`.
    pub async fn websocket(&self, path: &str, cookie: &str) -> anyhow::Result<Ws> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let stream = self.connect().await?;
        let mut req = format!("wss://{}:{}{}", self.host, self.port, path).into_client_request()?;
        req.headers_mut().insert("cookie", cookie.parse()?);
        req.headers_mut().insert("origin", self.origin().parse()?);
        let (ws, _) = tokio_tungstenite::client_async(req, stream).await?;
        Ok(ws)
    }
}

/// One video message from a box WebSocket, parsed per the documented layout.
#[derive(Debug, Clone)]
pub struct VideoMessage {
    pub keyframe: bool,
    pub seq: u64,
    pub capture_us: u64,
    pub updates: Vec<(u16, u64)>,
    pub au: Bytes,
}

pub fn parse_video_message(b: &[u8]) -> anyhow::Result<VideoMessage> {
    if b.len() < 20 || b[0] != 1 {
        bail!("bad video message header");
    }
    let n = u16::from_be_bytes([b[18], b[19]]) as usize;
    let start = 20 + n * 10;
    if b.len() <= start {
        bail!("video message shorter than its updates");
    }
    let updates = (0..n)
        .map(|i| {
            let o = 20 + i * 10;
            (
                u16::from_be_bytes([b[o], b[o + 1]]),
                u64::from_be_bytes(b[o + 2..o + 10].try_into().expect("8 bytes")),
            )
        })
        .collect();
    Ok(VideoMessage {
        keyframe: b[1] & 1 != 0,
        seq: u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")),
        capture_us: u64::from_be_bytes(b[10..18].try_into().expect("8 bytes")),
        updates,
        au: Bytes::copy_from_slice(&b[start..]),
    })
}

/// What a WebSocket delivered: text (JSON) or video.
pub enum WsItem {
    Json(serde_json::Value),
    Video(VideoMessage),
}

pub async fn next_item(ws: &mut Ws, timeout: Duration) -> anyhow::Result<WsItem> {
    loop {
        let msg = tokio::time::timeout(timeout, ws.next())
            .await
            .map_err(|_| anyhow!("nothing on the WebSocket within {timeout:?}"))?
            .context("WebSocket closed")??;
        match msg {
            Message::Text(t) => return Ok(WsItem::Json(serde_json::from_str(t.as_str())?)),
            Message::Binary(b) => return Ok(WsItem::Video(parse_video_message(&b)?)),
            Message::Close(_) => bail!("WebSocket closed by the box"),
            _ => {}
        }
    }
}

/// Decodes Annex B access units (starting at a keyframe) and returns the last picture as
/// packed RGB: (width, height, pixels).
pub fn decode_last_rgb(aus: &[Bytes]) -> anyhow::Result<(u32, u32, Vec<u8>)> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init()?;
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time caps=video/x-h264,stream-format=byte-stream,alignment=au \
         ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .context("src")?
        .downcast::<gstreamer_app::AppSrc>()
        .map_err(|_| anyhow!("appsrc"))?;
    let sink = pipeline
        .by_name("sink")
        .context("sink")?
        .downcast::<gstreamer_app::AppSink>()
        .map_err(|_| anyhow!("appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    for (i, au) in aus.iter().enumerate() {
        let mut buf = gst::Buffer::from_slice(au.clone());
        buf.get_mut()
            .expect("fresh buffer")
            .set_pts(gst::ClockTime::from_mseconds(i as u64 * 40));
        src.push_buffer(buf)?;
    }
    src.end_of_stream()?;
    let mut last = None;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        last = Some(sample);
    }
    pipeline.set_state(gst::State::Null)?;
    let sample = last.context("the decoder produced no picture")?;
    let caps = sample.caps().context("caps")?;
    let s = caps.structure(0).context("structure")?;
    let (w, h) = (
        s.get::<i32>("width")? as u32,
        s.get::<i32>("height")? as u32,
    );
    let map = sample
        .buffer()
        .context("buffer")?
        .map_readable()
        .map_err(|_| anyhow!("map"))?;
    // RGB rows are padded to 4 bytes by GStreamer's default stride.
    let stride = ((w * 3).div_ceil(4) * 4) as usize;
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for row in 0..h as usize {
        rgb.extend_from_slice(&map[row * stride..row * stride + w as usize * 3]);
    }
    Ok((w, h, rgb))
}

/// Mean colour of a square of `r` pixels around (x, y).
pub fn mean_rgb(img: &(u32, u32, Vec<u8>), x: u32, y: u32, r: u32) -> [u8; 3] {
    let (w, h, px) = img;
    let mut sum = [0u64; 3];
    let mut n = 0u64;
    for yy in y.saturating_sub(r)..(y + r).min(*h) {
        for xx in x.saturating_sub(r)..(x + r).min(*w) {
            let o = ((yy * w + xx) * 3) as usize;
            for c in 0..3 {
                sum[c] += px[o + c] as u64;
            }
            n += 1;
        }
    }
    let n = n.max(1);
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

pub fn close_to(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}
