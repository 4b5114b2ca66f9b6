//! The station end of the station link, in the station's system service: connect, say hello,
//! then carry the box's orders and the student session's reports and video, reconnecting
//! with backoff forever.
//!
//! The service does itself only what needs the PC's own authority: power, log out, open a
//! session, and commands from the PC's own allow-list. Everything the student sees or uses
//! (streams, lock, messages, demo, open a URL) is relayed to the session half
//! ([`crate::session`]), which runs as the student in the session helper, or in this
//! process for simulated stations. Sessions come and go ([`SessionConn`]): the link
//! remembers what the box wants shown (lock, streams, demo) and gives it to a session that
//! connects, and while none is connected no video leaves the station and the box is told so
//! (nothing shown, and an error for what it asked).
//!
//! What a session sends is checked here before it reaches the box: only reports a session
//! may make (what it shows, messages read, demo health, errors, the open-URL result), at a
//! bounded rate, and video only of the streams the box asked for within the monitoring
//! hours.
//!
//! Priorities: the loop always serves control (orders from the box, acks, heartbeats) before
//! media, and the media queue between the encoder and this loop is short and lossy, so an
//! order never waits behind more than the one frame being written. When frames were lost on
//! the way (queue overflow), the loop drops the stream's frames until the next keyframe and
//! asks the encoder for one, so the box never receives a stream it cannot decode.
//!
//! Whenever the link is down, both streams and any demo are switched off: nobody is
//! watching, so nothing is captured.
//!
//! Video leaves only when the box asks for it, inside the monitoring hours by this station's
//! own clock (the box sends the schedule; none means never): a timer to the next window edge
//! stops it at the edge itself. The session shows the "watched" badge whenever it sends video,
//! and reports whether it can (`Shown::indicator_available`); the box asks no video of a
//! station that cannot.
//!
//! Remote help: the box's request goes to the session, which asks the student. The link
//! follows the answer the session reports, and passes the box's input on only for the help
//! the student accepted (the session and its screen check again). While accepted help runs,
//! the full stream may flow outside the monitoring hours: the student's consent, shown by the
//! banner for its whole length, is the safeguard there. Input for any other help is refused
//! and the box is told.
//!
//! When the box offers to renew this station's certificate ([`Control::RenewCertificate`]),
//! the link sends a request for a new key and stores the certificate that comes back; the
//! next connection uses it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lanterne_media::EncodedFrame;
use lanterne_wire::{
    Capabilities, Control, DemoHealth, DemoStart, Frame, FrameCodec, MediaHeader, Shown, Stream,
    StreamSettings, WireError, PROTOCOL_VERSION,
};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::commands::AllowList;
use crate::identity::{Identity, BOX_SERVER_NAME};
use crate::session::{SessionConn, VideoFrame};
use crate::system::SystemActions;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
const SILENCE_LIMIT: Duration = Duration::from_secs(20);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);
/// Reports a session may send in one second; a session sending more is broken or hostile
/// and is dropped (a real one sends a few per teacher action and one demo report a second).
const SESSION_REPORTS_PER_SECOND: u32 = 200;
/// Video stops at a monitoring window's end by a timer armed for that moment; this coarse
/// re-check only catches the station's wall clock being moved (the timer runs on the
/// monotonic clock) and re-arms the timer.
const SCHEDULE_RECHECK: Duration = Duration::from_secs(60);
/// How long the edge timer sleeps when no edge is coming (no schedule, or no window).
const NO_EDGE: Duration = Duration::from_secs(24 * 3600);
/// How long a starting service waits for a waiting session's first report.
const FIRST_REPORT_WAIT: Duration = Duration::from_secs(2);
/// What the box is told when something needs a session and none is connected.
const NO_SESSION: &str = "no student session is connected on this station (its session \
     helper is not running)";

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
    /// The box asked for this stream, within the monitoring hours, and a session is there
    /// to send it.
    pub thumb_on: bool,
    pub full_on: bool,
    /// A session is connected (always, for a station whose session runs in this process).
    pub session: bool,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    /// The demo player's last health report (`playing` false once it stopped).
    pub demo: Option<DemoHealth>,
    /// What the box said when it last stopped a demo here.
    pub demo_end_reason: Option<String>,
    /// Certificates renewed over the link since the agent started.
    pub certificate_renewals: u64,
    /// Remote help the student accepted and that still runs.
    pub help_active: Option<u64>,
    /// Remote-help input messages refused (no consent for their help).
    pub input_refused: u64,
}

/// What the box wants the student's session to show; given again to a session that
/// connects, since the box says it only once.
#[derive(Debug, Default)]
struct Wanted {
    /// The lock message, while the box wants the screen locked.
    lock: Option<String>,
    /// Thumbnail and full stream settings, while the box wants them.
    streams: [Option<StreamSettings>; 2],
    demo: Option<DemoStart>,
    /// The box shows this station's screen to the class.
    shown_to_class: bool,
}

/// Counts a session's reports per second.
#[derive(Debug)]
struct ReportBudget {
    window: Instant,
    count: u32,
}

impl ReportBudget {
    fn new() -> Self {
        ReportBudget {
            window: Instant::now(),
            count: 0,
        }
    }

    /// False once the session sent more than its share this second.
    fn take(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        self.count <= SESSION_REPORTS_PER_SECOND
    }
}

/// Something from the session side.
enum SessionEvent {
    Connected(SessionConn),
    Report(Control),
    Video(VideoFrame),
    /// The session closed its end.
    Gone,
    /// An order for the session from a task of this link (the power countdown notice).
    Order(Control),
}

pub struct Link {
    /// The room's monitoring hours as the box sent them; checked here too (defence in depth).
    schedule: Option<lanterne_privacy::schedule::Schedule>,
    clock: lanterne_privacy::policy::SystemClock,
    /// The hours notice is shown once per session, not at every reconnection to the box.
    notice_shown: bool,
    identity: Arc<Identity>,
    system: Arc<dyn SystemActions>,
    /// Sessions as they connect (closed for good when nothing can connect any more).
    sessions: mpsc::Receiver<SessionConn>,
    sessions_open: bool,
    session: Option<SessionConn>,
    wanted: Wanted,
    /// What the session last said it shows; nothing without a session.
    shown: Shown,
    /// Who the session was, when it went and the box has not been told yet.
    gone_notice: Option<String>,
    /// Who is logged in at the station (display name) and whether their hand is up, for as
    /// long as their session lasts; `student_changed`: the box has not heard the latest.
    user: Option<String>,
    hand: bool,
    student_changed: bool,
    budget: ReportBudget,
    /// Orders for the session from this link's own tasks.
    to_session: mpsc::Sender<Control>,
    to_session_rx: mpsc::Receiver<Control>,
    status: tokio::sync::watch::Sender<LinkStatus>,
    hostname: String,
    /// The commands this PC's own configuration lets the box run (none by default).
    commands: Arc<AllowList>,
    /// The new key of a certificate renewal the box offered, until its certificate comes.
    renewal: Option<crate::identity::PendingRenewal>,
    /// Remote help asked of the session: its id and whether the student accepted it.
    help: Option<(u64, bool)>,
    /// A help the box must hear has ended because the session went.
    help_gone: Option<u64>,
}

impl Link {
    /// A link for the enrolled station `identity`, serving the sessions that arrive on
    /// `sessions`.
    pub fn new(
        identity: Arc<Identity>,
        system: Arc<dyn SystemActions>,
        sessions: mpsc::Receiver<SessionConn>,
        hostname: String,
    ) -> (Self, tokio::sync::watch::Receiver<LinkStatus>) {
        let (status, rx) = tokio::sync::watch::channel(LinkStatus::default());
        let (to_session, to_session_rx) = mpsc::channel(8);
        (
            Link {
                schedule: None,
                clock: lanterne_privacy::policy::SystemClock::new(),
                notice_shown: false,
                identity,
                system,
                sessions,
                sessions_open: true,
                session: None,
                wanted: Wanted::default(),
                shown: Shown::default(),
                gone_notice: None,
                user: None,
                hand: false,
                student_changed: false,
                budget: ReportBudget::new(),
                to_session,
                to_session_rx,
                status,
                hostname,
                commands: Arc::new(AllowList::default()),
                renewal: None,
                help: None,
                help_gone: None,
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
        self.first_session_report().await;
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
            self.offline(backoff + Duration::from_millis(jitter)).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// A session already waiting when the service starts (the in-process session of a
    /// simulated station, or a helper that was quicker than the service) first says what it
    /// shows, so the box's first report from this station is the session's own rather than
    /// "nothing shown": otherwise a view opened meanwhile would be ended for a missing badge.
    /// Waits for that first report at most [`FIRST_REPORT_WAIT`], and not at all without a
    /// session.
    async fn first_session_report(&mut self) {
        let Ok(conn) = self.sessions.try_recv() else {
            return;
        };
        self.session_connected(conn);
        let until = tokio::time::Instant::now() + FIRST_REPORT_WAIT;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                ev = self.next_session_event() => {
                    let shown = matches!(ev, SessionEvent::Report(Control::Shown(_)));
                    let _ = self.on_session_event(ev, None);
                    if shown || self.session.is_none() {
                        return;
                    }
                }
            }
        }
    }

    /// Waits `wait` before the next attempt, serving the session side meanwhile: sessions
    /// connect and go, and their reports must not pile up (they only update the status).
    async fn offline(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                ev = self.next_session_event() => {
                    let _ = self.on_session_event(ev, None);
                }
            }
        }
    }

    fn stop_streams(&mut self) {
        for s in [Stream::Thumb, Stream::Full] {
            if self.wanted.streams[stream_index(s)].take().is_some() {
                let _ = self.order_session(Control::SetStream {
                    stream: s,
                    settings: None,
                });
            }
        }
        // Nobody keeps control of this PC through a link that is down.
        if let Some((id, _)) = self.help.take() {
            let _ = self.order_session(Control::HelpStop { id });
            self.status.send_modify(|st| st.help_active = None);
        }
        self.wanted.shown_to_class = false;
        // Without the box there is nothing to show: the player closes with the link.
        if self.wanted.demo.take().is_some() {
            let _ = self.order_session(Control::DemoStop {
                reason: "the link to the box is down".into(),
            });
        }
        // Frames captured for the previous session are stale: drop them.
        if let Some(s) = self.session.as_mut() {
            while s.media.try_recv().is_ok() {}
        }
    }

    async fn session(&mut self) -> Result<(), LinkError> {
        // A session already waiting is taken now, so the hello announces its capture.
        while let Ok(conn) = self.sessions.try_recv() {
            self.session_connected(conn);
        }
        // The box hears what is shown after the welcome anyway.
        self.gone_notice = None;
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
                capabilities: self.capabilities(),
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
            .send(Frame::Control(Control::Shown(self.shown.clone())))
            .await?;
        if self.session.is_none() {
            framed
                .send(Frame::Control(Control::StationError {
                    message: format!("{NO_SESSION}: no video, lock or messages until one connects"),
                }))
                .await?;
        }
        // A timer to the next monitoring edge by this station's clock, re-armed after each
        // edge, each schedule from the box and each coarse re-check.
        let mut edge = std::pin::pin!(tokio::time::sleep_until(self.next_edge()));
        let mut recheck = tokio::time::interval(SCHEDULE_RECHECK);
        // The box keeps who is at the station and a raised hand only while connected.
        self.student_changed = true;
        loop {
            for c in self.gone_notice().into_iter().flatten() {
                framed.send(Frame::Control(c)).await?;
            }
            if std::mem::take(&mut self.student_changed) {
                framed
                    .send(Frame::Control(Control::SessionUser {
                        display_name: self.user.clone(),
                    }))
                    .await?;
                framed
                    .send(Frame::Control(Control::HandRaised { raised: self.hand }))
                    .await?;
            }
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
                        Some(Ok(Frame::Control(c))) => {
                            let schedule = matches!(c, Control::Schedule { .. });
                            self.on_control(c, &ctl_tx, &mut resync);
                            if schedule {
                                edge.as_mut().reset(self.next_edge());
                            }
                        }
                        Some(Ok(Frame::Media { header, data })) => {
                            if header.stream != Stream::Demo {
                                return Err(LinkError::Unexpected(format!(
                                    "{:?} media from the box",
                                    header.stream
                                )));
                            }
                            // Lossy: the player drops and resyncs at a keyframe. Frames that
                            // arrive after a stop (they were queued) are dropped.
                            if let (Some(s), true) = (&self.session, self.wanted.demo.is_some()) {
                                let _ = s.demo.try_send((header, data));
                            }
                        }
                    }
                }
                _ = &mut edge => {
                    self.enforce_schedule(&ctl_tx);
                    edge.as_mut().reset(self.next_edge());
                }
                _ = recheck.tick() => {
                    self.enforce_schedule(&ctl_tx);
                    edge.as_mut().reset(self.next_edge());
                }
                _ = beat.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        return Err(LinkError::Silent(SILENCE_LIMIT));
                    }
                    framed.send(Frame::Control(Control::Heartbeat { sent_us: lanterne_wire::now_us() })).await?;
                }
                ev = self.next_session_event() => {
                    if let Some(frame) = self.on_session_event(ev, Some((&ctl_tx, &mut resync))) {
                        framed.send(frame).await?;
                        self.status.send_modify(|s| s.frames_sent += 1);
                    }
                }
            }
        }
    }

    fn on_control(&mut self, c: Control, ctl_tx: &mpsc::Sender<Control>, resync: &mut [Resync; 2]) {
        match c {
            Control::SetStream { stream, settings } => {
                let result = if stream == Stream::Demo {
                    Err("a station does not send the demo stream".to_string())
                } else {
                    match settings {
                        Some(s) => s.validate().and_then(|_| {
                            // Accepted remote help shows the helper this screen at any hour.
                            if stream == Stream::Full && self.help_accepted() {
                                return Ok(());
                            }
                            self.outside_hours().map_or(Ok(()), Err)
                        }),
                        None => Ok(()),
                    }
                };
                match result {
                    Ok(()) => {
                        debug!(?stream, ?settings, "stream settings for the session");
                        self.wanted.streams[stream_index(stream)] = settings;
                        // A (re)started stream begins with a keyframe; wait for it.
                        resync[stream_index(stream)] = Resync::default();
                        self.publish_streams();
                        // The session shows the watched indicator whenever it sends video.
                        let sent = self.order_session(Control::SetStream { stream, settings });
                        if let (Err(why), Some(_)) = (sent, settings) {
                            let _ = ctl_tx.try_send(Control::StationError {
                                message: format!("no video: {why}"),
                            });
                        }
                    }
                    Err(message) => {
                        warn!(?stream, "cannot apply stream settings: {message}");
                        let _ = ctl_tx.try_send(Control::StationError { message });
                    }
                }
            }
            Control::RequestKeyframe { stream } => {
                let _ = self.order_session(Control::RequestKeyframe { stream });
            }
            Control::DemoStart(order) => {
                self.wanted.demo = Some(order.clone());
                if let Err(why) = self.order_session(Control::DemoStart(order)) {
                    let _ = ctl_tx.try_send(Control::StationError {
                        message: format!("cannot show the demo: {why}"),
                    });
                }
            }
            Control::DemoStop { reason } => {
                info!(%reason, "the box stopped the demo");
                self.wanted.demo = None;
                self.status
                    .send_modify(|st| st.demo_end_reason = Some(reason.clone()));
                // The session answers with the player's last counters.
                let _ = self.order_session(Control::DemoStop { reason });
            }
            Control::Schedule { config_json } => self.on_schedule(&config_json, ctl_tx),
            Control::HelpAsk(ask) => {
                let id = ask.id;
                let unavailable = |reason: String| Control::HelpState {
                    id,
                    state: lanterne_wire::HelpState::Unavailable { reason },
                };
                if let Err(reason) = ask.validate() {
                    let _ = ctl_tx.try_send(unavailable(reason));
                } else if let Some((open, _)) = self.help.filter(|(open, _)| *open != id) {
                    let _ = ctl_tx.try_send(unavailable(format!(
                        "remote help {open} is already open on this station"
                    )));
                } else {
                    self.help = Some((id, false));
                    if let Err(why) = self.order_session(Control::HelpAsk(ask)) {
                        self.help = None;
                        let _ = ctl_tx.try_send(unavailable(format!("nobody can be asked: {why}")));
                    }
                }
            }
            Control::HelpInput { id, events } => {
                if self.help != Some((id, true)) {
                    self.status.send_modify(|st| st.input_refused += 1);
                    warn!(
                        id,
                        "remote-help input without the student's consent: refused"
                    );
                    let _ = ctl_tx.try_send(Control::StationError {
                        message: format!(
                            "remote-help input refused: the student has not accepted help {id}, \
                             or ended it"
                        ),
                    });
                } else if let Err(message) = lanterne_wire::validate_input(&events) {
                    let _ = ctl_tx.try_send(Control::StationError {
                        message: format!("remote-help input refused: {message}"),
                    });
                } else if self
                    .order_session(Control::HelpInput { id, events })
                    .is_err()
                {
                    warn!(id, "remote-help input dropped: no session");
                }
            }
            Control::HelpStop { id } => {
                if self.help.is_some_and(|(open, _)| open == id) {
                    // The session confirms with HelpState::Ended.
                    let _ = self.order_session(Control::HelpStop { id });
                    self.help = None;
                    self.status.send_modify(|st| st.help_active = None);
                    self.stop_full_outside_hours();
                }
            }
            Control::ShownToClass { on } => {
                self.wanted.shown_to_class = on;
                let _ = self.order_session(Control::ShownToClass { on });
            }
            Control::Lock { message } => {
                let message = lanterne_wire::bounded_text(&message);
                self.wanted.lock = Some(message.clone());
                if let Err(why) = self.order_session(Control::Lock { message }) {
                    let _ = ctl_tx.try_send(Control::StationError {
                        message: format!("cannot lock: {why}"),
                    });
                }
            }
            Control::Unlock => {
                self.wanted.lock = None;
                // Nothing is locked without a session.
                let _ = self.order_session(Control::Unlock);
            }
            Control::HandCleared => {
                self.hand = false;
                // Without a session there is no hand to take down.
                let _ = self.order_session(Control::HandCleared);
            }
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
                let (to_session, system, tx) =
                    (self.to_session.clone(), self.system.clone(), ctl_tx.clone());
                // Log out ends the session of the student whose helper is connected.
                let session_uid = self.session.as_ref().and_then(|s| s.uid);
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
                        let _ = to_session
                            .send(Control::ShowMessage {
                                id: 0,
                                from: "Lanterne".into(),
                                text,
                            })
                            .await;
                        tokio::time::sleep(Duration::from_secs(countdown.into())).await;
                    }
                    let result =
                        tokio::task::spawn_blocking(move || system.power(action, session_uid))
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
                // Opened by the session, as the student: never by this service.
                if let Err(why) = self.order_session(Control::OpenUrl { url }) {
                    let _ = ctl_tx.try_send(Control::ActionResult {
                        action: "open-url".into(),
                        ok: false,
                        detail: why,
                    });
                }
            }
            Control::ShowMessage { id, from, text } => {
                let (from, text) = (
                    lanterne_wire::bounded_text(&from),
                    lanterne_wire::bounded_text(&text),
                );
                if let Err(why) = self.order_session(Control::ShowMessage { id, from, text }) {
                    let _ = ctl_tx.try_send(Control::StationError {
                        message: format!("cannot show the message: {why}"),
                    });
                }
            }
            Control::Heartbeat { sent_us } => {
                let _ = ctl_tx.try_send(Control::HeartbeatAck { sent_us });
            }
            Control::HeartbeatAck { .. } => {}
            Control::RenewCertificate => self.request_certificate(ctl_tx),
            Control::CertificateIssued { cert_pem } => self.store_certificate(&cert_pem, ctl_tx),
            other => debug!("ignoring {other:?} from the box"),
        }
    }
}

impl Link {
    /// What the hello tells the box about capture: the session's, or that there is none.
    fn capabilities(&self) -> Capabilities {
        match &self.session {
            Some(s) => s.capabilities.clone(),
            None => Capabilities {
                capture: "none (no session)".into(),
                encoder: "none".into(),
                screen: None,
            },
        }
    }

    /// Passes an order to the session. Err says why it could not (no session, or one that
    /// stopped reading: that one is dropped rather than waited for).
    fn order_session(&mut self, c: Control) -> Result<(), String> {
        let Some(s) = &self.session else {
            return Err(NO_SESSION.to_string());
        };
        match s.orders.try_send(c) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(peer = %s.peer, "the session stopped reading orders; dropping it");
                self.session_gone();
                Err(NO_SESSION.to_string())
            }
            // It is going; its closed reports say so next.
            Err(mpsc::error::TrySendError::Closed(_)) => Err(NO_SESSION.to_string()),
        }
    }

    /// Streams on in the status: wanted and a session to send them.
    fn publish_streams(&self) {
        let there = self.session.is_some();
        let thumb = there && self.wanted.streams[0].is_some();
        let full = there && self.wanted.streams[1].is_some();
        self.status.send_modify(|s| {
            s.thumb_on = thumb;
            s.full_on = full;
            s.session = there;
        });
    }

    /// The next thing from the session side. Reports and orders come before video.
    async fn next_session_event(&mut self) -> SessionEvent {
        loop {
            let Link {
                sessions,
                sessions_open,
                session,
                to_session_rx,
                ..
            } = self;
            let (reports, media) = match session.as_mut() {
                Some(s) => (Some(&mut s.reports), Some(&mut s.media)),
                None => (None, None),
            };
            tokio::select! {
                biased;
                order = to_session_rx.recv() => {
                    return SessionEvent::Order(order.expect("sender held by the link"));
                }
                report = recv_if(reports) => {
                    return match report {
                        Some(c) => SessionEvent::Report(c),
                        None => SessionEvent::Gone,
                    };
                }
                conn = sessions.recv(), if *sessions_open => match conn {
                    Some(c) => return SessionEvent::Connected(c),
                    None => *sessions_open = false,
                },
                frame = recv_if(media) => {
                    return match frame {
                        Some(f) => SessionEvent::Video(f),
                        // The encoder is gone; the session's reports say the rest.
                        None => SessionEvent::Gone,
                    };
                }
            }
        }
    }

    /// Handles what came from the session side; `online` holds the queue to the box and the
    /// resync gates while the box is connected. Returns a video frame to send to the box.
    fn on_session_event(
        &mut self,
        ev: SessionEvent,
        online: Option<(&mpsc::Sender<Control>, &mut [Resync; 2])>,
    ) -> Option<Frame> {
        let to_box = |c: Control| {
            if let Some((tx, _)) = &online {
                if tx.try_send(c).is_err() {
                    warn!("a report for the box was dropped (queue full)");
                }
            }
        };
        match ev {
            SessionEvent::Order(c) => {
                let _ = self.order_session(c);
                None
            }
            SessionEvent::Connected(conn) => {
                self.session_connected(conn);
                None
            }
            SessionEvent::Gone => {
                self.session_gone();
                None
            }
            SessionEvent::Report(c) => {
                if !self.budget.take() {
                    warn!(
                        "the session sent more than {SESSION_REPORTS_PER_SECOND} reports in a \
                         second; dropping it"
                    );
                    self.session_gone();
                    return None;
                }
                match self.on_report(c) {
                    Ok(Some(c)) => to_box(c),
                    Ok(None) => {}
                    Err(what) => {
                        warn!("the session sent {what}, which it may not; dropping it");
                        self.session_gone();
                    }
                }
                None
            }
            SessionEvent::Video((kind, frame)) => {
                let (_, resync) = online?;
                let stream = crate::sources::wire_stream(kind);
                // Only what the box asked for, within the hours, leaves the station.
                self.wanted.streams[stream_index(stream)]?;
                let r = &mut resync[stream_index(stream)];
                if !r.accept(&frame) {
                    self.status.send_modify(|s| s.frames_dropped += 1);
                    if r.should_request_keyframe() {
                        let _ = self.order_session(Control::RequestKeyframe { stream });
                    }
                    return None;
                }
                Some(Frame::Media {
                    header: MediaHeader {
                        stream,
                        keyframe: frame.keyframe,
                        seq: frame.seq,
                        capture_us: frame.capture_us,
                    },
                    data: frame.data,
                })
            }
        }
    }

    /// Checks one report from the session ([`check_report`]) and keeps what the link needs
    /// from it. Ok(Some) goes on to the box.
    fn on_report(&mut self, c: Control) -> Result<Option<Control>, String> {
        match c {
            Control::HandRaised { raised } => {
                // A session that is gone has no hand; a connected one says so once.
                if self.hand != raised {
                    self.hand = raised;
                    self.student_changed = true;
                }
                return Ok(None);
            }
            // Only a session in this process (the simulated classroom) says who is logged
            // in; a helper's account is what the kernel said when it connected.
            Control::SessionUser { display_name } => {
                if self.session.as_ref().is_some_and(|s| s.uid.is_some()) {
                    return Err("who is logged in (the service knows it from the account)".into());
                }
                if let Some(name) = &display_name {
                    lanterne_wire::validate_display_name(name)?;
                }
                if self.user != display_name {
                    self.user = display_name;
                    self.student_changed = true;
                }
                return Ok(None);
            }
            _ => {}
        }
        let c = check_report(c)?;
        match &c {
            Some(Control::Shown(shown)) => self.shown = shown.clone(),
            Some(Control::DemoHealth(h)) => self.status.send_modify(|st| st.demo = Some(*h)),
            Some(Control::HelpState { id, state }) => {
                match self.help {
                    // Only the help this link asked for; anything else is not passed on.
                    Some((open, _)) if open == *id => {}
                    _ => return Ok(None),
                }
                if *state == lanterne_wire::HelpState::Accepted {
                    self.help = Some((*id, true));
                    self.status.send_modify(|st| st.help_active = Some(*id));
                } else if state.is_final() {
                    self.help = None;
                    self.status.send_modify(|st| st.help_active = None);
                    self.stop_full_outside_hours();
                }
            }
            _ => {}
        }
        Ok(c)
    }

    /// A session connected: it gets what the box wants shown right now.
    fn session_connected(&mut self, conn: SessionConn) {
        if let Some(old) = self.session.take() {
            warn!(old = %old.peer, new = %conn.peer, "a new session replaces the connected one");
        }
        info!(peer = %conn.peer, capture = %conn.capabilities.capture, "session connected");
        // A new session starts with its own account and no hand raised.
        self.user = conn.user.clone();
        self.hand = false;
        self.student_changed = true;
        self.session = Some(conn);
        self.budget = ReportBudget::new();
        if let Some(message) = self.wanted.lock.clone() {
            let _ = self.order_session(Control::Lock { message });
        }
        if self.outside_hours().is_some() {
            self.wanted.streams = [None, None];
        }
        for stream in [Stream::Thumb, Stream::Full] {
            if let Some(settings) = self.wanted.streams[stream_index(stream)] {
                let _ = self.order_session(Control::SetStream {
                    stream,
                    settings: Some(settings),
                });
            }
        }
        if let Some(order) = self.wanted.demo.clone() {
            let _ = self.order_session(Control::DemoStart(order));
        }
        if self.wanted.shown_to_class {
            let _ = self.order_session(Control::ShownToClass { on: true });
        }
        self.notice_shown = false;
        self.show_hours_notice();
        self.publish_streams();
    }

    /// The session is gone (closed, stuck or misbehaving): nothing is shown or sent any
    /// more, which the box is told next ([`Link::gone_notice`]). What the box wants is kept
    /// for the next session.
    fn session_gone(&mut self) {
        let Some(peer) = self.session.take().map(|s| s.peer) else {
            return;
        };
        info!(%peer, "session gone");
        self.gone_notice = Some(peer);
        if let Some((id, _)) = self.help.take() {
            self.help_gone = Some(id);
            self.status.send_modify(|st| st.help_active = None);
        }
        // Nobody is logged in any more: the name and the hand go with the session.
        self.user = None;
        self.hand = false;
        self.student_changed = true;
        self.shown = Shown::default();
        self.status.send_modify(|st| {
            if let Some(d) = st.demo.as_mut() {
                d.playing = false;
            }
        });
        self.publish_streams();
    }

    /// What the box is told once a session has gone, if one has since it last heard.
    fn gone_notice(&mut self) -> Option<Vec<Control>> {
        let peer = self.gone_notice.take()?;
        let help = self.help_gone.take().map(|id| Control::HelpState {
            id,
            state: lanterne_wire::HelpState::Unavailable {
                reason: "the student's session ended".into(),
            },
        });
        Some(
            help.into_iter()
                .chain([
                    Control::Shown(Shown::default()),
                    Control::StationError {
                        message: format!(
                    "the student session ({peer}) is gone: no video, lock or messages until \
                     one connects again"
                ),
                    },
                ])
                .collect(),
        )
    }

    /// Tells the student when the screen may be watched, once per session (message id 0 is
    /// the station's own notice).
    fn show_hours_notice(&mut self) {
        let Some(schedule) = &self.schedule else {
            return;
        };
        if self.notice_shown || self.session.is_none() {
            return;
        }
        let hours = schedule.monitoring_summary(lanterne_privacy::Lang::Fr);
        let text = format!(
            "Votre écran peut être observé par l'enseignant pendant ces heures : \
             {hours}. Le voyant de la salle et le badge « Écran observé » \
             l'indiquent ; en dehors, rien n'est transmis."
        );
        self.notice_shown = self
            .order_session(Control::ShowMessage {
                id: 0,
                from: "Lanterne".into(),
                text,
            })
            .is_ok();
    }

    /// Answers the box's renewal offer with a request for a new key.
    fn request_certificate(&mut self, ctl_tx: &mpsc::Sender<Control>) {
        match self.identity.renewal_request() {
            Ok(pending) => {
                let csr_pem = pending.csr_pem.clone();
                self.renewal = Some(pending);
                let _ = ctl_tx.try_send(Control::CertificateRequest { csr_pem });
            }
            Err(e) => warn!("cannot answer the box's certificate renewal: {e}"),
        }
    }

    /// Stores the renewed certificate (with its key) for the next connection; this one goes on
    /// with the certificate it was opened with. A few small synchronous writes, a couple of
    /// times a year.
    fn store_certificate(&mut self, cert_pem: &str, ctl_tx: &mpsc::Sender<Control>) {
        let Some(pending) = self.renewal.take() else {
            warn!("the box sent a certificate this station did not ask for; ignored");
            return;
        };
        match pending.complete(&self.identity, cert_pem) {
            Ok(identity) => {
                info!("certificate renewed; used from the next connection");
                self.identity = Arc::new(identity);
                self.status.send_modify(|s| s.certificate_renewals += 1);
            }
            Err(e) => {
                warn!("{e}");
                let _ = ctl_tx.try_send(Control::StationError {
                    message: e.to_string(),
                });
            }
        }
    }

    /// When this station's clock next crosses the edge of a monitoring window.
    fn next_edge(&self) -> tokio::time::Instant {
        use lanterne_privacy::policy::Clock;
        let now = self.clock.now();
        let wait = self
            .schedule
            .as_ref()
            .and_then(|s| s.next_edge(now))
            .and_then(|edge| Duration::try_from(edge - now).ok())
            .unwrap_or(NO_EDGE);
        tokio::time::Instant::now() + wait
    }

    /// Why video may not leave now, by this station's own clock and the box's schedule.
    /// Without a schedule from the box, never (no schedule means no monitoring).
    fn outside_hours(&self) -> Option<String> {
        use lanterne_privacy::policy::Clock;
        let Some(schedule) = self.schedule.as_ref() else {
            return Some("the box sent no monitoring schedule: no monitoring at all".into());
        };
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
                self.schedule = Some(schedule);
                self.show_hours_notice();
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

    /// The student accepted remote help that still runs.
    fn help_accepted(&self) -> bool {
        matches!(self.help, Some((_, true)))
    }

    /// Remote help ended: outside the hours, the full stream it allowed stops now, whatever
    /// the box does next.
    fn stop_full_outside_hours(&mut self) {
        if self.wanted.streams[1].is_some() && self.outside_hours().is_some() {
            info!("remote help ended outside the monitoring hours: full stream stopped");
            self.wanted.streams[1] = None;
            let _ = self.order_session(Control::SetStream {
                stream: Stream::Full,
                settings: None,
            });
            self.publish_streams();
        }
    }

    /// Stops every stream when the station's clock says the window has closed, even if the
    /// box has not (yet) said so. Runs at the edge itself (a timer), see `next_edge`. The full
    /// stream of accepted remote help goes on (see the module docs).
    fn enforce_schedule(&mut self, ctl_tx: &mpsc::Sender<Control>) {
        let keep_full = self.help_accepted();
        if self.wanted.streams[0].is_none() && (keep_full || self.wanted.streams[1].is_none()) {
            return;
        }
        if let Some(why) = self.outside_hours() {
            warn!("stopping video: {why}");
            let stopped: &[Stream] = if keep_full {
                self.wanted.streams[0] = None;
                &[Stream::Thumb]
            } else {
                self.wanted.streams = [None, None];
                &[Stream::Thumb, Stream::Full]
            };
            for &s in stopped {
                let _ = self.order_session(Control::SetStream {
                    stream: s,
                    settings: None,
                });
            }
            self.publish_streams();
            let _ = ctl_tx.try_send(Control::StationError {
                message: format!("video stopped: {why}"),
            });
        }
    }
}

/// What a session may tell the box, bounded: what it shows, messages read (not the station's
/// own notice, id 0), demo health, errors, and how an open-URL order went. Ok(None): nothing
/// to pass on. Err names anything else, which a session may not send.
fn check_report(c: Control) -> Result<Option<Control>, String> {
    Ok(Some(match c {
        Control::Shown(shown) => Control::Shown(shown),
        Control::MessageRead { id: 0 } => return Ok(None),
        Control::MessageRead { id } => Control::MessageRead { id },
        Control::DemoHealth(h) => Control::DemoHealth(h),
        Control::HelpState { id, state } => Control::HelpState {
            id,
            state: match state {
                lanterne_wire::HelpState::Unavailable { reason } => {
                    lanterne_wire::HelpState::Unavailable {
                        reason: lanterne_wire::bounded_text(&reason),
                    }
                }
                other => other,
            },
        },
        Control::StationError { message } => Control::StationError {
            message: lanterne_wire::bounded_text(&message),
        },
        Control::ActionResult { action, ok, detail } if action == "open-url" => {
            Control::ActionResult {
                action,
                ok,
                detail: lanterne_wire::bounded_text(&detail),
            }
        }
        Control::ActionResult { action, .. } => {
            let action: String = action.chars().take(40).collect();
            return Err(format!(
                "a result of '{action}', an order it does not carry out"
            ));
        }
        other => {
            let shown: String = format!("{other:?}").chars().take(60).collect();
            return Err(format!("{shown}, which is not a session's report"));
        }
    }))
}

/// Receives from `rx`, or never when there is none.
async fn recv_if<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
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
    fn a_session_reports_only_what_a_session_may_and_bounded() {
        let shown = Control::Shown(Shown {
            locked: true,
            watched_indicator: true,
            indicator_available: true,
        });
        assert_eq!(check_report(shown.clone()), Ok(Some(shown)));
        assert_eq!(check_report(Control::MessageRead { id: 0 }), Ok(None));
        assert_eq!(
            check_report(Control::MessageRead { id: 9 }),
            Ok(Some(Control::MessageRead { id: 9 }))
        );
        let long = "é".repeat(10_000);
        match check_report(Control::StationError { message: long }) {
            Ok(Some(Control::StationError { message })) => {
                assert_eq!(message.chars().count(), lanterne_wire::MAX_TEXT_CHARS)
            }
            other => panic!("{other:?}"),
        }
        assert!(check_report(Control::ActionResult {
            action: "open-url".into(),
            ok: false,
            detail: "no browser".into(),
        })
        .unwrap()
        .is_some());
        // Results of orders the service carries out itself, and anything else, are refused:
        // a session cannot claim the PC shut down or a command ran.
        for c in [
            Control::ActionResult {
                action: "shutdown".into(),
                ok: true,
                detail: String::new(),
            },
            Control::CommandResult {
                id: 1,
                exit_code: Some(0),
                stdout: "ok".into(),
                stderr: String::new(),
                error: None,
            },
            Control::Hello {
                protocol: PROTOCOL_VERSION,
                agent_version: "x".into(),
                hostname: "x".into(),
                capabilities: Capabilities::default(),
            },
            Control::Heartbeat { sent_us: 1 },
            Control::Lock {
                message: "x".into(),
            },
        ] {
            assert!(check_report(c.clone()).is_err(), "{c:?}");
        }
    }

    #[test]
    fn a_flooding_session_runs_out_of_reports() {
        let mut b = ReportBudget::new();
        for _ in 0..SESSION_REPORTS_PER_SECOND {
            assert!(b.take());
        }
        assert!(!b.take());
    }

    #[test]
    fn keyframe_requests_are_rate_limited() {
        let mut r = Resync::default();
        assert!(r.should_request_keyframe());
        assert!(!r.should_request_keyframe());
    }
}
