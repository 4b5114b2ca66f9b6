//! The station end of the station link: connect, say hello, then carry the box's orders to
//! the video source and the source's frames to the box, reconnecting with backoff forever.
//!
//! Priorities: the loop always serves control (orders from the box, acks, heartbeats) before
//! media, and the media queue between the encoder and this loop is short and lossy, so an
//! order never waits behind more than the one frame being written. When frames were lost on
//! the way (queue overflow), the loop drops the stream's frames until the next keyframe and
//! asks the encoder for one, so the box never receives a stream it cannot decode.
//!
//! Whenever the link is down, both streams are switched off: nobody is watching, so nothing
//! is captured.
//!
//! The box may also relay a demo to this station: [`Control::DemoStart`] opens a
//! [`DemoPlayer`], media frames of [`Stream::Demo`] feed it (never waiting: the player drops
//! when behind), a health report goes back every second, and [`Control::DemoStop`] or the
//! end of the link closes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lanterne_media::{CodecProbe, DemoPlayer, EncodedFrame, PlayerConfig, StreamKind};
use lanterne_wire::{
    Capabilities, Control, DemoHealth, DemoMode, DemoStart, Frame, FrameCodec, MediaHeader, Stream,
    StreamSettings, WireError, PROTOCOL_VERSION,
};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::commands::AllowList;
use crate::identity::{Identity, BOX_SERVER_NAME};
use crate::screen::Screen;
use crate::system::SystemActions;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
const SILENCE_LIMIT: Duration = Duration::from_secs(20);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);
/// How often the demo player's health goes to the box.
const DEMO_HEALTH_EVERY: Duration = Duration::from_secs(1);

/// What the link drives: a live screen encoder or a replayed file.
pub trait VideoSource: Send + Sync {
    /// Start (Some) or stop (None) a stream. Err explains why it cannot be done.
    fn set_stream(&self, stream: Stream, settings: Option<StreamSettings>) -> Result<(), String>;
    fn request_keyframe(&self, stream: Stream);
    fn capabilities(&self) -> Capabilities;
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection timed out")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("the box refused this station: {0}")]
    Refused(String),
    #[error("the box closed the link")]
    Closed,
    #[error("the box was silent for {0:?}")]
    Silent(Duration),
    #[error("protocol error: {0}")]
    Wire(#[from] WireError),
    #[error("unexpected message from the box: {0}")]
    Unexpected(String),
    #[error("TLS setup: {0}")]
    Identity(#[from] crate::identity::IdentityError),
}

/// Observable state of the link, for logs, tests and the agent's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub connected: bool,
    pub station_id: Option<u32>,
    pub thumb_on: bool,
    pub full_on: bool,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    /// The demo player's last health report (`playing` false once it stopped).
    pub demo: Option<DemoHealth>,
    /// What the box said when it last stopped a demo here.
    pub demo_end_reason: Option<String>,
}

/// The running demo player and what its fps figure is computed from.
struct Demo {
    player: DemoPlayer,
    last_report: Instant,
    decoded_at_last_report: u64,
}

pub struct Link {
    /// The room's monitoring hours as the box sent them; checked here too (defence in depth).
    schedule: Option<lanterne_privacy::schedule::Schedule>,
    clock: lanterne_privacy::policy::SystemClock,
    /// The hours notice is shown once per agent run, not at every reconnection.
    notice_shown: bool,
    identity: Arc<Identity>,
    source: Arc<dyn VideoSource>,
    screen: Arc<dyn Screen>,
    system: Arc<dyn SystemActions>,
    media: mpsc::Receiver<(StreamKind, EncodedFrame)>,
    status: tokio::sync::watch::Sender<LinkStatus>,
    hostname: String,
    probe: CodecProbe,
    demo: Option<Demo>,
    /// The student's input is blocked for a full-screen demo.
    input_blocked: bool,
    /// The commands this PC's own configuration lets the box run (none by default).
    commands: Arc<AllowList>,
}

impl Link {
    pub fn new(
        identity: Arc<Identity>,
        source: Arc<dyn VideoSource>,
        screen: Arc<dyn Screen>,
        system: Arc<dyn SystemActions>,
        media: mpsc::Receiver<(StreamKind, EncodedFrame)>,
        hostname: String,
        probe: CodecProbe,
    ) -> (Self, tokio::sync::watch::Receiver<LinkStatus>) {
        let (status, rx) = tokio::sync::watch::channel(LinkStatus::default());
        (
            Link {
                schedule: None,
                clock: lanterne_privacy::policy::SystemClock::new(),
                notice_shown: false,
                identity,
                source,
                screen,
                system,
                media,
                status,
                hostname,
                probe,
                demo: None,
                input_blocked: false,
                commands: Arc::new(AllowList::default()),
            },
            rx,
        )
    }

    /// Lets the box run the commands of `list` (and only those).
    pub fn with_allowed_commands(mut self, list: Arc<AllowList>) -> Self {
        self.commands = list;
        self
    }

    /// Runs until the task is dropped: connect, serve, back off, again.
    pub async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let started = Instant::now();
            let result = self.session().await;
            self.stop_streams();
            self.status.send_modify(|s| {
                s.connected = false;
                s.thumb_on = false;
                s.full_on = false;
            });
            match &result {
                Err(LinkError::Refused(r)) => {
                    warn!("box refused this station: {r}");
                    backoff = BACKOFF_MAX;
                }
                Err(e) => info!("station link down: {e}"),
                Ok(()) => {}
            }
            // A session that lasted a while was healthy: start over with a short delay.
            if started.elapsed() > Duration::from_secs(30) {
                backoff = BACKOFF_MIN;
            }
            let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1);
            tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn stop_streams(&mut self) {
        for s in [Stream::Thumb, Stream::Full] {
            let _ = self.source.set_stream(s, None);
        }
        // Without the box there is nothing to show: the player closes with the link.
        self.stop_demo(None);
        let screen = self.screen.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = screen.set_watched(false) {
                warn!("cannot remove the watched indicator: {e}");
            }
        });
        // Frames captured for the previous session are stale: drop them.
        while self.media.try_recv().is_ok() {}
    }

    async fn session(&mut self) -> Result<(), LinkError> {
        let addr = self.identity.enrolment.link.clone();
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| LinkError::Timeout)?
            .map_err(|source| LinkError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(self.identity.link_tls()?);
        let name = ServerName::try_from(BOX_SERVER_NAME).expect("static DNS name");
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| LinkError::Timeout)?
            .map_err(LinkError::Tls)?;
        let mut framed = Framed::new(tls, FrameCodec);
        framed
            .send(Frame::Control(Control::Hello {
                protocol: PROTOCOL_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").to_string(),
                hostname: self.hostname.clone(),
                capabilities: self.source.capabilities(),
            }))
            .await?;
        let welcome = tokio::time::timeout(CONNECT_TIMEOUT, framed.next())
            .await
            .map_err(|_| LinkError::Timeout)?;
        let station_id = match welcome {
            None => return Err(LinkError::Closed),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Frame::Control(Control::Welcome {
                station_id, name, ..
            }))) => {
                info!(%name, station_id, "connected to the box");
                station_id
            }
            Some(Ok(Frame::Control(Control::Refused { reason }))) => {
                return Err(LinkError::Refused(reason))
            }
            Some(Ok(other)) => return Err(LinkError::Unexpected(format!("{other:?}"))),
        };
        self.status.send_modify(|s| {
            s.connected = true;
            s.station_id = Some(station_id);
        });

        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut last_heard = Instant::now();
        let mut resync = [Resync::default(), Resync::default()];
        let (ctl_tx, mut ctl_rx) = mpsc::channel::<Control>(32);
        // The box learns what this screen shows (e.g. still locked from before a restart).
        framed
            .send(Frame::Control(Control::Shown(self.screen.shown())))
            .await?;
        let mut dismissed = self.screen.dismissals();
        let mut dismissals_open = true;
        // The first report goes out when the player opens; the tick follows a second later.
        let mut demo_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + DEMO_HEALTH_EVERY,
            DEMO_HEALTH_EVERY,
        );
        loop {
            tokio::select! {
                biased;
                out = ctl_rx.recv() => {
                    let out = out.expect("sender held by this loop");
                    framed.send(Frame::Control(out)).await?;
                }
                incoming = framed.next() => {
                    last_heard = Instant::now();
                    match incoming {
                        None => return Err(LinkError::Closed),
                        Some(Err(e)) => return Err(e.into()),
                        Some(Ok(Frame::Control(c))) => self.on_control(c, &ctl_tx, &mut resync),
                        Some(Ok(Frame::Media { header, data })) => {
                            if header.stream != Stream::Demo {
                                return Err(LinkError::Unexpected(format!(
                                    "{:?} media from the box",
                                    header.stream
                                )));
                            }
                            // Frames that arrive after a stop (they were queued) are dropped.
                            if let Some(d) = &self.demo {
                                d.player.push(EncodedFrame {
                                    data,
                                    keyframe: header.keyframe,
                                    capture_us: header.capture_us,
                                    seq: header.seq,
                                });
                            }
                        }
                    }
                }
                d = dismissed.recv(), if dismissals_open => match d {
                    // Id 0 is the station's own countdown notice, not a teacher's message.
                    Ok(0) => {}
                    Ok(id) => framed.send(Frame::Control(Control::MessageRead { id })).await?,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        warn!(lost = n, "message dismissals were lost");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        // The screen is gone; nothing more will be dismissed.
                        dismissals_open = false;
                    }
                },
                _ = demo_tick.tick(), if self.demo.is_some() => {
                    let health = self.demo_health();
                    framed.send(Frame::Control(Control::DemoHealth(health))).await?;
                }
                _ = beat.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        return Err(LinkError::Silent(SILENCE_LIMIT));
                    }
                    self.enforce_schedule(&ctl_tx);
                    framed.send(Frame::Control(Control::Heartbeat { sent_us: lanterne_wire::now_us() })).await?;
                }
                m = self.media.recv() => {
                    let Some((kind, frame)) = m else { return Err(LinkError::Closed) };
                    let stream = crate::sources::wire_stream(kind);
                    let r = &mut resync[stream_index(stream)];
                    if !r.accept(&frame) {
                        self.status.send_modify(|s| s.frames_dropped += 1);
                        if r.should_request_keyframe() {
                            self.source.request_keyframe(stream);
                        }
                        continue;
                    }
                    framed.send(Frame::Media {
                        header: MediaHeader {
                            stream,
                            keyframe: frame.keyframe,
                            seq: frame.seq,
                            capture_us: frame.capture_us,
                        },
                        data: frame.data,
                    }).await?;
                    self.status.send_modify(|s| s.frames_sent += 1);
                }
            }
        }
    }

    fn on_control(&mut self, c: Control, ctl_tx: &mpsc::Sender<Control>, resync: &mut [Resync; 2]) {
        match c {
            Control::SetStream { stream, settings } => {
                let result = match settings {
                    Some(s) => s
                        .validate()
                        .and_then(|_| self.outside_hours().map_or(Ok(()), Err))
                        .and_then(|_| self.source.set_stream(stream, Some(s))),
                    None => self.source.set_stream(stream, None),
                };
                match result {
                    Ok(()) => {
                        debug!(?stream, ?settings, "stream settings applied");
                        // A (re)started stream begins with a keyframe; wait for it.
                        resync[stream_index(stream)] = Resync::default();
                        let on = settings.is_some();
                        self.status.send_modify(|s| match stream {
                            Stream::Thumb => s.thumb_on = on,
                            Stream::Full => s.full_on = on,
                            // Refused by every source before this point.
                            Stream::Demo => {}
                        });
                        // The student sees an indicator whenever video leaves the station.
                        let watched = {
                            let st = self.status.borrow();
                            st.thumb_on || st.full_on
                        };
                        self.apply_screen(ctl_tx, move |s| s.set_watched(watched));
                    }
                    Err(message) => {
                        warn!(?stream, "cannot apply stream settings: {message}");
                        let _ = ctl_tx.try_send(Control::StationError { message });
                    }
                }
            }
            Control::RequestKeyframe { stream } => self.source.request_keyframe(stream),
            Control::DemoStart(order) => self.start_demo(order, ctl_tx),
            Control::DemoStop { reason } => {
                info!(%reason, "the box stopped the demo");
                self.stop_demo(Some(reason));
                if let Some(h) = self.status.borrow().demo {
                    let _ = ctl_tx.try_send(Control::DemoHealth(h));
                }
            }
            Control::Schedule { config_json } => self.on_schedule(&config_json, ctl_tx),
            Control::Lock { message } => {
                let message = lanterne_wire::bounded_text(&message);
                self.apply_screen(ctl_tx, move |s| s.lock(&message));
            }
            Control::Unlock => self.apply_screen(ctl_tx, |s| s.unlock()),
            Control::RunCommand {
                id,
                program,
                args,
                timeout_s,
            } => {
                let (tx, allowed) = (ctl_tx.clone(), self.commands.clone());
                let timeout = Duration::from_secs(u64::from(timeout_s.clamp(1, 600)));
                match allowed.check(&program, &args) {
                    Ok(()) => info!(id, %program, "running a command ordered by the box"),
                    Err(reason) => warn!(id, "refusing a command ordered by the box: {reason}"),
                }
                tokio::spawn(async move {
                    let o = crate::commands::run_ordered(&allowed, &program, &args, timeout).await;
                    let _ = tx
                        .send(Control::CommandResult {
                            id,
                            exit_code: o.exit_code,
                            stdout: o.stdout,
                            stderr: o.stderr,
                            error: o.error,
                        })
                        .await;
                });
            }
            Control::Power {
                action,
                countdown_s,
            } => {
                let (screen, system, tx) =
                    (self.screen.clone(), self.system.clone(), ctl_tx.clone());
                let countdown = countdown_s.min(600);
                tokio::spawn(async move {
                    let what = match action {
                        lanterne_wire::PowerAction::Shutdown => "s'éteindre",
                        lanterne_wire::PowerAction::Restart => "redémarrer",
                        lanterne_wire::PowerAction::Logout => "fermer votre session",
                        lanterne_wire::PowerAction::OpenSession => "ouvrir une session",
                    };
                    if countdown > 0 {
                        // Message id 0 is the station's own notice (the box numbers from 1).
                        let text = format!(
                            "Cet ordinateur va {what} dans {countdown} s. Enregistrez votre travail."
                        );
                        let s = screen.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            s.show_message(0, "Lanterne", &text)
                        })
                        .await;
                        tokio::time::sleep(Duration::from_secs(countdown.into())).await;
                    }
                    let result = tokio::task::spawn_blocking(move || system.power(action))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    let _ = tx
                        .send(Control::ActionResult {
                            action: action.name().into(),
                            ok: result.is_ok(),
                            detail: result.err().unwrap_or_default(),
                        })
                        .await;
                });
            }
            Control::OpenUrl { url } => {
                let (system, tx) = (self.system.clone(), ctl_tx.clone());
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || system.open_url(&url))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    let _ = tx
                        .send(Control::ActionResult {
                            action: "open-url".into(),
                            ok: result.is_ok(),
                            detail: result.err().unwrap_or_default(),
                        })
                        .await;
                });
            }
            Control::ShowMessage { id, from, text } => {
                let (from, text) = (
                    lanterne_wire::bounded_text(&from),
                    lanterne_wire::bounded_text(&text),
                );
                self.apply_screen(ctl_tx, move |s| s.show_message(id, &from, &text));
            }
            Control::Heartbeat { sent_us } => {
                let _ = ctl_tx.try_send(Control::HeartbeatAck { sent_us });
            }
            Control::HeartbeatAck { .. } => {}
            other => debug!("ignoring {other:?} from the box"),
        }
    }
}

impl Link {
    /// Opens the demo player (closing one already open: a new order replaces it).
    fn start_demo(&mut self, order: DemoStart, ctl_tx: &mpsc::Sender<Control>) {
        // A demo replacing another keeps the input block as it is, rather than lifting it and
        // setting it again from two blocking tasks that could run in either order.
        let was_blocked = std::mem::take(&mut self.input_blocked);
        self.stop_demo(None);
        let fullscreen = order.mode == DemoMode::FullScreen;
        if let Err(message) = order.validate() {
            warn!("refusing a demo order: {message}");
            let _ = ctl_tx.try_send(Control::StationError { message });
            if was_blocked {
                self.apply_screen(ctl_tx, |s| s.block_input(false));
            }
            return;
        }
        let output = self.screen.demo_output(fullscreen);
        // Full screen: the student watches, and cannot use the station meanwhile; given back
        // when the demo ends for any reason (stop_demo).
        self.input_blocked = fullscreen;
        if fullscreen != was_blocked {
            self.apply_screen(ctl_tx, move |s| s.block_input(fullscreen));
        }
        let config = PlayerConfig {
            label: order.source.clone(),
            region: order.region.map(|r| (r.x, r.y, r.width, r.height)),
            output,
        };
        match DemoPlayer::start(&config, &self.probe) {
            Ok(player) => {
                info!(source = %order.source, mode = ?order.mode, "demo player open");
                self.demo = Some(Demo {
                    player,
                    last_report: Instant::now(),
                    decoded_at_last_report: 0,
                });
                let health = self.demo_health();
                let _ = ctl_tx.try_send(Control::DemoHealth(health));
            }
            Err(e) => {
                warn!("cannot open the demo player: {e}");
                let _ = ctl_tx.try_send(Control::StationError {
                    message: format!("cannot open the demo player: {e}"),
                });
            }
        }
    }

    /// Closes the player, keeping its last counters (with `playing` false) in the status.
    fn stop_demo(&mut self, reason: Option<String>) {
        if std::mem::take(&mut self.input_blocked) {
            let screen = self.screen.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = screen.block_input(false) {
                    warn!("cannot give the student's input back: {e}");
                }
            });
        }
        if let Some(d) = self.demo.take() {
            let s = d.player.stats();
            self.status.send_modify(|st| {
                st.demo = Some(DemoHealth {
                    playing: false,
                    frames_decoded: s.frames_decoded,
                    frames_dropped: s.frames_dropped,
                    fps_x100: 0,
                    centre_rgb: s.centre_rgb,
                });
            });
        }
        if reason.is_some() {
            self.status.send_modify(|st| st.demo_end_reason = reason);
        }
    }

    /// The player's counters now, also kept in the status.
    fn demo_health(&mut self) -> DemoHealth {
        let Some(d) = self.demo.as_mut() else {
            return DemoHealth::default();
        };
        let s = d.player.stats();
        let secs = d.last_report.elapsed().as_secs_f64();
        let fps_x100 = if secs > 0.0 {
            ((s.frames_decoded - d.decoded_at_last_report) as f64 * 100.0 / secs) as u32
        } else {
            0
        };
        d.last_report = Instant::now();
        d.decoded_at_last_report = s.frames_decoded;
        let health = DemoHealth {
            playing: true,
            frames_decoded: s.frames_decoded,
            frames_dropped: s.frames_dropped,
            fps_x100,
            centre_rgb: s.centre_rgb,
        };
        self.status.send_modify(|st| st.demo = Some(health));
        health
    }

    /// Why video may not leave now, by this station's own clock and the box's schedule.
    fn outside_hours(&self) -> Option<String> {
        use lanterne_privacy::policy::Clock;
        let schedule = self.schedule.as_ref()?;
        let now = self.clock.now();
        if schedule.is_monitoring_at(now) {
            return None;
        }
        Some(match schedule.next_monitoring_start(now) {
            Some(next) => format!(
                "outside the monitoring hours by this station's clock (next window {} {:02}:{:02})",
                next.date(),
                next.hour(),
                next.minute()
            ),
            None => "outside the monitoring hours by this station's clock".to_string(),
        })
    }

    fn on_schedule(&mut self, json: &str, ctl_tx: &mpsc::Sender<Control>) {
        let parsed = serde_json::from_str::<lanterne_privacy::schedule::ScheduleConfig>(json)
            .map_err(|e| e.to_string())
            .and_then(|c| c.validate().map_err(|e| e.to_string()));
        match parsed {
            Ok(schedule) => {
                if !self.notice_shown {
                    self.notice_shown = true;
                    let hours = schedule.monitoring_summary(lanterne_privacy::Lang::Fr);
                    let text = format!(
                        "Votre écran peut être observé par l'enseignant pendant ces heures : \
                         {hours}. Le voyant de la salle et le badge « Écran observé » \
                         l'indiquent ; en dehors, rien n'est transmis."
                    );
                    // Message id 0 is the station's own notice.
                    self.apply_screen(ctl_tx, move |s| s.show_message(0, "Lanterne", &text));
                }
                self.schedule = Some(schedule);
                self.enforce_schedule(ctl_tx);
            }
            Err(e) => {
                warn!("the box sent a schedule this station cannot use: {e}");
                let _ = ctl_tx.try_send(Control::StationError {
                    message: format!("unusable schedule: {e}"),
                });
            }
        }
    }

    /// Stops every stream when the station's clock says the window has closed, even if the
    /// box has not (yet) said so.
    fn enforce_schedule(&mut self, ctl_tx: &mpsc::Sender<Control>) {
        let on = {
            let st = self.status.borrow();
            st.thumb_on || st.full_on
        };
        if !on {
            return;
        }
        if let Some(why) = self.outside_hours() {
            warn!("stopping video: {why}");
            for s in [Stream::Thumb, Stream::Full] {
                let _ = self.source.set_stream(s, None);
            }
            self.status.send_modify(|s| {
                s.thumb_on = false;
                s.full_on = false;
            });
            self.apply_screen(ctl_tx, |s| s.set_watched(false));
            let _ = ctl_tx.try_send(Control::StationError {
                message: format!("video stopped: {why}"),
            });
        }
    }

    /// Runs a screen change off the link task (grabbing input may take a moment), then
    /// reports what the screen shows, or the error.
    fn apply_screen(
        &self,
        ctl_tx: &mpsc::Sender<Control>,
        change: impl FnOnce(&dyn Screen) -> Result<(), String> + Send + 'static,
    ) {
        let screen = self.screen.clone();
        let tx = ctl_tx.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(message) = change(screen.as_ref()) {
                warn!("screen change failed: {message}");
                let _ = tx.blocking_send(Control::StationError { message });
            }
            let _ = tx.blocking_send(Control::Shown(screen.shown()));
        });
    }
}

fn stream_index(s: Stream) -> usize {
    match s {
        Stream::Thumb => 0,
        // The box never asks a station to send the demo stream (refused in `on_control`).
        Stream::Full | Stream::Demo => 1,
    }
}

/// Per-stream gate: passes frames while the sequence is contiguous; after a gap (frames lost
/// before reaching the link) or at stream start, waits for a keyframe.
#[derive(Debug)]
struct Resync {
    last_seq: Option<u64>,
    waiting_for_key: bool,
    last_request: Option<Instant>,
}

impl Default for Resync {
    fn default() -> Self {
        Resync {
            last_seq: None,
            waiting_for_key: true,
            last_request: None,
        }
    }
}

impl Resync {
    fn accept(&mut self, f: &EncodedFrame) -> bool {
        if let Some(last) = self.last_seq {
            if f.seq != last.wrapping_add(1) {
                self.waiting_for_key = true;
            }
        }
        self.last_seq = Some(f.seq);
        if f.keyframe {
            self.waiting_for_key = false;
        }
        !self.waiting_for_key
    }

    fn should_request_keyframe(&mut self) -> bool {
        let due = self
            .last_request
            .is_none_or(|t| t.elapsed() >= KEYFRAME_REQUEST_GAP);
        if due {
            self.last_request = Some(Instant::now());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(seq: u64, keyframe: bool) -> EncodedFrame {
        EncodedFrame {
            data: bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            keyframe,
            capture_us: 0,
            seq,
        }
    }

    #[test]
    fn resync_waits_for_a_keyframe_at_start_and_after_a_gap() {
        let mut r = Resync::default();
        assert!(!r.accept(&f(1, false)), "stream must start at a keyframe");
        assert!(r.accept(&f(2, true)));
        assert!(r.accept(&f(3, false)));
        assert!(!r.accept(&f(5, false)), "gap: 4 was lost");
        assert!(!r.accept(&f(6, false)));
        assert!(r.accept(&f(7, true)));
        assert!(r.accept(&f(8, false)));
    }

    #[test]
    fn keyframe_requests_are_rate_limited() {
        let mut r = Resync::default();
        assert!(r.should_request_keyframe());
        assert!(!r.should_request_keyframe());
    }
}
