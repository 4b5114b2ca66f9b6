//! The session half of a station: everything the student sees or uses. The screen capture
//! and its encoder (a [`VideoSource`]), the lock, message and "watched" overlay (a
//! [`Screen`]), the demo player, and opening web pages ([`UrlOpener`]).
//!
//! On a real PC this runs in the session helper (`lanterne-station session`), started in each
//! interactive session as the student, so nothing the student sees or touches runs as root;
//! [`crate::session_socket`] joins it to the system service. In the simulated classroom it
//! runs in the service's own process over the same channels ([`pair`]), so both set-ups
//! exercise the same code.
//!
//! The service and the session speak the station link's own messages ([`Control`]):
//!
//! ```text
//!  service ── orders: SetStream, RequestKeyframe, Lock, Unlock, ShowMessage, OpenUrl, ──▶ session
//!             DemoStart, DemoStop, HelpAsk, HelpInput, HelpStop, ShownToClass, HandCleared;
//!             demo access units on their own lossy queue
//!  service ◀── reports: Shown, MessageRead, DemoHealth, StationError, ActionResult, ── session
//!              HelpState, HandRaised (and, from a simulated screen only, SessionUser)
//!             video (thumbnail, full) on the encoder's own lossy queue
//! ```
//!
//! Video never passes through this loop: the encoder's queue goes straight to the service
//! (in-process) or to the socket writer (helper), so a report never waits behind a frame.
//! When the service goes away the session takes down everything it showed for it: streams,
//! the watched indicator, the demo and the lock (a new service connection re-applies the
//! room's state).
//!
//! Remote help: the session puts the consent prompt up ([`Screen::ask_help`]) and reports
//! the student's answer; input is played only for the help the student accepted, here and
//! again by the screen itself, in order, by one task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanterne_media::{EncodedFrame, StreamKind};
use lanterne_wire::{
    Capabilities, Control, DemoHealth, DemoMode, DemoStart, HelpState, InputEvent, MediaHeader,
    Stream,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::platform::{CodecProbe, DemoPlayer, PlayerConfig};
use crate::screen::{Screen, StudentEvent};
use crate::sources::VideoSource;

/// How often the demo player's health goes to the service.
const DEMO_HEALTH_EVERY: Duration = Duration::from_secs(1);
/// Orders waiting for the session. A session that lets this many pile up is stuck, and the
/// service drops it rather than wait.
pub const ORDERS_QUEUE: usize = 64;
/// Reports waiting for the service.
pub const REPORTS_QUEUE: usize = 64;
/// Demo access units waiting for the player; lossy (the player resyncs at a keyframe).
pub const DEMO_QUEUE: usize = 64;
/// Frames waiting between the encoder and the service. Short on purpose: a late frame is
/// worth less than the next one, and a long queue would be latency.
pub const MEDIA_QUEUE: usize = 8;
/// Remote-help input messages waiting to be played. The box sends at most a few dozen a
/// second; more waiting means the screen is stuck, and input is dropped rather than played
/// late.
const INPUT_QUEUE: usize = 32;

/// Opens a web page for the student.
pub trait UrlOpener: Send + Sync {
    fn open_url(&self, url: &str) -> Result<(), String>;
}

/// One access unit of a demo on its way to the player.
pub type DemoFrame = (MediaHeader, Bytes);
/// One encoded frame of the session's own screen on its way to the box.
pub type VideoFrame = (StreamKind, EncodedFrame);

/// The service's end of one session connection.
pub struct SessionConn {
    /// Who is at the other end, for logs ("in-process", "uid 1000, pid 4242").
    pub peer: String,
    /// The account the session runs as (None in this process): "log out" ends its session.
    pub uid: Option<u32>,
    /// The display name of that account (NSS, looked up by the service from the kernel's
    /// peer credentials), reported to the box as who is at the station. None in this
    /// process: the simulated classroom's sessions report their student themselves.
    pub user: Option<String>,
    /// What the session captures with, announced in the station's hello to the box.
    pub capabilities: Capabilities,
    /// Orders for the session: `try_send` only; full means the session is stuck.
    pub orders: mpsc::Sender<Control>,
    /// Demo access units: `try_send` only; the player drops and resyncs.
    pub demo: mpsc::Sender<DemoFrame>,
    /// Reports from the session, in order. Closed when the session is gone.
    pub reports: mpsc::Receiver<Control>,
    /// The session's video.
    pub media: mpsc::Receiver<VideoFrame>,
}

/// The session's end of one connection to the service.
pub struct ServiceConn {
    pub orders: mpsc::Receiver<Control>,
    pub demo: mpsc::Receiver<DemoFrame>,
    pub reports: mpsc::Sender<Control>,
}

/// A connected pair of ends; `media` is the receiving end of the session's video queue.
pub fn pair(
    peer: String,
    uid: Option<u32>,
    capabilities: Capabilities,
    media: mpsc::Receiver<VideoFrame>,
) -> (SessionConn, ServiceConn) {
    let (orders_tx, orders_rx) = mpsc::channel(ORDERS_QUEUE);
    let (demo_tx, demo_rx) = mpsc::channel(DEMO_QUEUE);
    let (reports_tx, reports_rx) = mpsc::channel(REPORTS_QUEUE);
    (
        SessionConn {
            peer,
            uid,
            user: None,
            capabilities,
            orders: orders_tx,
            demo: demo_tx,
            reports: reports_rx,
            media,
        },
        ServiceConn {
            orders: orders_rx,
            demo: demo_rx,
            reports: reports_tx,
        },
    )
}

/// The running demo player and what its fps figure is computed from.
struct Demo {
    player: DemoPlayer,
    last_report: Instant,
    decoded_at_last_report: u64,
    /// Its last counters, reported once more (with `playing` false) when it stops.
    last: DemoHealth,
}

/// What the student sees and uses, driven by the service's orders.
pub struct Session {
    source: Arc<dyn VideoSource>,
    screen: Arc<dyn Screen>,
    opener: Arc<dyn UrlOpener>,
    probe: CodecProbe,
    demo: Option<Demo>,
    /// The student's input is blocked for a full-screen demo.
    input_blocked: bool,
    /// Thumbnail and full stream switched on by the service.
    streams_on: [bool; 2],
    /// Remote help on screen: its id, and whether the student accepted it.
    help: Option<(u64, bool)>,
    /// Input for the player task (started with the first help the student accepts).
    input: Option<mpsc::Sender<(u64, Vec<InputEvent>)>>,
    /// How putting a prompt up went (it runs off the session's task), back to the loop.
    prompts: mpsc::UnboundedSender<(u64, HelpState)>,
    prompts_rx: Option<mpsc::UnboundedReceiver<(u64, HelpState)>>,
}

impl Session {
    pub fn new(
        source: Arc<dyn VideoSource>,
        screen: Arc<dyn Screen>,
        opener: Arc<dyn UrlOpener>,
        probe: CodecProbe,
    ) -> Self {
        let prompts = mpsc::unbounded_channel();
        Session {
            source,
            screen,
            opener,
            probe,
            demo: None,
            input_blocked: false,
            streams_on: [false, false],
            help: None,
            input: None,
            prompts: prompts.0,
            prompts_rx: Some(prompts.1),
        }
    }

    pub fn capabilities(&self) -> Capabilities {
        self.source.capabilities()
    }

    /// Serves one connection until the service closes it, then takes down what was shown
    /// for it.
    pub async fn serve(&mut self, conn: ServiceConn) {
        let ServiceConn {
            mut orders,
            mut demo,
            reports,
        } = conn;
        // The service learns what this screen shows (e.g. still locked before it restarted).
        if reports
            .send(Control::Shown(self.screen.shown()))
            .await
            .is_err()
        {
            return;
        }
        let mut dismissed = self.screen.dismissals();
        let mut dismissals_open = true;
        let mut help_events = self.screen.help_events();
        let mut help_open = true;
        let mut prompts = self
            .prompts_rx
            .take()
            .expect("a session serves one connection at a time");
        let mut student = self.screen.student_events();
        let mut demo_open = true;
        // The first report goes out when the player opens; the tick follows a second later.
        let mut demo_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + DEMO_HEALTH_EVERY,
            DEMO_HEALTH_EVERY,
        );
        loop {
            tokio::select! {
                biased;
                order = orders.recv() => match order {
                    Some(c) => self.on_order(c, &reports),
                    None => break,
                },
                frame = demo.recv(), if demo_open => match frame {
                    // Frames that arrive after a stop (they were queued) are dropped.
                    Some((header, data)) => if let Some(d) = &self.demo {
                        d.player.push(EncodedFrame {
                            data,
                            keyframe: header.keyframe,
                            capture_us: header.capture_us,
                            seq: header.seq,
                        });
                    },
                    None => demo_open = false,
                },
                d = dismissed.recv(), if dismissals_open => match d {
                    // Id 0 is the station's own notice, not a teacher's message.
                    Ok(0) => {}
                    Ok(id) => {
                        if reports.send(Control::MessageRead { id }).await.is_err() {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        warn!(lost = n, "message dismissals were lost");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        // The screen is gone; nothing more will be dismissed.
                        dismissals_open = false;
                    }
                },
                h = help_events.recv(), if help_open => match h {
                    Ok((id, state)) => {
                        if let Some(report) = self.on_help_event(id, state) {
                            if reports.send(report).await.is_err() {
                                break;
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        warn!(lost = n, "remote-help events were lost");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => help_open = false,
                },
                Some((id, state)) = prompts.recv() => {
                    if let Some(report) = self.on_help_event(id, state) {
                        if reports.send(report).await.is_err() {
                            break;
                        }
                    }
                }
                ev = recv_student(&mut student), if student.is_some() => match ev {
                    Ok(ev) => {
                        let report = match ev {
                            StudentEvent::Hand(raised) => Control::HandRaised { raised },
                            StudentEvent::User(display_name) => Control::SessionUser { display_name },
                        };
                        if reports.send(report).await.is_err() {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        warn!(lost = n, "student requests were lost");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => student = None,
                },
                _ = demo_tick.tick(), if self.demo.is_some() => {
                    let health = self.demo_health();
                    if reports.send(Control::DemoHealth(health)).await.is_err() {
                        break;
                    }
                }
            }
        }
        self.prompts_rx = Some(prompts);
        self.disconnected();
    }

    /// Nobody is at the other end any more: nothing is watched, shown or blocked for it.
    fn disconnected(&mut self) {
        for (i, s) in [Stream::Thumb, Stream::Full].into_iter().enumerate() {
            if std::mem::take(&mut self.streams_on[i]) {
                let _ = self.source.set_stream(s, None);
            }
        }
        self.stop_demo();
        let help = self.help.take().map(|(id, _)| id);
        let screen = self.screen.clone();
        tokio::task::spawn_blocking(move || {
            // Nobody may keep control through a service that is gone.
            if let Some(id) = help {
                if let Err(e) = screen.end_help(id) {
                    warn!("cannot end remote help: {e}");
                }
            }
            if let Err(e) = screen.set_shown_to_class(false) {
                warn!("cannot take the \"shown to the class\" banner down: {e}");
            }
            if let Err(e) = screen.set_watched(false) {
                warn!("cannot remove the watched indicator: {e}");
            }
            if screen.shown().locked {
                if let Err(e) = screen.unlock() {
                    warn!("cannot remove the lock: {e}");
                }
            }
        });
    }

    fn on_order(&mut self, c: Control, reports: &mpsc::Sender<Control>) {
        match c {
            Control::SetStream { stream, settings } => {
                let result = match settings {
                    Some(s) => s
                        .validate()
                        .and_then(|_| self.indicator_ready())
                        .and_then(|_| self.source.set_stream(stream, Some(s))),
                    None => self.source.set_stream(stream, None),
                };
                match result {
                    Ok(()) => {
                        debug!(?stream, ?settings, "stream settings applied");
                        self.streams_on[stream_index(stream)] = settings.is_some();
                        // The student sees an indicator whenever video leaves the station.
                        let watched = self.streams_on.iter().any(|on| *on);
                        self.show_watched(reports, watched);
                    }
                    Err(message) => {
                        warn!(?stream, "cannot apply stream settings: {message}");
                        let _ = reports.try_send(Control::StationError { message });
                    }
                }
            }
            Control::RequestKeyframe { stream } => self.source.request_keyframe(stream),
            Control::DemoStart(order) => self.start_demo(order, reports),
            Control::DemoStop { reason } => {
                info!(%reason, "the demo ended");
                if let Some(last) = self.stop_demo() {
                    let _ = reports.try_send(Control::DemoHealth(last));
                }
            }
            Control::Lock { message } => {
                let message = lanterne_wire::bounded_text(&message);
                self.apply_screen(reports, move |s| s.lock(&message));
            }
            Control::Unlock => self.apply_screen(reports, |s| s.unlock()),
            Control::HandCleared => self.apply_screen(reports, |s| s.clear_hand()),
            Control::ShowMessage { id, from, text } => {
                let (from, text) = (
                    lanterne_wire::bounded_text(&from),
                    lanterne_wire::bounded_text(&text),
                );
                self.apply_screen(reports, move |s| s.show_message(id, &from, &text));
            }
            Control::OpenUrl { url } => {
                let (opener, tx) = (self.opener.clone(), reports.clone());
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || opener.open_url(&url))
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
            Control::HelpAsk(ask) => self.ask_help(ask, reports),
            Control::HelpInput { id, events } => self.play_input(id, events, reports),
            Control::HelpStop { id } => {
                if self.help.is_some_and(|(open, _)| open == id) {
                    self.help = None;
                    let (screen, tx) = (self.screen.clone(), reports.clone());
                    tokio::task::spawn_blocking(move || {
                        let state = match screen.end_help(id) {
                            Ok(()) => HelpState::Ended,
                            Err(reason) => HelpState::Unavailable { reason },
                        };
                        let _ = tx.blocking_send(Control::HelpState { id, state });
                    });
                }
            }
            Control::ShownToClass { on } => {
                self.apply_screen(reports, move |s| s.set_shown_to_class(on));
            }
            other => debug!("a session ignores {other:?}"),
        }
    }

    /// Shows the consent prompt; the student's answer comes from the screen's help events.
    fn ask_help(&mut self, ask: lanterne_wire::HelpAsk, reports: &mpsc::Sender<Control>) {
        let id = ask.id;
        let refused = |reason: String| Control::HelpState {
            id,
            state: HelpState::Unavailable { reason },
        };
        if let Err(reason) = ask.validate() {
            let _ = reports.try_send(refused(reason));
            return;
        }
        if let Some((open, _)) = self.help {
            let _ = reports.try_send(refused(format!(
                "remote help {open} is already open on this station"
            )));
            return;
        }
        self.help = Some((id, false));
        let (screen, tx) = (self.screen.clone(), self.prompts.clone());
        tokio::task::spawn_blocking(move || {
            let state = match screen.ask_help(&ask) {
                Ok(()) => HelpState::Asking,
                Err(reason) => HelpState::Unavailable { reason },
            };
            let _ = tx.send((id, state));
        });
    }

    /// The screen says the student decided: keeps this session's view of the help and
    /// returns the report for the service.
    fn on_help_event(&mut self, id: u64, state: HelpState) -> Option<Control> {
        match self.help {
            Some((open, _)) if open == id => {}
            // A late answer for a help already withdrawn.
            _ => return None,
        }
        self.help = match &state {
            HelpState::Accepted => Some((id, true)),
            s if s.is_final() => None,
            _ => self.help,
        };
        info!(id, state = state.name(), "remote help");
        Some(Control::HelpState { id, state })
    }

    /// Queues input for the player task, only for the help the student accepted.
    fn play_input(&mut self, id: u64, events: Vec<InputEvent>, reports: &mpsc::Sender<Control>) {
        if self.help != Some((id, true)) {
            warn!(
                id,
                "remote-help input without the student's consent: refused"
            );
            let _ = reports.try_send(Control::StationError {
                message: format!(
                    "remote-help input refused: the student has not accepted help {id}, or ended it"
                ),
            });
            return;
        }
        if let Err(message) = lanterne_wire::validate_input(&events) {
            let _ = reports.try_send(Control::StationError {
                message: format!("remote-help input refused: {message}"),
            });
            return;
        }
        let input = self.input.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::channel::<(u64, Vec<InputEvent>)>(INPUT_QUEUE);
            let (screen, reports) = (self.screen.clone(), reports.clone());
            // One task plays everything, in the order it came.
            tokio::spawn(async move {
                while let Some((id, events)) = rx.recv().await {
                    let screen = screen.clone();
                    let played = tokio::task::spawn_blocking(move || screen.inject(id, events))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    if let Err(message) = played {
                        warn!("remote-help input not played: {message}");
                        let _ = reports.try_send(Control::StationError { message });
                    }
                }
            });
            tx
        });
        if input.try_send((id, events)).is_err() {
            warn!(
                id,
                "remote-help input dropped: the screen is not keeping up"
            );
        }
    }

    /// Opens the demo player (closing one already open: a new order replaces it).
    fn start_demo(&mut self, order: DemoStart, reports: &mpsc::Sender<Control>) {
        // A demo replacing another keeps the input block as it is, rather than lifting it and
        // setting it again from two blocking tasks that could run in either order.
        let was_blocked = std::mem::take(&mut self.input_blocked);
        self.stop_demo();
        let fullscreen = order.mode == DemoMode::FullScreen;
        if let Err(message) = order.validate() {
            warn!("refusing a demo order: {message}");
            let _ = reports.try_send(Control::StationError { message });
            if was_blocked {
                self.apply_screen(reports, |s| s.block_input(false));
            }
            return;
        }
        let output = self.screen.demo_output(fullscreen);
        // Full screen: the student watches, and cannot use the station meanwhile; given back
        // when the demo ends for any reason (stop_demo).
        self.input_blocked = fullscreen;
        if fullscreen != was_blocked {
            self.apply_screen(reports, move |s| s.block_input(fullscreen));
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
                    last: DemoHealth::default(),
                });
                let health = self.demo_health();
                let _ = reports.try_send(Control::DemoHealth(health));
            }
            Err(e) => {
                warn!("cannot open the demo player: {e}");
                let _ = reports.try_send(Control::StationError {
                    message: format!("cannot open the demo player: {e}"),
                });
            }
        }
    }

    /// Closes the player and gives the input back; returns its last counters (with
    /// `playing` false) when one was open.
    fn stop_demo(&mut self) -> Option<DemoHealth> {
        if std::mem::take(&mut self.input_blocked) {
            let screen = self.screen.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = screen.block_input(false) {
                    warn!("cannot give the student's input back: {e}");
                }
            });
        }
        let d = self.demo.take()?;
        let s = d.player.stats();
        Some(DemoHealth {
            playing: false,
            frames_decoded: s.frames_decoded,
            frames_dropped: s.frames_dropped,
            fps_x100: 0,
            centre_rgb: s.centre_rgb.or(d.last.centre_rgb),
        })
    }

    /// The player's counters now.
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
        d.last = DemoHealth {
            playing: true,
            frames_decoded: s.frames_decoded,
            frames_dropped: s.frames_dropped,
            fps_x100,
            centre_rgb: s.centre_rgb,
        };
        d.last
    }

    /// Runs a screen change off the session's task (grabbing input may take a moment), then
    /// reports what the screen shows, or the error.
    /// Err when this screen cannot show the watched indicator: then no video may leave.
    fn indicator_ready(&self) -> Result<(), String> {
        if self.screen.shown().indicator_available {
            return Ok(());
        }
        Err(
            "this station cannot show the \"screen watched\" indicator, so it sends no video"
                .into(),
        )
    }

    /// Puts the watched badge up or takes it down, off the session task. A badge that cannot
    /// be shown stops the video at once (the screen then reports the indicator unavailable,
    /// and the box stops asking).
    fn show_watched(&self, reports: &mpsc::Sender<Control>, on: bool) {
        let (screen, source, tx) = (self.screen.clone(), self.source.clone(), reports.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = screen.set_watched(on) {
                let mut message = format!("cannot show the watched indicator: {e}");
                if on {
                    for s in [Stream::Thumb, Stream::Full] {
                        let _ = source.set_stream(s, None);
                    }
                    message.push_str("; video stopped");
                }
                warn!("{message}");
                let _ = tx.blocking_send(Control::StationError { message });
            }
            let _ = tx.blocking_send(Control::Shown(screen.shown()));
        });
    }

    fn apply_screen(
        &self,
        reports: &mpsc::Sender<Control>,
        change: impl FnOnce(&dyn Screen) -> Result<(), String> + Send + 'static,
    ) {
        let screen = self.screen.clone();
        let tx = reports.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(message) = change(screen.as_ref()) {
                warn!("screen change failed: {message}");
                let _ = tx.blocking_send(Control::StationError { message });
            }
            let _ = tx.blocking_send(Control::Shown(screen.shown()));
        });
    }
}

/// The next student event, for a screen that has them (the caller only polls when it does).
async fn recv_student(
    rx: &mut Option<tokio::sync::broadcast::Receiver<StudentEvent>>,
) -> Result<StudentEvent, tokio::sync::broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn stream_index(s: Stream) -> usize {
    match s {
        Stream::Thumb => 0,
        // Sources refuse the demo stream before this point.
        Stream::Full | Stream::Demo => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::SimulatedScreen;
    use crate::system::SimulatedSystem;
    use lanterne_wire::{Shown, StreamSettings};
    use std::sync::Mutex;

    /// Records which streams are on.
    #[derive(Default)]
    struct Streams(Mutex<[bool; 2]>);

    impl VideoSource for Streams {
        fn set_stream(&self, s: Stream, settings: Option<StreamSettings>) -> Result<(), String> {
            self.0.lock().unwrap()[stream_index(s)] = settings.is_some();
            Ok(())
        }
        fn request_keyframe(&self, _: Stream) {}
        fn capabilities(&self) -> Capabilities {
            Capabilities::default()
        }
    }

    /// The next report that is not a `Shown` change in between.
    async fn next_report(conn: &mut SessionConn, want: impl Fn(&Control) -> bool) -> Control {
        loop {
            let c = tokio::time::timeout(Duration::from_secs(10), conn.reports.recv())
                .await
                .expect("a report in time")
                .expect("the session is there");
            if want(&c) {
                return c;
            }
        }
    }

    #[tokio::test]
    async fn a_session_carries_out_orders_and_takes_down_what_it_showed_when_the_service_goes() {
        let probe = crate::platform::init().unwrap();
        let screen = Arc::new(SimulatedScreen::default());
        let source = Arc::new(Streams::default());
        let system = Arc::new(SimulatedSystem::default());
        let mut session = Session::new(source.clone(), screen.clone(), system.clone(), probe);
        let (_media_tx, media) = mpsc::channel(1);
        let (mut conn, end) = pair("test".into(), None, session.capabilities(), media);
        let task = tokio::spawn(async move { session.serve(end).await });
        assert_eq!(
            next_report(&mut conn, |_| true).await,
            Control::Shown(Shown {
                indicator_available: true,
                ..Shown::default()
            }),
            "the session says first what it shows"
        );

        conn.orders
            .try_send(Control::Lock {
                message: "Au tableau".into(),
            })
            .unwrap();
        let settings = StreamSettings {
            width: 480,
            height: 270,
            fps: 5,
            bitrate_kbps: 250,
        };
        conn.orders
            .try_send(Control::SetStream {
                stream: Stream::Thumb,
                settings: Some(settings),
            })
            .unwrap();
        next_report(
            &mut conn,
            |c| matches!(c, Control::Shown(s) if s.locked && s.watched_indicator),
        )
        .await;
        assert_eq!(*source.0.lock().unwrap(), [true, false]);

        conn.orders
            .try_send(Control::OpenUrl {
                url: "https://example.org/".into(),
            })
            .unwrap();
        let r = next_report(&mut conn, |c| matches!(c, Control::ActionResult { .. })).await;
        assert!(matches!(r, Control::ActionResult { ok: true, .. }), "{r:?}");
        assert_eq!(system.done(), ["open-url https://example.org/"]);

        conn.orders
            .try_send(Control::ShowMessage {
                id: 5,
                from: "prof".into(),
                text: "Bonjour".into(),
            })
            .unwrap();
        // The screen reports what it shows after each change, the message included.
        let deadline = Instant::now() + Duration::from_secs(10);
        while screen.open_messages().is_empty() {
            assert!(Instant::now() < deadline, "the message never showed");
            next_report(&mut conn, |c| matches!(c, Control::Shown(_))).await;
        }
        assert!(screen.dismiss(5));
        assert_eq!(
            next_report(&mut conn, |c| matches!(c, Control::MessageRead { .. })).await,
            Control::MessageRead { id: 5 }
        );

        // The service goes: nothing stays watched, streamed or locked for it.
        let mut shown = screen.subscribe();
        drop(conn);
        task.await.unwrap();
        assert_eq!(*source.0.lock().unwrap(), [false, false]);
        tokio::time::timeout(
            Duration::from_secs(10),
            shown.wait_for(|s| !s.locked && !s.watched_indicator),
        )
        .await
        .expect("the lock and the badge are taken down")
        .unwrap();
    }
}
