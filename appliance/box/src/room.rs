//! The room: which stations exist, which are online, who is watching what.
//!
//! One task owns this state; station links and web handlers talk to it through
//! [`RoomHandle`]. Media does not pass through it: a station link pushes thumbnails straight
//! into the mosaic and full frames into its own broadcast channel, so the room task only
//! handles the slow events (connect, disconnect, open/close a focus view).
//!
//! The demo (fan-out) is room state too: the room decides who may start one, which stations
//! receive it (re-applied to a station that reconnects), and ends it everywhere when its
//! source disappears; the frames themselves go through a [`fanout::Relay`].
//!
//! The room publishes a [`RoomView`] on a watch channel; the web side sends it to tablets
//! whenever it changes (a station comes online, a new one is enrolled).
//!
//! # Watched means watched
//!
//! The room alone decides what each station sends, from one rule (`apply_streams`): a
//! station sends video only while a person can see it, inside a monitoring window, and only
//! if it reported that it can show its "screen watched" badge.
//! - Thumbnails while at least one mosaic viewer is open ([`RoomHandle::mosaic_viewer`]),
//!   and for [`MOSAIC_LINGER`] after the last one closed.
//! - The full stream while a focus view, a screenshot or a demo of that station needs it.
//!
//! The status LED, each station's badge (the station shows it exactly while it sends video)
//! and each tile's `watched` on the tablet all follow what the room asked for. Viewers are
//! counted with leases: dropping a [`MosaicViewer`] or a [`FocusSubscription`] closes a
//! oneshot the room awaits, so a count can never leak because a queue was full.
//!
//! Monitoring windows are acted on at their edge itself: a timer armed for the next edge
//! ([`Schedule::next_edge`]), re-armed after each edge; a coarse re-check every
//! [`SCHEDULE_RECHECK`] only catches the wall clock being moved. Without a schedule nothing
//! is ever watched (fail closed).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

use lanterne_media::{EncodedFrame, Mosaic, TileInfo};
use lanterne_panel::{LedState, PanelHandle, StatusLed};
use lanterne_privacy::policy::Clock;
use lanterne_privacy::schedule::Schedule;
use lanterne_wire::{
    Control, DemoHealth, DemoMode, DemoStart, Region, Shown, Stream, StreamSettings,
};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::fanout::{DemoSource, ReceiverStats, Relay, SourceFeed};

mod help;
use crate::store::{self, StationRow, Store};
pub use help::{HelpError, HelpNow, HelpStep, HelpView, HELP_ANSWER_S, INPUT_PER_SECOND};

/// A station's full-size frame as forwarded to focus viewers (never re-encoded).
pub type FullFrame = Arc<EncodedFrame>;

/// How long stations keep sending thumbnails after the last mosaic viewer closed. A tablet
/// that loses its socket (Wi-Fi hiccup, page reload, a short sleep) reconnects within its
/// first retries (0.5, 1 and 2 s in `web-ui/assets/video-stream.js`); five seconds spares
/// every station an encoder restart and the teacher a grey mosaic meanwhile. Video still
/// flows during the linger, so the LED and the badges stay lit until it ends.
pub const MOSAIC_LINGER: Duration = Duration::from_secs(5);

/// The coarse re-check of the schedule. Edges are acted on by a timer armed for the edge
/// itself, which runs on the monotonic clock; this only catches the wall clock being moved
/// (a clock set by hand, an NTP step, a daylight-saving change) and re-arms that timer.
pub const SCHEDULE_RECHECK: Duration = Duration::from_secs(60);

/// How long the edge timer sleeps when no edge is coming (no schedule, or no window).
const NO_EDGE: Duration = Duration::from_secs(24 * 3600);

/// What a tablet needs to draw the room.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoomView {
    pub name: String,
    /// The whole room is locked (persisted); each tile says what its station shows.
    pub locked: bool,
    /// Some screen is being watched right now (what the status LED shows): some station
    /// sends video to a person.
    pub watched: bool,
    /// The configuration has a monitoring schedule. Without one no screen is ever watched.
    pub monitoring_configured: bool,
    /// Inside a monitoring window: screens may be watched now (never without a schedule).
    pub monitoring: bool,
    /// When monitoring is next allowed, box local time ("2026-11-23 09:15"), while outside.
    pub next_monitoring: Option<String>,
    /// When the monitoring window in force ends, box local time, while inside one.
    pub monitoring_until: Option<String>,
    pub mosaic: MosaicView,
    /// The demo running now, if any.
    pub demo: Option<DemoView>,
    /// How the last demo ended (so a tablet can say why it stopped).
    pub last_demo_end: Option<DemoEnd>,
    /// The box has an HDMI input the teacher can show to the class.
    pub hdmi_available: bool,
}

/// A running demo as a tablet sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoView {
    pub source: DemoSource,
    pub source_name: String,
    /// "fullscreen" or "windowed".
    pub mode: &'static str,
    pub region: Option<Region>,
    /// None: every station but the source.
    pub targets: Option<Vec<u32>>,
    pub started_by: String,
    pub started_us: u64,
    pub receivers: Vec<DemoReceiverView>,
}

/// One receiving station: what the relay handed it and what its player reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoReceiverView {
    pub station_id: u32,
    pub name: String,
    pub online: bool,
    pub relay: ReceiverStats,
    /// The station player's last report (None until the first one arrives).
    pub health: Option<DemoHealth>,
}

/// Why the last demo ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoEnd {
    /// "stopped", "replaced", "source-gone" or "outside-monitoring-hours".
    pub reason: &'static str,
    pub source_name: String,
    pub at_us: u64,
}

/// What a teacher asks for when starting a demo.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    pub source: DemoSource,
    /// None: every station but the source.
    pub targets: Option<Vec<u32>>,
    pub mode: DemoMode,
    pub region: Option<Region>,
}

/// Why a demo could not be started or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemoError {
    #[error("no station with id {0} in this room")]
    UnknownStation(u32),
    #[error("the source station {0} is offline")]
    SourceOffline(String),
    #[error("the source station {0} cannot also be a target")]
    SourceIsTarget(String),
    #[error("the list of target stations is empty")]
    NoTarget,
    #[error("{0}")]
    Invalid(String),
    #[error("a student's screen may not be shown now: {why}")]
    OutsideMonitoring { why: Unwatchable },
    #[error("no demo is running")]
    NotRunning,
    #[error("this box has no HDMI input configured ([hdmi] input in its configuration)")]
    NoHdmi,
    #[error("{0}")]
    HdmiFailed(String),
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MosaicView {
    pub width: u32,
    pub height: u32,
    pub tiles: Vec<TileView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileView {
    pub index: u16,
    pub station_id: u32,
    pub name: String,
    pub online: bool,
    /// The station reports its lock overlay is up.
    pub locked: bool,
    /// The teacher asked for this station to be locked (the whole room or this station).
    pub lock_ordered: bool,
    /// Messages on the station's screen its student has not dismissed yet.
    pub unread_messages: u32,
    /// Approved commands still running on the station.
    pub commands_running: u32,
    /// A person can see this screen now: the box asked the station for video (thumbnails for
    /// an open mosaic, its full stream for a focus view, a screenshot or a demo). The station
    /// shows its badge exactly then.
    pub watched: bool,
    /// The station reports its "screen watched" badge is on its screen.
    pub indicator: bool,
    /// The station reported it cannot show that badge: it is never asked for video.
    pub no_indicator: bool,
    /// Remote help on this station: "asking" (the student's prompt is up) or "active".
    pub help: Option<&'static str>,
    /// Display name of the person logged in at the station, as its agent reports it. Kept in
    /// memory only, and only while the station's session and link last (personal data, see
    /// the GDPR record).
    pub user_name: Option<String>,
    /// The student's hand is up: its place among the raised hands of the room (1 = raised
    /// first), until the student withdraws it or a teacher clears it.
    pub hand: Option<u32>,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Why a screen may not be watched now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwatchable {
    /// The configuration has no `[schedule]`: no monitoring at all (fail closed, P3).
    NotConfigured,
    /// Outside the monitoring windows; `next` is when the next one opens (box local time).
    OutsideHours { next: Option<String> },
    /// The station cannot show its "screen watched" badge, so it sends no video.
    NoIndicator { station: String },
    /// The remote help this view was opened for is over (ends only the helper's view).
    HelpOver,
}

impl std::fmt::Display for Unwatchable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unwatchable::NotConfigured => f.write_str(
                "monitoring is not configured on this box (its configuration has no [schedule]), \
                 so no screen may be watched; locking, messages, power, commands and showing \
                 the teacher's HDMI input still work",
            ),
            Unwatchable::OutsideHours { next } => {
                f.write_str("outside the monitoring hours")?;
                match next {
                    Some(n) => write!(f, "; next monitoring window: {n}"),
                    None => Ok(()),
                }
            }
            Unwatchable::NoIndicator { station } => write!(
                f,
                "{station} cannot show its \"screen watched\" indicator, so it cannot be watched"
            ),
            Unwatchable::HelpOver => f.write_str("the remote help is over"),
        }
    }
}

/// Why a focus view could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FocusError {
    #[error("no such station")]
    Unknown,
    #[error("the station is offline")]
    Offline,
    #[error("screens may not be watched now: {why}")]
    OutsideMonitoring { why: Unwatchable },
}

/// An open focus view (or a screenshot being taken). Dropping it tells the room, which stops
/// the station's full stream when the last viewer leaves.
pub struct FocusSubscription {
    pub frames: broadcast::Receiver<FullFrame>,
    /// Flips to true when the view ends on the box's side: the station goes offline or
    /// reconnects, the monitoring window closes, or the station loses its indicator.
    pub ended: watch::Receiver<bool>,
    /// Set (before `ended` flips) when the room cut the view because the screen may no
    /// longer be watched; stays None when the station merely left.
    cut: watch::Receiver<Option<Unwatchable>>,
    pub station_name: String,
    station_id: u32,
    conn: u64,
    room: mpsc::Sender<Cmd>,
    /// Dropped with the subscription: the room's lease on this viewer ends.
    _lease: oneshot::Sender<()>,
}

impl FocusSubscription {
    /// Asks the station for a keyframe (after this viewer dropped frames).
    pub fn request_keyframe(&self) {
        let _ = self.room.try_send(Cmd::Keyframe {
            station_id: self.station_id,
            conn: self.conn,
        });
    }

    /// Why the room cut this view, if it did (the window closed, the indicator was lost).
    /// Follows the view after the subscription itself is dropped.
    pub fn cut(&self) -> watch::Receiver<Option<Unwatchable>> {
        self.cut.clone()
    }
}

/// An open mosaic viewer (a tablet showing the class). While at least one is held, and for
/// [`MOSAIC_LINGER`] after the last is dropped, stations inside the monitoring hours send
/// thumbnails; dropping it is all it takes to close it.
pub struct MosaicViewer {
    _lease: oneshot::Sender<()>,
}

/// What a dropped lease was for.
enum Lease {
    Mosaic,
    /// A helper's view of a station during remote help.
    HelpView {
        station_id: u32,
        conn: u64,
        id: u64,
    },
    Focus {
        station_id: u32,
        conn: u64,
        /// The link's view generation when the view opened: views the room already ended
        /// (window closed) are not counted twice.
        gen: u64,
    },
}

type LeaseFuture = Pin<Box<dyn Future<Output = Lease> + Send + Sync>>;

/// A future that resolves to `what` once the lease's sender side is dropped.
fn lease(what: Lease) -> (oneshot::Sender<()>, LeaseFuture) {
    let (tx, rx) = oneshot::channel::<()>();
    let fut = async move {
        // Nobody ever sends: only the drop of the sender completes this.
        let _ = rx.await;
        what
    };
    (tx, Box::pin(fut))
}

/// What a station link gets back when it registers.
pub struct Registered {
    /// Identifies this connection; a reconnecting station gets a new one, so late
    /// disconnects of the old connection are ignored.
    pub conn: u64,
    pub full_tx: broadcast::Sender<FullFrame>,
    /// Cancelled when the room ends this link: the station was revoked or deleted, or a
    /// newer link with the same certificate replaced it. The link closes at once.
    pub cut: CancellationToken,
    /// This link replaced a live one of the same station (which is being cut).
    pub replaced: bool,
}

/// Why a station link may not come online.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnlineError {
    #[error("the station was revoked or deleted")]
    Removed,
    #[error("the room task has stopped")]
    Stopped,
}

/// What a station link hands the room when it comes online.
pub struct LinkChannels {
    /// Control messages to the station (the writer sends them before any media).
    pub control: mpsc::Sender<Control>,
    /// Demo access units to the station: this connection's bounded fan-out queue.
    pub demo: mpsc::Sender<FullFrame>,
}

enum Cmd {
    Online {
        station: StationRow,
        channels: LinkChannels,
        reply: oneshot::Sender<Result<Registered, OnlineError>>,
    },
    /// The station was revoked or deleted: cut its link, take it out of the room.
    Remove {
        station_id: u32,
        reply: oneshot::Sender<bool>,
    },
    /// Forget power and open-URL orders sent before this time (retention).
    ForgetOrders {
        before_us: u64,
        reply: oneshot::Sender<usize>,
    },
    StartDemo {
        request: DemoRequest,
        actor: String,
        reply: oneshot::Sender<Result<DemoView, DemoError>>,
    },
    StopDemo {
        actor: String,
        reply: oneshot::Sender<Result<DemoEnd, DemoError>>,
    },
    DemoHealth {
        station_id: u32,
        conn: u64,
        health: DemoHealth,
    },
    Offline {
        station_id: u32,
        conn: u64,
    },
    Enrolled {
        station: StationRow,
    },
    OpenFocus {
        station_id: u32,
        reply: oneshot::Sender<Result<FocusSubscription, FocusError>>,
    },
    OpenMosaic {
        closed: LeaseFuture,
    },
    Keyframe {
        station_id: u32,
        conn: u64,
    },
    Shown {
        station_id: u32,
        conn: u64,
        shown: Shown,
    },
    SessionUser {
        station_id: u32,
        conn: u64,
        name: Option<String>,
    },
    Hand {
        station_id: u32,
        conn: u64,
        raised: bool,
    },
    /// A teacher cleared a raised hand: Ok(false) when it was not raised.
    ClearHand {
        station_id: u32,
        reply: oneshot::Sender<Result<bool, SendError>>,
    },
    SetLock {
        /// None toggles (the panel button).
        locked: Option<bool>,
        /// None: the whole room.
        stations: Option<Vec<u32>>,
        actor: String,
        reply: oneshot::Sender<Result<LockReport, SendError>>,
    },
    SendMessage {
        /// None: every station of the room.
        stations: Option<Vec<u32>>,
        from: String,
        text: String,
        reply: oneshot::Sender<Result<MessageReport, SendError>>,
    },
    MessageRead {
        station_id: u32,
        conn: u64,
        id: u64,
        reply: oneshot::Sender<bool>,
    },
    RunCommand {
        stations: Option<Vec<u32>>,
        from: String,
        command: CommandOrder,
        reply: oneshot::Sender<Result<MessageReport, SendError>>,
    },
    CommandResult {
        station_id: u32,
        conn: u64,
        id: u64,
        exit_code: Option<i32>,
        stdout: String,
        stderr: String,
        error: Option<String>,
        reply: oneshot::Sender<bool>,
    },
    /// Any other order (power, open a URL): sent to the online targets and followed in
    /// memory until each station answers (the audit line is the caller's).
    Order {
        stations: Option<Vec<u32>>,
        order: Control,
        reply: oneshot::Sender<Result<MessageReport, SendError>>,
    },
    ActionResult {
        station_id: u32,
        conn: u64,
        action: String,
        ok: bool,
        detail: String,
        reply: oneshot::Sender<bool>,
    },
    OrderRun {
        id: u64,
        reply: oneshot::Sender<Result<Option<OrderRun>, SendError>>,
    },
    Help(help::HelpCmd),
}

/// Orders whose answers the box remembers for the tablet; older ones are in the audit log.
const ORDERS_KEPT: usize = 64;

/// A power or open-URL order and what each station answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRun {
    pub id: u64,
    /// "shutdown", "restart", "logout", "open-session" or "open-url".
    pub action: String,
    /// When the box sent it (Unix µs); it is forgotten after the order retention.
    pub sent_us: u64,
    pub results: Vec<OrderResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderResult {
    pub station_id: u32,
    pub name: String,
    /// The station was online and got the order.
    pub delivered: bool,
    /// The station answered (after its countdown, for power orders).
    pub done: bool,
    pub ok: Option<bool>,
    /// Why the station could not do it.
    pub error: Option<String>,
}

/// The action name a station answers an order with (see `PowerAction::name`).
fn order_action(order: &Control) -> &'static str {
    match order {
        Control::Power { action, .. } => action.name(),
        Control::OpenUrl { .. } => "open-url",
        _ => "order",
    }
}

/// An approved command, resolved with the arguments the teacher picked.
#[derive(Debug, Clone)]
pub struct CommandOrder {
    pub name: String,
    pub program: String,
    pub args: Vec<String>,
    pub timeout_s: u32,
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageReport {
    pub id: u64,
    pub sent_to: Vec<String>,
    /// Targeted stations that are offline: they do not get the message.
    pub offline: Vec<String>,
}

/// Why an order to stations was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no station with id {0} in this room")]
    UnknownStation(u32),
    #[error("the list of stations is empty")]
    NoTarget,
    #[error("{0}")]
    Internal(String),
}

/// What a lock or unlock reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockReport {
    pub locked: bool,
    /// Stations the order was sent to.
    pub sent_to: Vec<String>,
    /// Enrolled stations that are offline: they get the lock when they come back.
    pub offline: Vec<String>,
}

#[derive(Clone)]
pub struct RoomHandle {
    tx: mpsc::Sender<Cmd>,
    view: watch::Receiver<RoomView>,
}

impl RoomHandle {
    /// The room's task still runs (`/healthz`).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Registers a station's new link. A station revoked or deleted while its link was
    /// being checked is refused here; a station that already has a link gets this one
    /// instead, and the old one is cut (one live link per certificate).
    pub async fn online(
        &self,
        station: StationRow,
        channels: LinkChannels,
    ) -> Result<Registered, OnlineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Online {
                station,
                channels,
                reply,
            })
            .await
            .map_err(|_| OnlineError::Stopped)?;
        rx.await.map_err(|_| OnlineError::Stopped)?
    }

    /// Takes a revoked or deleted station out of the room: its link is cut at once, its
    /// tile goes, a demo it is the source of ends, and a link that was being set up for it
    /// is refused. False when the room did not know the station.
    pub async fn remove_station(&self, station_id: u32) -> bool {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Cmd::Remove { station_id, reply })
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Forgets the answers to power and open-URL orders sent before `before_us`; returns
    /// how many orders were forgotten.
    pub async fn forget_orders(&self, before_us: u64) -> usize {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Cmd::ForgetOrders { before_us, reply })
            .await
            .is_err()
        {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Starts a demo (replacing a running one). Audited by the room.
    pub async fn start_demo(
        &self,
        request: DemoRequest,
        actor: &str,
    ) -> Result<DemoView, DemoError> {
        let stopped = || DemoError::Internal("the room task has stopped".into());
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::StartDemo {
                request,
                actor: actor.to_string(),
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Stops the running demo on every station. Audited by the room.
    pub async fn stop_demo(&self, actor: &str) -> Result<DemoEnd, DemoError> {
        let stopped = || DemoError::Internal("the room task has stopped".into());
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::StopDemo {
                actor: actor.to_string(),
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// A station's demo player report. `try_send`: a report is worth nothing late, and the
    /// link must not wait on the room for it.
    pub fn demo_health(&self, station_id: u32, conn: u64, health: DemoHealth) {
        let _ = self.tx.try_send(Cmd::DemoHealth {
            station_id,
            conn,
            health,
        });
    }

    pub async fn offline(&self, station_id: u32, conn: u64) {
        let _ = self.tx.send(Cmd::Offline { station_id, conn }).await;
    }

    pub async fn enrolled(&self, station: StationRow) {
        let _ = self.tx.send(Cmd::Enrolled { station }).await;
    }

    /// Opens a mosaic viewer for as long as the returned guard is held (the mosaic
    /// WebSocket holds one for its lifetime): see [`MosaicViewer`].
    pub async fn mosaic_viewer(&self) -> MosaicViewer {
        let (tx, closed) = lease(Lease::Mosaic);
        let _ = self.tx.send(Cmd::OpenMosaic { closed }).await;
        MosaicViewer { _lease: tx }
    }

    pub async fn open_focus(&self, station_id: u32) -> Result<FocusSubscription, FocusError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::OpenFocus { station_id, reply })
            .await
            .map_err(|_| FocusError::Unknown)?;
        rx.await.map_err(|_| FocusError::Unknown)?
    }

    pub fn view(&self) -> watch::Receiver<RoomView> {
        self.view.clone()
    }

    async fn help_ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, HelpError>>) -> help::HelpCmd,
    ) -> Result<T, HelpError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Help(make(reply)))
            .await
            .map_err(|_| HelpError::Offline)?;
        rx.await.map_err(|_| HelpError::Offline)?
    }

    /// Asks the student at `station_id` to accept remote help from account `helper`, named
    /// `label` on the prompt. Audited by the room, as is every later step.
    pub async fn ask_help(
        &self,
        station_id: u32,
        helper: &str,
        label: &str,
    ) -> Result<HelpNow, HelpError> {
        self.help_ask(|reply| help::HelpCmd::Ask {
            station_id,
            helper: helper.to_string(),
            label: label.to_string(),
            reply,
        })
        .await
    }

    /// Passes the helper's input on, only while the student's consent holds.
    pub async fn help_input(
        &self,
        station_id: u32,
        helper: &str,
        events: Vec<lanterne_wire::InputEvent>,
    ) -> Result<(), HelpError> {
        self.help_ask(|reply| help::HelpCmd::Input {
            station_id,
            helper: helper.to_string(),
            events,
            reply,
        })
        .await
    }

    /// The helper ends their help (or withdraws the question).
    pub async fn stop_help(&self, station_id: u32, helper: &str) -> Result<(), HelpError> {
        self.help_ask(|reply| help::HelpCmd::Stop {
            station_id,
            helper: helper.to_string(),
            reply,
        })
        .await
    }

    /// A station's help now and its recent steps.
    pub async fn help_view(&self, station_id: u32) -> Result<HelpView, HelpError> {
        self.help_ask(|reply| help::HelpCmd::View { station_id, reply })
            .await
    }

    /// The helper's view of the station, while the student's consent holds (any hour).
    pub async fn open_help_view(
        &self,
        station_id: u32,
        helper: &str,
    ) -> Result<FocusSubscription, HelpError> {
        self.help_ask(|reply| help::HelpCmd::OpenView {
            station_id,
            helper: helper.to_string(),
            reply,
        })
        .await
    }

    /// A station's report on the help it was asked; false when it answers no help asked of
    /// this link.
    pub async fn help_state(
        &self,
        station_id: u32,
        conn: u64,
        id: u64,
        state: lanterne_wire::HelpState,
    ) -> bool {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Cmd::Help(help::HelpCmd::Reported {
                station_id,
                conn,
                id,
                state,
                reply,
            }))
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    pub async fn shown(&self, station_id: u32, conn: u64, shown: Shown) {
        let _ = self
            .tx
            .send(Cmd::Shown {
                station_id,
                conn,
                shown,
            })
            .await;
    }

    /// The station reports who is logged in (display name, already checked) or nobody.
    pub async fn session_user(&self, station_id: u32, conn: u64, name: Option<String>) {
        let _ = self
            .tx
            .send(Cmd::SessionUser {
                station_id,
                conn,
                name,
            })
            .await;
    }

    /// The station's student raised (true) or withdrew (false) their hand.
    pub async fn hand(&self, station_id: u32, conn: u64, raised: bool) {
        let _ = self
            .tx
            .send(Cmd::Hand {
                station_id,
                conn,
                raised,
            })
            .await;
    }

    /// Clears a raised hand (the teacher has seen it) and tells the station. Ok(false): the
    /// hand was not up (already withdrawn or cleared from another tablet).
    pub async fn clear_hand(&self, station_id: u32) -> Result<bool, SendError> {
        self.ask(|reply| Cmd::ClearHand { station_id, reply }).await
    }

    /// Sends one request to the room task and waits for its answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SendError>>) -> Cmd,
    ) -> Result<T, SendError> {
        let stopped = || SendError::Internal("the room task has stopped".into());
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Sends a message to `stations` (None: all). The message is recorded with, per station,
    /// whether it was delivered; the station reports when the student has read it.
    pub async fn send_message(
        &self,
        stations: Option<Vec<u32>>,
        from: &str,
        text: &str,
    ) -> Result<MessageReport, SendError> {
        self.ask(|reply| Cmd::SendMessage {
            stations,
            from: from.to_string(),
            text: text.to_string(),
            reply,
        })
        .await
    }

    /// Runs an approved command on `stations` (None: all online). The report's `id` is the
    /// run id; results arrive as stations finish.
    pub async fn run_command(
        &self,
        stations: Option<Vec<u32>>,
        from: &str,
        command: CommandOrder,
    ) -> Result<MessageReport, SendError> {
        self.ask(|reply| Cmd::RunCommand {
            stations,
            from: from.to_string(),
            command,
            reply,
        })
        .await
    }

    /// A station's answer to a power or open-URL order, as reported over its link. True
    /// when it answers an order outstanding for this station (sent to it, not answered
    /// yet, not forgotten); anything else is ignored and the caller must not record it.
    pub async fn action_result(
        &self,
        station_id: u32,
        conn: u64,
        action: String,
        ok: bool,
        detail: String,
    ) -> bool {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Cmd::ActionResult {
                station_id,
                conn,
                action,
                ok,
                detail,
                reply,
            })
            .await;
        sent.is_ok() && rx.await.unwrap_or(false)
    }

    /// What the stations answered to order `id`, while the box still remembers it.
    pub async fn order_run(&self, id: u64) -> Result<Option<OrderRun>, SendError> {
        self.ask(|reply| Cmd::OrderRun { id, reply }).await
    }

    /// Sends `order` (power, open a URL) to `stations` (None: all); the report's id follows
    /// the stations' answers through [`RoomHandle::order_run`].
    pub async fn order(
        &self,
        stations: Option<Vec<u32>>,
        order: Control,
    ) -> Result<MessageReport, SendError> {
        self.ask(|reply| Cmd::Order {
            stations,
            order,
            reply,
        })
        .await
    }

    /// A station's command result, as reported over its link. True when it was recorded:
    /// the run was sent to this station and it had not answered yet.
    pub async fn command_result(
        &self,
        station_id: u32,
        conn: u64,
        id: u64,
        result: (Option<i32>, String, String, Option<String>),
    ) -> bool {
        let (exit_code, stdout, stderr, error) = result;
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Cmd::CommandResult {
                station_id,
                conn,
                id,
                exit_code,
                stdout,
                stderr,
                error,
                reply,
            })
            .await;
        sent.is_ok() && rx.await.unwrap_or(false)
    }

    /// A station reports its student read message `id`. True when recorded (the message
    /// was delivered to this station).
    pub async fn message_read(&self, station_id: u32, conn: u64, id: u64) -> bool {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Cmd::MessageRead {
                station_id,
                conn,
                id,
                reply,
            })
            .await;
        sent.is_ok() && rx.await.unwrap_or(false)
    }

    /// Locks (true), unlocks (false) or toggles (None: the panel button) the whole room
    /// (`stations` None) or some stations. The state is stored before any station is told, so
    /// it survives a box restart.
    pub async fn set_lock(
        &self,
        locked: Option<bool>,
        stations: Option<Vec<u32>>,
        actor: &str,
    ) -> Result<LockReport, SendError> {
        let stopped = || SendError::Internal("the room task has stopped".to_string());
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::SetLock {
                locked,
                stations,
                actor: actor.to_string(),
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

struct StationState {
    row: StationRow,
    link: Option<Link>,
}

impl StationState {
    fn offline(row: StationRow) -> Self {
        StationState { row, link: None }
    }
}

struct Link {
    conn: u64,
    /// Cancelling it closes the connection (see [`Registered::cut`]).
    cut: CancellationToken,
    control: mpsc::Sender<Control>,
    demo_tx: mpsc::Sender<FullFrame>,
    full_tx: broadcast::Sender<FullFrame>,
    ended: watch::Sender<bool>,
    /// Why this station's views were ended (None: they were not, or it left).
    views_cut: watch::Sender<Option<Unwatchable>>,
    /// Focus views, screenshots and a demo that need this station's full stream.
    focus_viewers: usize,
    /// Helpers' views during remote help the student accepted (any hour).
    help_viewers: usize,
    /// Bumped when the room ends every view of this station at once.
    view_gen: u64,
    /// What the room asked the station to send.
    thumb_on: bool,
    full_on: bool,
    /// The station's last report of its screen; None until the first one.
    shown: Option<Shown>,
    /// Messages and command runs this connection got and has not answered yet (a station
    /// that reconnects starts afresh: its agent may have restarted without them).
    unread: BTreeSet<u64>,
    running: BTreeSet<u64>,
    /// Who is logged in at the station (display name), as this connection reported.
    user: Option<String>,
    /// When the student's hand went up, as a room-wide sequence number (orders the hands).
    hand: Option<u64>,
}

/// Settings the room hands to stations.
#[derive(Clone, Copy, Debug)]
pub struct StreamPlan {
    pub thumbnail: StreamSettings,
    pub focus: StreamSettings,
}

/// How the room starts: its persisted lock and what locked screens say.
pub struct LockSettings {
    pub message: String,
}

impl Link {
    /// The station said it can show its badge: it may be asked for video.
    fn indicator_available(&self) -> bool {
        self.shown.as_ref().is_some_and(|s| s.indicator_available)
    }

    /// The station said it cannot show its badge. (Before its first report it is neither:
    /// a view opened then waits for the report, which starts the video or ends the view.)
    fn indicator_missing(&self) -> bool {
        self.shown.as_ref().is_some_and(|s| !s.indicator_available)
    }

    /// The station sends video to a person now.
    fn watched(&self) -> bool {
        self.thumb_on || self.full_on
    }

    /// Ends every view of this station (they must reopen), saying why when the screen may no
    /// longer be watched; later views start afresh.
    fn end_views(&mut self, why: Option<Unwatchable>) {
        self.views_cut.send_replace(why);
        let _ = self.ended.send(true);
        self.ended = watch::channel(false).0;
        self.views_cut = watch::channel(None).0;
        self.focus_viewers = 0;
        self.view_gen += 1;
    }
}

struct Room {
    name: String,
    schedule: Option<Schedule>,
    schedule_json: Option<String>,
    clock: Arc<dyn Clock + Send + Sync>,
    monitoring: bool,
    /// Open mosaic viewers, and until when thumbnails linger after the last one closed.
    mosaic_viewers: usize,
    linger_until: Option<tokio::time::Instant>,
    /// Viewers' leases: each resolves when its guard is dropped.
    leases: FuturesUnordered<LeaseFuture>,
    store: Store,
    panel: PanelHandle,
    /// The whole room is locked, stations enrolled later included.
    locked: bool,
    /// Stations locked one by one while the room as a whole is not.
    locked_ids: BTreeSet<u32>,
    /// Stations revoked or deleted since the box started: a link checked against the
    /// database just before the revocation may not come online after it. (Ids are never
    /// given twice, see `store::retired_ids`.)
    removed: BTreeSet<u32>,
    lock_message: String,
    stations: BTreeMap<u32, StationState>,
    mosaic: Arc<Mosaic>,
    plan: StreamPlan,
    next_conn: u64,
    /// The next raised hand's sequence number.
    next_hand: u64,
    /// Recent power and open-URL orders, oldest first.
    orders: std::collections::VecDeque<OrderRun>,
    next_order: u64,
    view: watch::Sender<RoomView>,
    tx: mpsc::Sender<Cmd>,
    demo: Option<Demo>,
    last_demo_end: Option<DemoEnd>,
    hdmi: Option<(crate::config::Hdmi, lanterne_media::CodecProbe)>,
    /// Remote help, asked or running, per station.
    helps: help::Helps,
}

/// The running demo, owned by the room task.
struct Demo {
    source: DemoSource,
    source_name: String,
    /// The source station's connection (None for the HDMI input): a reconnection of the
    /// source ends the demo.
    source_conn: Option<u64>,
    mode: DemoMode,
    region: Option<Region>,
    targets: Option<Vec<u32>>,
    started_by: String,
    started_us: u64,
    relay: Relay,
    health: BTreeMap<u32, DemoHealth>,
    /// The HDMI capture while it is the source; dropping it stops capturing.
    hdmi: Option<crate::hdmi::HdmiSource>,
}

impl Demo {
    /// The source station; None when the source is the box's HDMI input.
    fn source_station(&self) -> Option<u32> {
        match self.source {
            DemoSource::Station { station_id } => Some(station_id),
            DemoSource::Hdmi => None,
        }
    }

    fn is_target(&self, station_id: u32) -> bool {
        Some(station_id) != self.source_station()
            && self
                .targets
                .as_ref()
                .is_none_or(|t| t.contains(&station_id))
    }

    fn order(&self) -> Control {
        Control::DemoStart(DemoStart {
            source: self.source_name.clone(),
            mode: self.mode,
            region: self.region,
        })
    }
}

fn mode_name(m: DemoMode) -> &'static str {
    match m {
        DemoMode::FullScreen => "fullscreen",
        DemoMode::Windowed => "windowed",
    }
}

/// What the students read when a demo ends, per reason.
fn end_text(reason: &str) -> &'static str {
    match reason {
        "source-gone" => "La démonstration est terminée : l'écran montré n'est plus disponible.",
        "outside-monitoring-hours" => {
            "La démonstration est terminée : la plage horaire de surveillance est close."
        }
        _ => "La démonstration est terminée.",
    }
}

/// Starts the room task with the enrolled stations.
/// What the room is told once, at start.
pub struct RoomSettings {
    pub name: String,
    pub plan: StreamPlan,
    pub lock: LockSettings,
    /// None: no monitoring at all (fail closed).
    pub schedule: Option<Schedule>,
    /// The same schedule as configured, sent to every station (JSON).
    pub schedule_json: Option<String>,
    /// The box's local time, which the schedule is written in (`SystemClock` in the
    /// daemon; tests move a manual clock across window edges).
    pub clock: Arc<dyn Clock + Send + Sync>,
    /// The HDMI input, when one is configured, with the codecs to encode it.
    pub hdmi: Option<(crate::config::Hdmi, lanterne_media::CodecProbe)>,
}

pub fn spawn(
    settings: RoomSettings,
    stations: Vec<StationRow>,
    mosaic: Arc<Mosaic>,
    store: Store,
    panel: PanelHandle,
) -> Result<RoomHandle, store::StoreError> {
    let RoomSettings {
        name,
        plan,
        lock,
        schedule,
        schedule_json,
        clock,
        hdmi,
    } = settings;
    let (tx, rx) = mpsc::channel(256);
    let (view_tx, view_rx) = watch::channel(RoomView::default());
    let locked = store
        .with(|c| store::room_state(c, "locked"))?
        .is_some_and(|v| v == "true");
    let locked_ids = parse_ids(
        store
            .with(|c| store::room_state(c, "locked_stations"))?
            .as_deref()
            .unwrap_or(""),
    );
    let monitoring = schedule
        .as_ref()
        .is_some_and(|s| s.is_monitoring_at(clock.now()));
    let mut room = Room {
        name,
        schedule,
        schedule_json,
        clock,
        monitoring,
        mosaic_viewers: 0,
        linger_until: None,
        leases: FuturesUnordered::new(),
        store,
        panel,
        locked,
        locked_ids,
        removed: BTreeSet::new(),
        lock_message: lock.message,
        stations: stations
            .into_iter()
            .map(|row| (row.id, StationState::offline(row)))
            .collect(),
        mosaic,
        plan,
        next_conn: 1,
        next_hand: 1,
        orders: std::collections::VecDeque::new(),
        next_order: 1,
        view: view_tx,
        tx: tx.clone(),
        demo: None,
        last_demo_end: None,
        hdmi,
        helps: help::Helps::default(),
    };
    // Nobody watches yet: the mosaic neither decodes nor encodes until a viewer comes.
    room.apply_streams();
    room.relayout();
    tokio::spawn(room.run(rx));
    Ok(RoomHandle { tx, view: view_rx })
}

/// A local date and time as the tablet shows it: "2026-11-23 09:15".
fn local_minute(t: time::PrimitiveDateTime) -> String {
    format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute())
}

/// Station ids stored as "3,7,12"; anything unreadable is dropped (the table is ours).
fn parse_ids(text: &str) -> BTreeSet<u32> {
    text.split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

impl Room {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        // A timer to the next window edge, re-armed after each edge and each re-check.
        let mut edge = Box::pin(tokio::time::sleep_until(self.next_edge()));
        let mut recheck = tokio::time::interval_at(
            tokio::time::Instant::now() + SCHEDULE_RECHECK,
            SCHEDULE_RECHECK,
        );
        // While a demo runs, its receivers' health changes every second; tablets see it at
        // that pace rather than at every station's report.
        let mut demo_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let linger_end = self.linger_until;
            let cmd = tokio::select! {
                cmd = rx.recv() => match cmd { Some(c) => c, None => return },
                _ = &mut edge => {
                    self.check_schedule().await;
                    edge.as_mut().reset(self.next_edge());
                    continue;
                }
                _ = recheck.tick() => {
                    self.check_schedule().await;
                    edge.as_mut().reset(self.next_edge());
                    continue;
                }
                Some(ended) = self.leases.next(), if !self.leases.is_empty() => {
                    self.lease_ended(ended);
                    continue;
                }
                _ = tokio::time::sleep_until(linger_end.unwrap_or_else(tokio::time::Instant::now)), if linger_end.is_some() => {
                    // The last viewer did not come back: thumbnails stop.
                    self.linger_until = None;
                    self.apply_streams();
                    self.publish();
                    continue;
                }
                _ = demo_tick.tick(), if self.demo.is_some() => {
                    if self.demo.as_ref().is_some_and(|d| d.relay.finished()) {
                        // The source's stream closed (it left) before the room heard of it.
                        self.end_demo("source-gone", "box").await;
                    }
                    self.publish();
                    continue;
                }
            };
            match cmd {
                Cmd::Online {
                    station,
                    channels:
                        LinkChannels {
                            control,
                            demo: demo_tx,
                        },
                    reply,
                } => {
                    if self.removed.contains(&station.id) {
                        let _ = reply.send(Err(OnlineError::Removed));
                        continue;
                    }
                    // A source that reconnects has lost its stream: the demo ends (the
                    // teacher starts it again if wanted); see `end_demo`.
                    if self
                        .demo
                        .as_ref()
                        .is_some_and(|d| d.source_station() == Some(station.id))
                    {
                        self.end_demo("source-gone", "box").await;
                    }
                    let conn = self.next_conn;
                    self.next_conn += 1;
                    let (full_tx, _) = broadcast::channel(64);
                    let id = station.id;
                    let lock_wanted = self.lock_wanted(id);
                    let entry = self
                        .stations
                        .entry(id)
                        .or_insert_with(|| StationState::offline(station.clone()));
                    entry.row = station;
                    let replaced = entry.link.is_some();
                    if let Some(old) = entry.link.take() {
                        // One live link per certificate: the newest wins. A station whose
                        // agent restarted, or whose network dropped, reconnects before the
                        // box notices the old link is dead; refusing the new one would
                        // lock it out until then. The old connection is closed, not just
                        // ignored, so a copied certificate cannot keep a second link.
                        // Its viewers must reopen.
                        // (The link logs it, within the station's line budget.)
                        let _ = old.ended.send(true);
                        old.cut.cancel();
                    }
                    let (ended, _) = watch::channel(false);
                    // The station checks the hours itself too, and shows them to the student.
                    // No video is asked for yet: not before the station reports it can show
                    // its badge (its first `Shown`), and only while someone looks.
                    if let Some(json) = &self.schedule_json {
                        let _ = control.try_send(Control::Schedule {
                            config_json: json.clone(),
                        });
                    }
                    // The room lock outlives connections: a station that comes back (or a
                    // restarted box) puts the lock straight back up.
                    if lock_wanted {
                        let _ = control.try_send(Control::Lock {
                            message: self.lock_message.clone(),
                        });
                    }
                    // A receiver that comes back mid-demo gets the player again and joins
                    // the relay, which asks the source for a keyframe.
                    if let Some(demo) = self.demo.as_mut().filter(|d| d.is_target(id)) {
                        let _ = control.try_send(demo.order());
                        demo.relay.add(id, &entry.row.name, demo_tx.clone());
                        demo.health.remove(&id);
                    }
                    let cut = CancellationToken::new();
                    entry.link = Some(Link {
                        conn,
                        cut: cut.clone(),
                        control,
                        demo_tx,
                        full_tx: full_tx.clone(),
                        ended,
                        views_cut: watch::channel(None).0,
                        focus_viewers: 0,
                        help_viewers: 0,
                        view_gen: 0,
                        thumb_on: false,
                        full_on: false,
                        shown: None,
                        unread: BTreeSet::new(),
                        running: BTreeSet::new(),
                        user: None,
                        hand: None,
                    });
                    let _ = reply.send(Ok(Registered {
                        conn,
                        full_tx,
                        cut,
                        replaced,
                    }));
                    // Help asked over the previous link does not carry over: the station
                    // dropped it when that link went.
                    if self.helps.running.get(&id).is_some_and(|h| h.conn != conn) {
                        self.end_help(id, "unavailable", "box", "the station reconnected")
                            .await;
                    }
                    self.relayout();
                }
                Cmd::Remove { station_id, reply } => {
                    let _ = reply.send(self.remove_station(station_id).await);
                }
                Cmd::ForgetOrders { before_us, reply } => {
                    let before = self.orders.len();
                    self.orders.retain(|o| o.sent_us >= before_us);
                    let _ = reply.send(before - self.orders.len());
                }
                Cmd::Offline { station_id, conn } => {
                    let current = self
                        .stations
                        .get(&station_id)
                        .and_then(|st| st.link.as_ref())
                        .is_some_and(|l| l.conn == conn);
                    if current {
                        let source_left = self
                            .demo
                            .as_ref()
                            .is_some_and(|d| d.source_station() == Some(station_id));
                        if source_left {
                            self.end_demo("source-gone", "box").await;
                        } else if let Some(demo) = self.demo.as_mut() {
                            demo.relay.remove(station_id);
                        }
                        let st = self.stations.get_mut(&station_id).expect("checked");
                        let link = st.link.take().expect("checked");
                        let _ = link.ended.send(true);
                        self.mosaic.set_online(station_id, false);
                        self.end_help(station_id, "unavailable", "box", "the station went offline")
                            .await;
                        self.relayout();
                    }
                }
                Cmd::StartDemo {
                    request,
                    actor,
                    reply,
                } => {
                    let r = self.start_demo(request, &actor).await;
                    let _ = reply.send(r);
                }
                Cmd::StopDemo { actor, reply } => {
                    let r = match self.demo.is_some() {
                        true => Ok(self.end_demo("stopped", &actor).await),
                        false => Err(DemoError::NotRunning),
                    };
                    let _ = reply.send(r);
                }
                Cmd::DemoHealth {
                    station_id,
                    conn,
                    health,
                } => {
                    if self.link_mut(station_id, conn).is_some() {
                        if let Some(demo) = self.demo.as_mut().filter(|d| d.is_target(station_id)) {
                            demo.health.insert(station_id, health);
                        }
                    }
                }
                Cmd::Enrolled { station } => {
                    self.stations
                        .entry(station.id)
                        .or_insert_with(|| StationState::offline(station));
                    self.relayout();
                }
                Cmd::Shown {
                    station_id,
                    conn,
                    shown,
                } => {
                    let Some(link) = self.link_mut(station_id, conn) else {
                        continue;
                    };
                    if link.shown.as_ref() == Some(&shown) {
                        continue;
                    }
                    let unable = !shown.indicator_available;
                    let newly_unable =
                        unable && link.shown.as_ref().is_none_or(|s| s.indicator_available);
                    link.shown = Some(shown);
                    if unable {
                        let name = self.stations[&station_id].row.name.clone();
                        if newly_unable {
                            tracing::warn!(station = %name, "the station cannot show its \"screen watched\" indicator: it will not be watched");
                        }
                        self.cut_off(station_id, Unwatchable::NoIndicator { station: name })
                            .await;
                    }
                    self.apply_streams();
                    self.publish();
                }
                Cmd::SessionUser {
                    station_id,
                    conn,
                    name,
                } => {
                    let Some(link) = self.link_mut(station_id, conn) else {
                        continue;
                    };
                    if link.user != name {
                        link.user = name;
                        self.publish();
                    }
                }
                Cmd::Hand {
                    station_id,
                    conn,
                    raised,
                } => {
                    let seq = self.next_hand;
                    let Some(link) = self.link_mut(station_id, conn) else {
                        continue;
                    };
                    // A hand already up keeps its place in the queue.
                    let changed = match (raised, link.hand) {
                        (true, None) => {
                            link.hand = Some(seq);
                            true
                        }
                        (false, Some(_)) => {
                            link.hand = None;
                            true
                        }
                        _ => false,
                    };
                    if changed {
                        if raised {
                            self.next_hand += 1;
                        }
                        self.publish();
                    }
                }
                Cmd::ClearHand { station_id, reply } => {
                    let Some(st) = self.stations.get_mut(&station_id) else {
                        let _ = reply.send(Err(SendError::UnknownStation(station_id)));
                        continue;
                    };
                    let cleared = match st.link.as_mut() {
                        Some(link) if link.hand.is_some() => {
                            link.hand = None;
                            if link.control.try_send(Control::HandCleared).is_err() {
                                tracing::warn!(station = %st.row.name, "could not tell the station its hand was cleared (queue full)");
                            }
                            true
                        }
                        _ => false,
                    };
                    let _ = reply.send(Ok(cleared));
                    if cleared {
                        self.publish();
                    }
                }
                Cmd::SetLock {
                    locked,
                    stations,
                    actor,
                    reply,
                } => {
                    // The button's LED is lit while anything is locked: pressing it then
                    // unlocks everything, as the LED going dark will confirm.
                    let want = locked.unwrap_or(!self.anything_locked());
                    let _ = reply.send(self.set_lock(want, stations, &actor).await);
                }
                Cmd::SendMessage {
                    stations,
                    from,
                    text,
                    reply,
                } => {
                    let _ = reply.send(self.send_message(stations, from, text).await);
                }
                Cmd::RunCommand {
                    stations,
                    from,
                    command,
                    reply,
                } => {
                    let _ = reply.send(self.run_command(stations, from, command).await);
                }
                Cmd::Order {
                    stations,
                    order,
                    reply,
                } => {
                    let _ = reply.send(self.send_order(stations, order));
                }
                Cmd::ActionResult {
                    station_id,
                    conn,
                    action,
                    ok,
                    detail,
                    reply,
                } => {
                    let accepted = self.link_mut(station_id, conn).is_some()
                        && self.order_answered(station_id, &action, ok, detail);
                    let _ = reply.send(accepted);
                }
                Cmd::OrderRun { id, reply } => {
                    let run = self.orders.iter().find(|o| o.id == id).cloned();
                    let _ = reply.send(Ok(run));
                }
                Cmd::CommandResult {
                    station_id,
                    conn,
                    id,
                    exit_code,
                    stdout,
                    stderr,
                    error,
                    reply,
                } => {
                    let mut accepted = false;
                    if let Some(link) = self.link_mut(station_id, conn) {
                        if link.running.remove(&id) {
                            self.publish();
                        }
                        let now = lanterne_wire::now_us() as i64;
                        let res = self
                            .store
                            .run(move |c| {
                                store::finish_command(
                                    c,
                                    id,
                                    station_id,
                                    now,
                                    &store::CommandOutcome {
                                        exit_code,
                                        stdout: &stdout,
                                        stderr: &stderr,
                                        error: error.as_deref(),
                                    },
                                )
                            })
                            .await;
                        // A run not sent to this station, or already answered, is refused
                        // by the store; the link logs it (rate-limited).
                        match res {
                            Ok(done) => accepted = done,
                            Err(e) => tracing::error!("cannot record a command result: {e}"),
                        }
                    }
                    let _ = reply.send(accepted);
                }
                Cmd::MessageRead {
                    station_id,
                    conn,
                    id,
                    reply,
                } => {
                    let mut accepted = false;
                    if let Some(link) = self.link_mut(station_id, conn) {
                        if link.unread.remove(&id) {
                            self.publish();
                        }
                        let now = lanterne_wire::now_us() as i64;
                        let res = self
                            .store
                            .run(move |c| store::mark_message_read(c, id, station_id, now))
                            .await;
                        match res {
                            Ok(done) => accepted = done,
                            Err(e) => tracing::error!("cannot record a read message: {e}"),
                        }
                    }
                    let _ = reply.send(accepted);
                }
                Cmd::OpenFocus { station_id, reply } => {
                    let _ = reply.send(self.open_focus(station_id));
                    self.publish();
                }
                Cmd::OpenMosaic { closed } => {
                    self.leases.push(closed);
                    self.mosaic_viewers += 1;
                    self.linger_until = None;
                    self.apply_streams();
                    self.publish();
                }
                Cmd::Help(c) => self.on_help(c).await,
                Cmd::Keyframe { station_id, conn } => {
                    if let Some(link) = self.link_mut(station_id, conn) {
                        let _ = link.control.try_send(Control::RequestKeyframe {
                            stream: Stream::Full,
                        });
                    }
                }
            }
        }
    }

    /// See [`RoomHandle::remove_station`].
    async fn remove_station(&mut self, id: u32) -> bool {
        self.removed.insert(id);
        if !self.stations.contains_key(&id) {
            return false;
        }
        self.end_help(
            id,
            "unavailable",
            "box",
            "the station was revoked or deleted",
        )
        .await;
        if self
            .demo
            .as_ref()
            .is_some_and(|d| d.source_station() == Some(id))
        {
            self.end_demo("source-gone", "box").await;
        }
        if let Some(demo) = self.demo.as_mut() {
            demo.relay.remove(id);
            demo.health.remove(&id);
            if let Some(t) = demo.targets.as_mut() {
                t.retain(|&s| s != id);
            }
        }
        for order in &mut self.orders {
            order.results.retain(|r| r.station_id != id);
        }
        let st = self.stations.remove(&id).expect("checked");
        if let Some(link) = st.link {
            let _ = link.ended.send(true);
            link.cut.cancel();
        }
        if self.locked_ids.remove(&id) {
            // Else the lock button's LED would stay lit for a station that is gone.
            let ids_text = self
                .locked_ids
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let r = self
                .store
                .run(move |c| store::set_room_state(c, "locked_stations", &ids_text))
                .await;
            if let Err(e) = r {
                tracing::error!("cannot store the room lock after removing a station: {e}");
            }
        }
        tracing::info!(station = %st.row.name, id, "station taken out of the room");
        self.relayout();
        true
    }

    /// A viewer's guard was dropped.
    fn lease_ended(&mut self, lease: Lease) {
        match lease {
            Lease::Mosaic => {
                self.mosaic_viewers = self.mosaic_viewers.saturating_sub(1);
                if self.mosaic_viewers == 0 {
                    self.linger_until = Some(tokio::time::Instant::now() + MOSAIC_LINGER);
                }
            }
            Lease::Focus {
                station_id,
                conn,
                gen,
            } => self.release_full(station_id, conn, Some(gen)),
            Lease::HelpView {
                station_id,
                conn,
                id,
            } => self.release_help_view(station_id, conn, id),
        }
    }

    /// One viewer (a focus view, a screenshot or the demo) no longer needs this station's
    /// full stream; the last one stops it. `gen` None: the demo, always of the current views.
    fn release_full(&mut self, station_id: u32, conn: u64, gen: Option<u64>) {
        if let Some(link) = self.link_mut(station_id, conn) {
            if gen.is_some_and(|g| g != link.view_gen) {
                return; // already ended by the room
            }
            link.focus_viewers = link.focus_viewers.saturating_sub(1);
            self.apply_streams();
            self.publish();
        }
    }

    /// Asks every station for exactly the video someone can see now, and no more (see the
    /// module docs). The one place that starts or stops a station's streams.
    fn apply_streams(&mut self) {
        let mosaic_open = self.mosaic_viewers > 0 || self.linger_until.is_some();
        // An idle box neither decodes nor encodes the mosaic.
        self.mosaic.set_active(mosaic_open);
        let thumbnail = self.thumbnail_settings();
        let focus = self.plan.focus;
        for st in self.stations.values_mut() {
            let Some(link) = st.link.as_mut() else {
                continue;
            };
            let allowed = self.monitoring && link.indicator_available();
            let thumb = allowed && mosaic_open;
            if thumb != link.thumb_on {
                link.thumb_on = thumb;
                let _ = link.control.try_send(Control::SetStream {
                    stream: Stream::Thumb,
                    settings: thumb.then_some(thumbnail),
                });
                // Tiles show pictures only while asked for: grey otherwise, never frozen on
                // the last picture.
                self.mosaic.set_online(st.row.id, thumb);
            }
            // A helper's view during remote help the student accepted: at any hour, the
            // student's consent being the safeguard (the station checks it too).
            let helping =
                link.indicator_available() && link.help_viewers > 0 && self.helps.active(st.row.id);
            let full = (allowed && link.focus_viewers > 0) || helping;
            if full != link.full_on {
                link.full_on = full;
                let _ = link.control.try_send(Control::SetStream {
                    stream: Stream::Full,
                    settings: full.then_some(focus),
                });
            }
        }
    }

    /// This station may no longer be watched (`why`): a demo of it ends and its views are
    /// cut, before `apply_streams` stops its video.
    async fn cut_off(&mut self, station_id: u32, why: Unwatchable) {
        if self
            .demo
            .as_ref()
            .is_some_and(|d| d.source_station() == Some(station_id))
        {
            self.end_demo("source-gone", "box").await;
        }
        if let Some(link) = self
            .stations
            .get_mut(&station_id)
            .and_then(|s| s.link.as_mut())
        {
            if link.focus_viewers > 0 {
                link.end_views(Some(why));
            }
        }
    }

    /// Starts a demo: the source's full stream (counted as one more viewer, so the status
    /// LED shows it is watched) relayed to every target online now; targets offline now get
    /// it when they come back.
    async fn start_demo(&mut self, req: DemoRequest, actor: &str) -> Result<DemoView, DemoError> {
        let source = match req.source {
            DemoSource::Station { station_id } => {
                // Showing a student's screen to the class is watching it: same hours as the
                // focus view.
                if let Some(why) = self.closed() {
                    return Err(DemoError::OutsideMonitoring { why });
                }
                let src = self
                    .stations
                    .get(&station_id)
                    .ok_or(DemoError::UnknownStation(station_id))?;
                if src.link.as_ref().is_some_and(Link::indicator_missing) {
                    return Err(DemoError::OutsideMonitoring {
                        why: Unwatchable::NoIndicator {
                            station: src.row.name.clone(),
                        },
                    });
                }
                Some((station_id, src.row.name.clone()))
            }
            // The teacher's own PC: nobody is watched, at any hour.
            DemoSource::Hdmi => {
                if self.hdmi.is_none() {
                    return Err(DemoError::NoHdmi);
                }
                None
            }
        };
        let source_id = source.as_ref().map(|(id, _)| *id);
        let source_name = source
            .as_ref()
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| crate::hdmi::SOURCE_NAME.to_string());
        if let Some(targets) = &req.targets {
            if targets.is_empty() {
                return Err(DemoError::NoTarget);
            }
            if let Some(bad) = targets.iter().find(|id| !self.stations.contains_key(id)) {
                return Err(DemoError::UnknownStation(*bad));
            }
            if source_id.is_some_and(|s| targets.contains(&s)) {
                return Err(DemoError::SourceIsTarget(source_name));
            }
        }
        let others = self.stations.len() - usize::from(source_id.is_some());
        if req.targets.is_none() && others == 0 {
            return Err(DemoError::NoTarget);
        }
        let order = DemoStart {
            source: source_name.clone(),
            mode: req.mode,
            region: req.region,
        };
        order.validate().map_err(DemoError::Invalid)?;
        if let Some(id) = source_id {
            if self.stations[&id].link.is_none() {
                return Err(DemoError::SourceOffline(source_name));
            }
        }
        if self.demo.is_some() {
            self.end_demo("replaced", actor).await;
        }
        let (relay, source_conn, hdmi) = match source_id {
            Some(id) => {
                let link = self
                    .stations
                    .get_mut(&id)
                    .and_then(|s| s.link.as_mut())
                    .expect("checked online");
                link.focus_viewers += 1;
                self.apply_streams();
                let link = self
                    .stations
                    .get_mut(&id)
                    .and_then(|s| s.link.as_mut())
                    .expect("checked online");
                let control = link.control.clone();
                // The student whose screen the class sees is told, for as long as it lasts.
                let _ = control.try_send(Control::ShownToClass { on: true });
                let relay = Relay::start(SourceFeed {
                    frames: link.full_tx.subscribe(),
                    request_keyframe: Box::new(move || {
                        let _ = control.try_send(Control::RequestKeyframe {
                            stream: Stream::Full,
                        });
                    }),
                });
                (relay, Some(link.conn), None)
            }
            None => {
                let (cfg, probe) = self.hdmi.as_ref().expect("checked configured");
                let (capture, feed) =
                    crate::hdmi::start(cfg, probe).map_err(DemoError::HdmiFailed)?;
                (Relay::start(feed), None, Some(capture))
            }
        };
        let mut targets = req.targets;
        if let Some(t) = targets.as_mut() {
            t.sort_unstable();
            t.dedup();
        }
        let demo = Demo {
            source: req.source,
            source_name: source_name.clone(),
            source_conn,
            mode: req.mode,
            region: req.region,
            targets,
            started_by: actor.to_string(),
            started_us: lanterne_wire::now_us(),
            relay,
            health: BTreeMap::new(),
            hdmi,
        };
        let mut reached = Vec::new();
        for st in self.stations.values() {
            if let (true, Some(l)) = (demo.is_target(st.row.id), &st.link) {
                let _ = l.control.try_send(demo.order());
                demo.relay.add(st.row.id, &st.row.name, l.demo_tx.clone());
                reached.push(st.row.name.clone());
            }
        }
        let detail = format!(
            "mode {}; region {}; targets {}; online now: {}",
            mode_name(demo.mode),
            demo.region
                .map(|r| format!("{}x{}+{}+{}", r.width, r.height, r.x, r.y))
                .unwrap_or_else(|| "whole screen".into()),
            match &demo.targets {
                None => "all others".to_string(),
                Some(t) => t
                    .iter()
                    .map(|id| self.stations[id].row.name.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
            },
            reached.join(" ")
        );
        tracing::info!(%actor, source = %source_name, receivers = reached.len(), "demo started");
        self.demo = Some(demo);
        self.audit(actor, "demo-start", &source_name, &detail).await;
        self.publish();
        Ok(self.view.borrow().demo.clone().expect("just started"))
    }

    /// Ends the demo on every receiving station (saying why) and releases the source.
    async fn end_demo(&mut self, reason: &'static str, actor: &str) -> DemoEnd {
        let end = DemoEnd {
            reason,
            source_name: String::new(),
            at_us: lanterne_wire::now_us(),
        };
        let Some(demo) = self.demo.take() else {
            return end;
        };
        let receivers: Vec<u32> = self
            .stations
            .keys()
            .copied()
            .filter(|id| demo.is_target(*id))
            .collect();
        let source = demo.source_station();
        let Demo {
            relay,
            source_name,
            source_conn,
            hdmi,
            ..
        } = demo;
        // The relay stops before the stop order goes out, so no frame follows the order.
        drop(relay);
        drop(hdmi);
        let stop = Control::DemoStop {
            reason: end_text(reason).to_string(),
        };
        for id in receivers {
            if let Some(l) = &self.stations[&id].link {
                let _ = l.control.try_send(stop.clone());
            }
        }
        let end = DemoEnd { source_name, ..end };
        if let (Some(source), Some(conn)) = (source, source_conn) {
            if let Some(link) = self.link_mut(source, conn) {
                let _ = link.control.try_send(Control::ShownToClass { on: false });
            }
            self.release_full(source, conn, None);
        }
        tracing::info!(%actor, source = %end.source_name, reason, "demo ended");
        self.audit(actor, "demo-stop", &end.source_name, reason)
            .await;
        self.last_demo_end = Some(end.clone());
        self.publish();
        end
    }

    /// One audit line; a failure to write it is logged (the action has happened).
    async fn audit(&self, actor: &str, action: &'static str, target: &str, detail: &str) {
        let now = lanterne_wire::now_us() as i64;
        let (actor, target, detail) = (actor.to_string(), target.to_string(), detail.to_string());
        let r = self
            .store
            .run(move |c| {
                crate::audit::write(
                    c,
                    now,
                    &crate::audit::Entry {
                        actor: &actor,
                        action,
                        target: &target,
                        result: "ok",
                        detail: &detail,
                    },
                )
            })
            .await;
        if let Err(e) = r {
            tracing::error!("cannot write the audit line for {action}: {e}");
        }
    }

    fn demo_view(&self) -> Option<DemoView> {
        let demo = self.demo.as_ref()?;
        let stats = demo.relay.stats();
        let receivers = self
            .stations
            .values()
            .filter(|st| demo.is_target(st.row.id))
            .map(|st| DemoReceiverView {
                station_id: st.row.id,
                name: st.row.name.clone(),
                online: st.link.is_some(),
                relay: stats.receivers.get(&st.row.id).copied().unwrap_or_default(),
                health: demo.health.get(&st.row.id).copied(),
            })
            .collect();
        Some(DemoView {
            source: demo.source,
            source_name: demo.source_name.clone(),
            mode: mode_name(demo.mode),
            region: demo.region,
            targets: demo.targets.clone(),
            started_by: demo.started_by.clone(),
            started_us: demo.started_us,
            receivers,
        })
    }

    fn link_mut(&mut self, station_id: u32, conn: u64) -> Option<&mut Link> {
        self.stations
            .get_mut(&station_id)?
            .link
            .as_mut()
            .filter(|l| l.conn == conn)
    }

    fn next_monitoring(&self) -> Option<String> {
        let s = self.schedule.as_ref()?;
        let next = s.next_monitoring_start(self.clock.now())?;
        Some(local_minute(next))
    }

    /// Why no screen may be watched now; None inside a monitoring window.
    fn closed(&self) -> Option<Unwatchable> {
        if self.monitoring {
            return None;
        }
        Some(match self.schedule {
            None => Unwatchable::NotConfigured,
            Some(_) => Unwatchable::OutsideHours {
                next: self.next_monitoring(),
            },
        })
    }

    /// When the room's clock next crosses a window edge, on the monotonic clock.
    fn next_edge(&self) -> tokio::time::Instant {
        let now = self.clock.now();
        let wait = self
            .schedule
            .as_ref()
            .and_then(|s| s.next_edge(now))
            .and_then(|edge| Duration::try_from(edge - now).ok())
            .unwrap_or(NO_EDGE);
        tokio::time::Instant::now() + wait
    }

    /// Acts at a monitoring window's edge (called by the edge timer and the coarse
    /// re-check): when a window closes, a demo of a student's screen ends, every station's
    /// video stops, the LED goes off and open views (focus, screenshots in progress) are cut
    /// with the reason; when one opens, stations with viewers are asked for video again.
    async fn check_schedule(&mut self) {
        let now = self
            .schedule
            .as_ref()
            .is_some_and(|s| s.is_monitoring_at(self.clock.now()));
        if now == self.monitoring {
            return;
        }
        self.monitoring = now;
        tracing::info!(
            monitoring = now,
            "monitoring window {}",
            if now { "opens" } else { "closes" }
        );
        // Showing the teacher's own PC watches nobody: only a student's screen stops.
        if !now
            && self
                .demo
                .as_ref()
                .is_some_and(|d| d.source_station().is_some())
        {
            self.end_demo("outside-monitoring-hours", "schedule").await;
        }
        // Video first (the edge is about what leaves the stations), then the LED and the
        // tablets, then the views: a focus view told it ended already sees why.
        self.apply_streams();
        self.publish();
        if let Some(why) = self.closed() {
            for link in self.stations.values_mut().filter_map(|s| s.link.as_mut()) {
                link.end_views(Some(why.clone()));
            }
        }
    }

    fn open_focus(&mut self, station_id: u32) -> Result<FocusSubscription, FocusError> {
        if let Some(why) = self.closed() {
            return Err(FocusError::OutsideMonitoring { why });
        }
        let st = self
            .stations
            .get_mut(&station_id)
            .ok_or(FocusError::Unknown)?;
        let link = st.link.as_mut().ok_or(FocusError::Offline)?;
        if link.indicator_missing() {
            return Err(FocusError::OutsideMonitoring {
                why: Unwatchable::NoIndicator {
                    station: st.row.name.clone(),
                },
            });
        }
        link.focus_viewers += 1;
        let (conn, gen) = (link.conn, link.view_gen);
        let (lease_tx, closed) = lease(Lease::Focus {
            station_id,
            conn,
            gen,
        });
        let sub = FocusSubscription {
            frames: link.full_tx.subscribe(),
            ended: link.ended.subscribe(),
            cut: link.views_cut.subscribe(),
            station_name: st.row.name.clone(),
            station_id,
            conn,
            room: self.tx.clone(),
            _lease: lease_tx,
        };
        self.leases.push(closed);
        self.apply_streams();
        // A new viewer needs an IDR to start decoding (a stream just started begins with one).
        if let Some(link) = self.link_mut(station_id, conn) {
            let _ = link.control.try_send(Control::RequestKeyframe {
                stream: Stream::Full,
            });
        }
        Ok(sub)
    }

    fn lock_wanted(&self, id: u32) -> bool {
        self.locked || self.locked_ids.contains(&id)
    }

    fn anything_locked(&self) -> bool {
        self.locked || !self.locked_ids.is_empty()
    }

    async fn set_lock(
        &mut self,
        locked: bool,
        stations: Option<Vec<u32>>,
        actor: &str,
    ) -> Result<LockReport, SendError> {
        let whole_room = stations.is_none();
        let targets = self.targets(stations)?;
        let (all, ids) = match (whole_room, locked) {
            (true, _) => (locked, BTreeSet::new()),
            // Already covered by the room lock.
            (false, true) if self.locked => (true, BTreeSet::new()),
            (false, true) => {
                let mut ids = self.locked_ids.clone();
                ids.extend(targets.iter().map(|(id, _)| *id));
                (false, ids)
            }
            // Unlocking some stations of a locked room keeps the others locked.
            (false, false) => {
                let base: BTreeSet<u32> = if self.locked {
                    self.stations.keys().copied().collect()
                } else {
                    self.locked_ids.clone()
                };
                let ids = base
                    .into_iter()
                    .filter(|id| !targets.iter().any(|(t, _)| t == id))
                    .collect();
                (false, ids)
            }
        };
        let action = if locked { "lock" } else { "unlock" };
        let target = if whole_room {
            "room".to_string()
        } else {
            targets
                .iter()
                .map(|(id, _)| self.stations[id].row.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let now = lanterne_wire::now_us() as i64;
        let actor_owned = actor.to_string();
        let ids_text = ids
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.store
            .run(move |c| {
                let tx = c.unchecked_transaction()?;
                store::set_room_state(&tx, "locked", if all { "true" } else { "false" })?;
                store::set_room_state(&tx, "locked_stations", &ids_text)?;
                crate::audit::write(
                    &tx,
                    now,
                    &crate::audit::Entry {
                        actor: &actor_owned,
                        action,
                        target: &target,
                        result: "ok",
                        detail: "",
                    },
                )?;
                tx.commit()
            })
            .await
            .map_err(|e| {
                tracing::error!("cannot store the room lock: {e}");
                SendError::Internal(
                    "the lock state could not be saved; nothing was changed".to_string(),
                )
            })?;
        self.locked = all;
        self.locked_ids = ids;
        let mut report = LockReport {
            locked,
            sent_to: Vec::new(),
            offline: Vec::new(),
        };
        for (id, _) in &targets {
            let st = &self.stations[id];
            let msg = if self.lock_wanted(*id) {
                Control::Lock {
                    message: self.lock_message.clone(),
                }
            } else {
                Control::Unlock
            };
            // The control queue holds 64 orders; a station that far behind is dead and will
            // get the room state again when it reconnects.
            match &st.link {
                Some(link) if link.control.try_send(msg).is_ok() => {
                    report.sent_to.push(st.row.name.clone())
                }
                _ => report.offline.push(st.row.name.clone()),
            }
        }
        tracing::info!(%actor, locked, whole_room, sent = report.sent_to.len(), offline = report.offline.len(), "{action}");
        self.publish();
        Ok(report)
    }

    fn send_order(
        &mut self,
        stations: Option<Vec<u32>>,
        order: Control,
    ) -> Result<MessageReport, SendError> {
        let targets = self.targets(stations)?;
        let id = self.next_order;
        self.next_order += 1;
        let report = self.deliver(id, &targets, &order);
        let results = targets
            .iter()
            .map(|(station, online)| OrderResult {
                station_id: *station,
                name: self.stations[station].row.name.clone(),
                delivered: *online,
                done: false,
                ok: None,
                error: None,
            })
            .collect();
        if self.orders.len() == ORDERS_KEPT {
            self.orders.pop_front();
        }
        self.orders.push_back(OrderRun {
            id,
            action: order_action(&order).to_string(),
            sent_us: lanterne_wire::now_us(),
            results,
        });
        Ok(report)
    }

    /// A station answers its orders of one kind in the order it got them, so the answer
    /// belongs to the oldest order of that kind it has not answered yet.
    /// True when the answer was taken: an order of that kind was sent to this station and
    /// is still outstanding. Anything else (an order never sent to it, already answered,
    /// or forgotten) changes nothing.
    fn order_answered(&mut self, station_id: u32, action: &str, ok: bool, detail: String) -> bool {
        let pending = self.orders.iter_mut().find_map(|o| {
            if o.action != action {
                return None;
            }
            o.results
                .iter_mut()
                .find(|r| r.station_id == station_id && r.delivered && !r.done)
        });
        match pending {
            Some(r) => {
                r.done = true;
                r.ok = Some(ok);
                r.error = (!ok).then_some(detail);
                true
            }
            None => false,
        }
    }

    /// The stations an order is for (None: all), each with whether it is online now.
    fn targets(&self, stations: Option<Vec<u32>>) -> Result<Vec<(u32, bool)>, SendError> {
        let ids: Vec<u32> = match stations {
            None => self.stations.keys().copied().collect(),
            Some(mut ids) => {
                if ids.is_empty() {
                    return Err(SendError::NoTarget);
                }
                if let Some(bad) = ids.iter().find(|id| !self.stations.contains_key(id)) {
                    return Err(SendError::UnknownStation(*bad));
                }
                ids.sort_unstable();
                ids.dedup();
                ids
            }
        };
        Ok(ids
            .into_iter()
            .map(|id| (id, self.stations[&id].link.is_some()))
            .collect())
    }

    /// Sends `msg` to the online targets; the report names who got it and who is offline.
    fn deliver(&self, id: u64, targets: &[(u32, bool)], msg: &Control) -> MessageReport {
        let mut report = MessageReport {
            id,
            sent_to: Vec::new(),
            offline: Vec::new(),
        };
        for (station, online) in targets {
            let st = &self.stations[station];
            match (&st.link, online) {
                (Some(link), true) => {
                    let _ = link.control.try_send(msg.clone());
                    report.sent_to.push(st.row.name.clone());
                }
                _ => report.offline.push(st.row.name.clone()),
            }
        }
        report
    }

    async fn run_command(
        &mut self,
        stations: Option<Vec<u32>>,
        from: String,
        command: CommandOrder,
    ) -> Result<MessageReport, SendError> {
        let targets = self.targets(stations)?;
        let now = lanterne_wire::now_us() as i64;
        let (f, t, cmd) = (from.clone(), targets.clone(), command.clone());
        let id = self
            .store
            .run(move |c| {
                let id = store::insert_command_run(c, &cmd.name, &cmd.args, &f, now, &t)?;
                crate::audit::write(
                    c,
                    now,
                    &crate::audit::Entry {
                        actor: &f,
                        action: "run-command",
                        target: &format!("{} station(s)", t.len()),
                        result: "ok",
                        detail: &format!("run {id}: {} {}", cmd.name, cmd.args.join(" ")),
                    },
                )?;
                Ok(id)
            })
            .await
            .map_err(|e| SendError::Internal(e.to_string()))?;
        let report = self.deliver(
            id,
            &targets,
            &Control::RunCommand {
                id,
                program: command.program,
                args: command.args,
                timeout_s: command.timeout_s,
            },
        );
        self.awaiting_answers(&targets, |link| &mut link.running, id);
        Ok(report)
    }

    /// Notes that the online `targets` owe an answer to order `id` (shown on their tiles).
    fn awaiting_answers(
        &mut self,
        targets: &[(u32, bool)],
        set: impl Fn(&mut Link) -> &mut BTreeSet<u64>,
        id: u64,
    ) {
        for (station, online) in targets {
            if let Some(link) = self.stations.get_mut(station).and_then(|s| s.link.as_mut()) {
                if *online {
                    set(link).insert(id);
                }
            }
        }
        self.publish();
    }

    async fn send_message(
        &mut self,
        stations: Option<Vec<u32>>,
        from: String,
        text: String,
    ) -> Result<MessageReport, SendError> {
        let text = lanterne_wire::bounded_text(&text);
        let delivered = self.targets(stations)?;
        let now = lanterne_wire::now_us() as i64;
        let (f, t, d) = (from.clone(), text.clone(), delivered.clone());
        let id = self
            .store
            .run(move |c| {
                let id = store::insert_message(c, &f, &t, now, &d)?;
                crate::audit::write(
                    c,
                    now,
                    &crate::audit::Entry {
                        actor: &f,
                        action: "message",
                        target: &format!("{} station(s)", d.len()),
                        result: "ok",
                        detail: &format!("message {id}"),
                    },
                )?;
                Ok(id)
            })
            .await
            .map_err(|e| SendError::Internal(e.to_string()))?;
        let report = self.deliver(id, &delivered, &Control::ShowMessage { id, from, text });
        self.awaiting_answers(&delivered, |link| &mut link.unread, id);
        Ok(report)
    }

    /// Is any screen being watched right now? The single source of truth for the status LED:
    /// a station is watched while the room asks it for video, which it does only while a
    /// person can see that video (see `apply_streams`).
    fn watched(&self) -> bool {
        self.stations
            .values()
            .filter_map(|s| s.link.as_ref())
            .any(Link::watched)
            || self.helps.any_active()
    }

    /// Recomputes the mosaic grid, then publishes.
    fn relayout(&mut self) {
        let ids: Vec<u32> = self.stations.values().map(|s| s.row.id).collect();
        self.mosaic
            .set_tiles(ids.iter().map(|&id| TileInfo { id }).collect());
        for st in self.stations.values() {
            self.mosaic
                .set_online(st.row.id, st.link.as_ref().is_some_and(|l| l.thumb_on));
        }
        // Stations already streaming keep their thumbnail size until they reconnect: changing
        // an encoder's size mid-stream is not worth the risk of a stalled tile for a few
        // pixels; every new connection gets the size of the current grid.
        self.publish();
    }

    /// What stations are asked to send for the mosaic: the configured thumbnail, but never
    /// larger than a tile of the current grid. A class of 32 on a 1280×720 mosaic has tiles of
    /// about 208×116: asking for 480×270 would make every station encode, the network carry
    /// and the box decode four times the pixels it shows (and each of the box's decoders
    /// holds its frames in memory).
    fn thumbnail_settings(&self) -> StreamSettings {
        let cfg = self.plan.thumbnail;
        let layout = self.mosaic.layout();
        let Some(tile) = layout.tiles.first() else {
            return cfg;
        };
        let even_up = |v: u32| (v + 1) & !1;
        StreamSettings {
            width: even_up(tile.w).clamp(64, cfg.width.max(64)),
            height: even_up(tile.h).clamp(36, cfg.height.max(36)),
            ..cfg
        }
    }

    /// Publishes the view to tablets and drives the panel LEDs from it.
    fn publish(&mut self) {
        let watched = self.watched();
        self.panel.set_leds(LedState {
            lock: self.anything_locked(),
            // Remote help has its own pattern, and counts as watching (DESIGN §3.3).
            status: if self.helps.any_active() {
                StatusLed::RemoteControl
            } else if watched {
                StatusLed::Watching
            } else {
                StatusLed::Off
            },
        });
        let layout = self.mosaic.layout();
        // Raised hands in the order they went up: 1 for the first.
        let mut hands: Vec<(u64, u32)> = self
            .stations
            .iter()
            .filter_map(|(id, st)| Some((st.link.as_ref()?.hand?, *id)))
            .collect();
        hands.sort_unstable();
        let rank = |id: u32| {
            hands
                .iter()
                .position(|(_, h)| *h == id)
                .map(|i| i as u32 + 1)
        };
        let tiles = layout
            .tiles
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let st = self.stations.get(&t.id)?;
                Some(TileView {
                    index: i as u16,
                    station_id: t.id,
                    name: st.row.name.clone(),
                    online: st.link.is_some(),
                    locked: st
                        .link
                        .as_ref()
                        .and_then(|l| l.shown.as_ref())
                        .is_some_and(|s| s.locked),
                    lock_ordered: self.lock_wanted(t.id),
                    unread_messages: st.link.as_ref().map_or(0, |l| l.unread.len() as u32),
                    commands_running: st.link.as_ref().map_or(0, |l| l.running.len() as u32),
                    watched: st.link.as_ref().is_some_and(Link::watched),
                    indicator: st
                        .link
                        .as_ref()
                        .and_then(|l| l.shown.as_ref())
                        .is_some_and(|s| s.watched_indicator),
                    no_indicator: st
                        .link
                        .as_ref()
                        .and_then(|l| l.shown.as_ref())
                        .is_some_and(|s| !s.indicator_available),
                    help: self.helps.tile_state(t.id),
                    user_name: st.link.as_ref().and_then(|l| l.user.clone()),
                    hand: rank(t.id),
                    x: t.x,
                    y: t.y,
                    w: t.w,
                    h: t.h,
                })
            })
            .collect();
        let next_monitoring = if self.monitoring {
            None
        } else {
            self.next_monitoring()
        };
        let monitoring_until = self
            .schedule
            .as_ref()
            .filter(|_| self.monitoring)
            .and_then(|s| s.current_window_end(self.clock.now()))
            .map(local_minute);
        let view = RoomView {
            name: self.name.clone(),
            locked: self.locked,
            watched,
            monitoring_configured: self.schedule.is_some(),
            monitoring: self.monitoring,
            next_monitoring,
            monitoring_until,
            mosaic: MosaicView {
                width: layout.width,
                height: layout.height,
                tiles,
            },
            demo: self.demo_view(),
            last_demo_end: self.last_demo_end.clone(),
            hdmi_available: self.hdmi.is_some(),
        };
        // Only real changes wake the tablets (the demo tick republishes every second).
        self.view.send_if_modified(|v| {
            let changed = *v != view;
            if changed {
                *v = view;
            }
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use time::macros::datetime;
    use time::PrimitiveDateTime;

    fn row(id: u32) -> StationRow {
        StationRow {
            id,
            name: format!("poste-{id:02}"),
            hostname: format!("poste-{id:02}"),
            mac: None,
            cert_fingerprint: format!("fp{id}"),
        }
    }

    /// A wall clock that runs with tokio's clock (paused in these tests: it moves only when
    /// the test sleeps or tokio auto-advances to the next timer) and that can be set, like a
    /// clock changed by hand.
    struct TestClock {
        at: Mutex<(PrimitiveDateTime, tokio::time::Instant)>,
    }

    impl TestClock {
        fn new(t: PrimitiveDateTime) -> Arc<Self> {
            Arc::new(TestClock {
                at: Mutex::new((t, tokio::time::Instant::now())),
            })
        }

        /// Sets the wall clock (the monotonic clock does not move).
        fn set(&self, t: PrimitiveDateTime) {
            *self.at.lock().unwrap() = (t, tokio::time::Instant::now());
        }

        /// The monotonic instant at which this clock shows `t`.
        fn instant_of(&self, t: PrimitiveDateTime) -> tokio::time::Instant {
            let (base, at) = *self.at.lock().unwrap();
            at + Duration::try_from(t - base).expect("a time ahead")
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> PrimitiveDateTime {
            let (base, at) = *self.at.lock().unwrap();
            base + at.elapsed()
        }
    }

    /// Monday 08:00–18:00 open, watched 09:15–11:45 and 13:15–16:45 (2026-11-23 is a Monday).
    fn monday_schedule() -> Schedule {
        let config: lanterne_privacy::schedule::ScheduleConfig = toml::from_str(
            r#"
            access = [{ days = ["mon"], start = "08:00", end = "18:00" }]
            monitoring = [
                { days = ["mon"], start = "09:15", end = "11:45" },
                { days = ["mon"], start = "13:15", end = "16:45" },
            ]
            "#,
        )
        .unwrap();
        config.validate().unwrap()
    }

    type Parts = (RoomHandle, Arc<Mosaic>, lanterne_panel::SimulatedPanel);

    /// A room inside a monitoring window (Monday 10:00).
    async fn room_with(n: u32) -> Parts {
        let clock = TestClock::new(datetime!(2026-11-23 10:00));
        room_on_schedule(n, Some(monday_schedule()), clock).await
    }

    async fn room_on_schedule(
        n: u32,
        schedule: Option<Schedule>,
        clock: Arc<dyn Clock + Send + Sync>,
    ) -> Parts {
        let probe = lanterne_media::init().unwrap();
        let (mosaic, _rx) = Mosaic::start(
            lanterne_media::MosaicConfig {
                width: 1280,
                height: 720,
                fps: 10,
                bitrate_kbps: 1500,
            },
            &probe,
        )
        .unwrap();
        let mosaic = Arc::new(mosaic);
        let (panel, _events, sim) = lanterne_panel::spawn_simulated();
        let video = |w, h, fps| StreamSettings {
            width: w,
            height: h,
            fps,
            bitrate_kbps: 250,
        };
        let room = spawn(
            RoomSettings {
                name: "Salle 12".into(),
                plan: StreamPlan {
                    thumbnail: video(480, 270, 5),
                    focus: video(1280, 720, 30),
                },
                lock: LockSettings {
                    message: "Regardez le tableau".into(),
                },
                schedule,
                schedule_json: None,
                clock,
                hdmi: None,
            },
            (1..=n).map(row).collect(),
            mosaic.clone(),
            Store::in_memory().unwrap(),
            panel,
        )
        .unwrap();
        (room, mosaic, sim)
    }

    fn channels(control: mpsc::Sender<Control>) -> LinkChannels {
        LinkChannels {
            control,
            demo: mpsc::channel(crate::fanout::DEMO_QUEUE).0,
        }
    }

    const CAN_SHOW_BADGE: Shown = Shown {
        locked: false,
        watched_indicator: false,
        indicator_available: true,
    };

    /// Station `id` connects and reports its screen; returns its control queue and connection.
    async fn online(room: &RoomHandle, id: u32, shown: Shown) -> (mpsc::Receiver<Control>, u64) {
        let (tx, rx) = mpsc::channel(64);
        let reg = room.online(row(id), channels(tx)).await.unwrap();
        room.shown(id, reg.conn, shown).await;
        (rx, reg.conn)
    }

    /// The next order for `stream` (Some: start, None: stop), skipping other control messages.
    async fn stream_order(
        rx: &mut mpsc::Receiver<Control>,
        want: Stream,
    ) -> Option<StreamSettings> {
        loop {
            // Virtual time: hours pass in no time, and the next window may be hours away.
            let msg = tokio::time::timeout(Duration::from_secs(4 * 3600), rx.recv())
                .await
                .expect("a stream order")
                .expect("control open");
            if let Control::SetStream { stream, settings } = msg {
                if stream == want {
                    return settings;
                }
            }
        }
    }

    /// Every stream order queued now, without waiting.
    fn queued_stream_orders(rx: &mut mpsc::Receiver<Control>) -> Vec<(Stream, bool)> {
        let mut out = Vec::new();
        while let Ok(msg) = rx.try_recv() {
            if let Control::SetStream { stream, settings } = msg {
                out.push((stream, settings.is_some()));
            }
        }
        out
    }

    /// Lets the room and panel tasks run everything queued (time does not move).
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    async fn leds(sim: &lanterne_panel::SimulatedPanel, status: StatusLed) -> bool {
        let want = LedState {
            lock: false,
            status,
        };
        tokio::time::timeout(Duration::from_secs(5), sim.wait_for_leds(want))
            .await
            .unwrap_or(false)
    }

    fn tile(room: &RoomHandle, id: u32) -> TileView {
        room.view()
            .borrow()
            .mosaic
            .tiles
            .iter()
            .find(|t| t.station_id == id)
            .cloned()
            .expect("a tile")
    }

    /// The next control message matching `want`, skipping the others.
    async fn next_control(
        rx: &mut mpsc::Receiver<Control>,
        want: impl Fn(&Control) -> bool,
    ) -> Control {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .expect("a control message")
                .expect("control open");
            if want(&msg) {
                return msg;
            }
        }
    }

    /// Issue 11: remote help goes nowhere without the student's answer; once accepted it
    /// works outside the monitoring hours (consent is the safeguard), only for the helper,
    /// rate-limited, with its own LED pattern; every step is listed; the student ends it.
    #[tokio::test(start_paused = true)]
    async fn remote_help_waits_for_the_students_consent_and_works_at_any_hour() {
        use lanterne_wire::{HelpState, InputEvent};
        // A Saturday: no monitoring window.
        let clock = TestClock::new(datetime!(2026-11-28 10:00));
        let (room, _mosaic, sim) = room_on_schedule(2, Some(monday_schedule()), clock).await;
        let (mut rx, conn) = online(&room, 1, CAN_SHOW_BADGE).await;
        settle().await;
        assert!(!room.view().borrow().monitoring);
        let asked = room.ask_help(1, "tech", "tech (technicien)").await.unwrap();
        assert_eq!(asked.state, "asking");
        let Control::HelpAsk(ask) =
            next_control(&mut rx, |c| matches!(c, Control::HelpAsk(_))).await
        else {
            unreachable!()
        };
        assert_eq!(
            (ask.id, ask.timeout_s, ask.from.as_str()),
            (asked.id, 30, "tech (technicien)")
        );
        assert_eq!(tile(&room, 1).help, Some("asking"));
        assert!(matches!(
            room.ask_help(1, "prof", "prof (enseignant)").await,
            Err(HelpError::Busy { .. })
        ));
        let moved = vec![InputEvent::PointerMove { x: 10, y: 10 }];
        assert_eq!(
            room.help_input(1, "tech", moved.clone()).await,
            Err(HelpError::NotAccepted)
        );
        assert!(matches!(
            room.open_help_view(1, "tech").await,
            Err(HelpError::NotAccepted)
        ));
        // Nobody but the station's current link answers for the student.
        assert!(
            !room
                .help_state(1, conn, ask.id + 1, HelpState::Accepted)
                .await
        );
        assert!(
            !room
                .help_state(1, conn + 9, ask.id, HelpState::Accepted)
                .await
        );
        assert!(!room.help_state(2, conn, ask.id, HelpState::Accepted).await);
        assert!(leds(&sim, StatusLed::Off).await);

        assert!(room.help_state(1, conn, ask.id, HelpState::Asking).await);
        assert!(room.help_state(1, conn, ask.id, HelpState::Accepted).await);
        assert!(
            leds(&sim, StatusLed::RemoteControl).await,
            "its own LED pattern"
        );
        assert_eq!(tile(&room, 1).help, Some("active"));
        assert_eq!(
            room.help_input(1, "prof", moved.clone()).await,
            Err(HelpError::NotYours)
        );
        room.help_input(1, "tech", moved.clone()).await.unwrap();
        let got = next_control(&mut rx, |c| matches!(c, Control::HelpInput { .. })).await;
        assert_eq!(
            got,
            Control::HelpInput {
                id: ask.id,
                events: moved.clone()
            }
        );
        // The helper sees the screen outside the hours: the full stream starts.
        let mut view = room.open_help_view(1, "tech").await.unwrap();
        assert!(stream_order(&mut rx, Stream::Full).await.is_some());
        assert!(tile(&room, 1).watched);
        while rx.try_recv().is_ok() {}
        // 60 input messages a second, no more.
        for _ in 1..INPUT_PER_SECOND {
            room.help_input(1, "tech", moved.clone()).await.unwrap();
        }
        assert_eq!(
            room.help_input(1, "tech", moved.clone()).await,
            Err(HelpError::TooFast)
        );
        assert!(room
            .help_input(1, "tech", vec![InputEvent::Scroll { steps: 0 }])
            .await
            .is_err());

        // The student ends it: the view ends, the video stops, the LED goes out.
        assert!(
            room.help_state(1, conn, ask.id, HelpState::EndedByStudent)
                .await
        );
        tokio::time::timeout(Duration::from_secs(5), view.ended.wait_for(|e| *e))
            .await
            .expect("the helper's view ends")
            .unwrap();
        assert_eq!(*view.cut().borrow(), Some(Unwatchable::HelpOver));
        assert_eq!(stream_order(&mut rx, Stream::Full).await, None);
        assert!(leds(&sim, StatusLed::Off).await);
        assert_eq!(
            room.help_input(1, "tech", moved.clone()).await,
            Err(HelpError::NotYours)
        );
        drop(view);

        // Unanswered: the room counts it timed out after the prompt's 30 s (and a grace).
        let again = room.ask_help(1, "tech", "tech (technicien)").await.unwrap();
        tokio::time::sleep(Duration::from_secs(36)).await;
        settle().await;
        let stop = next_control(&mut rx, |c| matches!(c, Control::HelpStop { .. })).await;
        assert_eq!(stop, Control::HelpStop { id: again.id });
        let steps: Vec<(&str, String)> = room
            .help_view(1)
            .await
            .unwrap()
            .steps
            .iter()
            .map(|s| (s.step, s.by.clone()))
            .collect();
        let want: Vec<(&str, String)> = [
            ("asked", "tech"),
            ("prompt-shown", "box"),
            ("accepted", "student"),
            ("started", "tech"),
            ("ended", "student"),
            ("asked", "tech"),
            ("timed-out", "box"),
        ]
        .iter()
        .map(|(a, b)| (*a, b.to_string()))
        .collect();
        assert_eq!(steps, want);
        assert_eq!(room.help_view(1).await.unwrap().help, None);
    }

    /// The student whose screen is shown to the class is told for as long as it lasts.
    #[tokio::test(start_paused = true)]
    async fn the_demo_source_is_told_its_screen_is_shown_to_the_class() {
        let (room, _mosaic, _sim) = room_with(2).await;
        let (mut rx1, _) = online(&room, 1, CAN_SHOW_BADGE).await;
        let (_rx2, _) = online(&room, 2, CAN_SHOW_BADGE).await;
        room.start_demo(
            DemoRequest {
                source: DemoSource::Station { station_id: 1 },
                targets: None,
                mode: DemoMode::Windowed,
                region: None,
            },
            "prof",
        )
        .await
        .unwrap();
        let on = next_control(&mut rx1, |c| matches!(c, Control::ShownToClass { .. })).await;
        assert_eq!(on, Control::ShownToClass { on: true });
        room.stop_demo("prof").await.unwrap();
        let off = next_control(&mut rx1, |c| matches!(c, Control::ShownToClass { .. })).await;
        assert_eq!(off, Control::ShownToClass { on: false });
    }

    #[tokio::test(start_paused = true)]
    async fn thumbnails_are_asked_no_larger_than_a_tile() {
        let (room, mosaic, _sim) = room_with(32).await;
        let _viewer = room.mosaic_viewer().await;
        let (mut rx, _) = online(&room, 1, CAN_SHOW_BADGE).await;
        let s = stream_order(&mut rx, Stream::Thumb)
            .await
            .expect("thumbnails");
        let tile = mosaic.layout().tiles[0];
        assert!(
            s.width <= tile.w + 1 && s.height <= tile.h + 1,
            "{s:?} for tile {}x{}",
            tile.w,
            tile.h
        );
        assert!(s.width < 480 && s.height < 270);
        assert_eq!((s.width % 2, s.height % 2), (0, 0));
        assert_eq!(s.fps, 5);

        // A small class keeps the configured size.
        let (room, _mosaic, _sim) = room_with(2).await;
        let _viewer = room.mosaic_viewer().await;
        let (mut rx, _) = online(&room, 1, CAN_SHOW_BADGE).await;
        let s = stream_order(&mut rx, Stream::Thumb)
            .await
            .expect("thumbnails");
        assert_eq!((s.width, s.height), (480, 270));
    }

    /// Issue 14: inside a monitoring window with nobody looking, no station is asked for
    /// video, no tile is watched and the LED is off; a mosaic viewer lights all of it; after
    /// the viewer leaves it all goes off once the linger is over, and not before.
    #[tokio::test(start_paused = true)]
    async fn stations_stream_only_while_a_mosaic_viewer_is_open_plus_the_linger() {
        let (room, mosaic, sim) = room_with(2).await;
        let (mut rx1, _) = online(&room, 1, CAN_SHOW_BADGE).await;
        let (mut rx2, _) = online(&room, 2, CAN_SHOW_BADGE).await;
        settle().await;
        assert!(room.view().borrow().monitoring);
        assert_eq!(queued_stream_orders(&mut rx1), []);
        assert_eq!(queued_stream_orders(&mut rx2), []);
        assert!(leds(&sim, StatusLed::Off).await);
        assert!(!room.view().borrow().watched && !tile(&room, 1).watched);
        assert!(
            !mosaic.is_active(),
            "nobody watches: no composing, no encoding"
        );

        // A tablet opens the class.
        let viewer = room.mosaic_viewer().await;
        assert!(stream_order(&mut rx1, Stream::Thumb).await.is_some());
        assert!(stream_order(&mut rx2, Stream::Thumb).await.is_some());
        assert!(leds(&sim, StatusLed::Watching).await);
        assert!(tile(&room, 1).watched && tile(&room, 2).watched);
        assert!(room.view().borrow().watched);
        assert!(mosaic.is_active());

        // A second viewer, then the first leaves: nothing changes.
        let second = room.mosaic_viewer().await;
        drop(viewer);
        tokio::time::sleep(MOSAIC_LINGER * 2).await;
        assert_eq!(queued_stream_orders(&mut rx1), []);
        assert!(tile(&room, 1).watched);

        // The last viewer leaves: video goes on for the linger (a reconnecting tablet), then
        // stops everywhere.
        let left = tokio::time::Instant::now();
        drop(second);
        assert_eq!(stream_order(&mut rx1, Stream::Thumb).await, None);
        let after = left.elapsed();
        assert_eq!(stream_order(&mut rx2, Stream::Thumb).await, None);
        assert!(
            after >= MOSAIC_LINGER && after < MOSAIC_LINGER + Duration::from_secs(1),
            "thumbnails stopped {after:?} after the last viewer left"
        );
        assert!(leds(&sim, StatusLed::Off).await);
        assert!(!tile(&room, 1).watched && !room.view().borrow().watched);
        assert!(!mosaic.is_active());

        // A viewer back within the linger keeps the stream without a restart.
        let viewer = room.mosaic_viewer().await;
        assert!(stream_order(&mut rx1, Stream::Thumb).await.is_some());
        drop(viewer);
        tokio::time::sleep(MOSAIC_LINGER / 2).await;
        let _back = room.mosaic_viewer().await;
        tokio::time::sleep(MOSAIC_LINGER * 2).await;
        assert_eq!(queued_stream_orders(&mut rx1), [], "no stop, no restart");
        assert!(leds(&sim, StatusLed::Watching).await);
    }

    /// Fail closed on the station: a station that reports it cannot show its badge is never
    /// asked for video, cannot be opened or shown, and the tablet says so; a station that
    /// loses its badge while watched stops at once and its views end with the reason.
    #[tokio::test(start_paused = true)]
    async fn a_station_without_its_indicator_is_never_watched() {
        let (room, _mosaic, sim) = room_with(2).await;
        let _viewer = room.mosaic_viewer().await;
        let no_badge = Shown {
            indicator_available: false,
            ..Shown::default()
        };
        let (mut rx1, _) = online(&room, 1, no_badge.clone()).await;
        let (mut rx2, conn2) = online(&room, 2, CAN_SHOW_BADGE).await;
        assert!(stream_order(&mut rx2, Stream::Thumb).await.is_some());
        settle().await;
        assert_eq!(queued_stream_orders(&mut rx1), [], "no video asked");
        let t = tile(&room, 1);
        assert!(t.online && t.no_indicator && !t.watched, "{t:?}");
        assert!(!tile(&room, 2).no_indicator);
        let refused = room.open_focus(1).await.err().expect("focus refused");
        assert_eq!(
            refused,
            FocusError::OutsideMonitoring {
                why: Unwatchable::NoIndicator {
                    station: "poste-01".into()
                }
            }
        );
        assert!(refused.to_string().contains("indicator"), "{refused}");
        let demo = room
            .start_demo(
                DemoRequest {
                    source: DemoSource::Station { station_id: 1 },
                    targets: None,
                    mode: DemoMode::Windowed,
                    region: None,
                },
                "prof",
            )
            .await
            .expect_err("a demo of it refused");
        assert!(
            matches!(demo, DemoError::OutsideMonitoring { .. }),
            "{demo}"
        );

        // Station 2 is watched in focus, then its overlay dies.
        let mut focus = room
            .open_focus(2)
            .await
            .expect("focus of a station with badge");
        assert!(stream_order(&mut rx2, Stream::Full).await.is_some());
        room.shown(2, conn2, no_badge).await;
        assert_eq!(stream_order(&mut rx2, Stream::Thumb).await, None);
        assert_eq!(stream_order(&mut rx2, Stream::Full).await, None);
        focus.ended.changed().await.unwrap();
        assert!(*focus.ended.borrow());
        assert_eq!(
            *focus.cut().borrow(),
            Some(Unwatchable::NoIndicator {
                station: "poste-02".into()
            })
        );
        assert!(leds(&sim, StatusLed::Off).await);
        assert!(tile(&room, 2).no_indicator);
    }

    /// A view opened in the instant between a station's connection and its first report
    /// waits for the report: the report starts the video, or ends the view.
    #[tokio::test(start_paused = true)]
    async fn a_view_opened_before_the_first_report_follows_the_report() {
        let (room, _mosaic, _sim) = room_with(2).await;
        let (tx, mut rx) = mpsc::channel(64);
        let reg = room.online(row(1), channels(tx)).await.unwrap();
        let _focus = room
            .open_focus(1)
            .await
            .expect("not refused before the report");
        settle().await;
        assert_eq!(
            queued_stream_orders(&mut rx),
            [],
            "no video before the report"
        );
        room.shown(1, reg.conn, CAN_SHOW_BADGE).await;
        assert!(stream_order(&mut rx, Stream::Full).await.is_some());

        let (tx, mut rx) = mpsc::channel(64);
        let reg = room.online(row(2), channels(tx)).await.unwrap();
        let mut focus = room.open_focus(2).await.unwrap();
        room.shown(2, reg.conn, Shown::default()).await;
        focus.ended.changed().await.unwrap();
        assert!(matches!(
            *focus.cut().borrow(),
            Some(Unwatchable::NoIndicator { .. })
        ));
        settle().await;
        assert_eq!(queued_stream_orders(&mut rx), [], "never any video");
    }

    /// Issue 14, exact edges with a controllable clock: the window ends at 11:45:00; video
    /// (thumbnails and a focus view's full stream) stops, the LED goes off, the focus view
    /// ends and a screenshot waiting for its picture is abandoned at the edge itself.
    #[tokio::test(start_paused = true)]
    async fn at_the_window_end_video_stops_and_the_led_goes_off_at_the_edge() {
        // An odd phase: a periodic check (every few seconds from start) would miss the edge.
        let clock = TestClock::new(datetime!(2026-11-23 11:44:42.7));
        let (room, _mosaic, sim) =
            room_on_schedule(2, Some(monday_schedule()), clock.clone()).await;
        let edge = clock.instant_of(datetime!(2026-11-23 11:45));
        let _viewer = room.mosaic_viewer().await;
        let (mut rx, conn) = online(&room, 1, CAN_SHOW_BADGE).await;
        assert!(stream_order(&mut rx, Stream::Thumb).await.is_some());
        let mut focus = room.open_focus(1).await.unwrap();
        assert!(stream_order(&mut rx, Stream::Full).await.is_some());
        room.shown(
            1,
            conn,
            Shown {
                watched_indicator: true,
                ..CAN_SHOW_BADGE
            },
        )
        .await;
        assert!(leds(&sim, StatusLed::Watching).await);
        assert_eq!(
            room.view().borrow().monitoring_until.as_deref(),
            Some("2026-11-23 11:45")
        );

        // 5 s before the edge a teacher takes a screenshot; the station is slow to send its
        // keyframe (it never does here).
        tokio::time::sleep_until(edge - Duration::from_secs(5)).await;
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::screenshots::Settings {
            enabled: true,
            retention_days: 7,
            dir: dir.path().join("screenshots"),
        };
        let store = Store::in_memory().unwrap();
        let (r, s) = (room.clone(), store.clone());
        let shot =
            tokio::spawn(
                async move { crate::screenshots::take(&settings, &r, &s, 1, "prof").await },
            );
        settle().await;
        tokio::time::sleep_until(edge - Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(
            queued_stream_orders(&mut rx),
            [],
            "nothing stops before the edge"
        );
        assert!(sim.leds().status == StatusLed::Watching);

        let thumb_stop = stream_order(&mut rx, Stream::Thumb).await;
        let video_stopped = tokio::time::Instant::now() - edge;
        assert_eq!(thumb_stop, None);
        assert!(leds(&sim, StatusLed::Off).await);
        let led_off = tokio::time::Instant::now() - edge;
        assert!(
            tokio::time::Instant::now() >= edge,
            "stopped before the edge"
        );
        let full = queued_stream_orders(&mut rx);
        assert!(full.contains(&(Stream::Full, false)), "{full:?}");
        println!(
            "window end, controllable clock: video stopped {} ms and the LED went off {} ms after the edge",
            video_stopped.as_millis(),
            led_off.as_millis()
        );
        assert!(video_stopped < Duration::from_secs(1) && led_off < Duration::from_secs(1));

        focus.ended.changed().await.unwrap();
        assert_eq!(
            *focus.cut().borrow(),
            Some(Unwatchable::OutsideHours {
                next: Some("2026-11-23 13:15".into())
            })
        );
        let shot = shot.await.unwrap().expect_err("screenshot abandoned");
        assert!(
            shot.to_string().contains("outside the monitoring hours"),
            "{shot}"
        );
        assert_eq!(
            store
                .run(
                    |c| c.query_row("SELECT COUNT(*) FROM screenshots", [], |r| r
                        .get::<_, i64>(0))
                )
                .await
                .unwrap(),
            0,
            "nothing kept"
        );
        let view = room.view().borrow().clone();
        assert!(!view.monitoring && !view.watched && !tile(&room, 1).watched);
        assert_eq!(view.next_monitoring.as_deref(), Some("2026-11-23 13:15"));

        // The viewer still looks; the afternoon window opens on its own timer at 13:15.
        let opens = clock.instant_of(datetime!(2026-11-23 13:15));
        assert!(stream_order(&mut rx, Stream::Thumb).await.is_some());
        let late = tokio::time::Instant::now() - opens;
        assert!(
            late < Duration::from_secs(1),
            "thumbnails again {late:?} after 13:15"
        );
        assert!(leds(&sim, StatusLed::Watching).await);
        assert!(room.open_focus(1).await.is_ok());
    }

    /// A wall clock moved across a window's edges (set by hand, NTP step): the coarse
    /// re-check catches it within SCHEDULE_RECHECK, on every path at once (station video,
    /// status LED, focus view, what the tablet is told).
    #[tokio::test(start_paused = true)]
    async fn monitoring_follows_a_clock_set_across_window_edges() {
        let clock = TestClock::new(datetime!(2026-11-23 10:00));
        let (room, _mosaic, sim) =
            room_on_schedule(2, Some(monday_schedule()), clock.clone()).await;
        let _viewer = room.mosaic_viewer().await;
        let (mut rx, _) = online(&room, 1, CAN_SHOW_BADGE).await;
        assert!(stream_order(&mut rx, Stream::Thumb).await.is_some());
        assert!(leds(&sim, StatusLed::Watching).await);
        drop(
            room.open_focus(1)
                .await
                .expect("focus allowed inside a window"),
        );

        // The clock jumps to 12:00, lunch: a monitoring-free slot.
        clock.set(datetime!(2026-11-23 12:00));
        let jumped = tokio::time::Instant::now();
        assert_eq!(stream_order(&mut rx, Stream::Thumb).await, None);
        assert!(jumped.elapsed() <= SCHEDULE_RECHECK);
        assert!(leds(&sim, StatusLed::Off).await);
        let refused = room.open_focus(1).await.err().expect("focus refused");
        assert_eq!(
            refused,
            FocusError::OutsideMonitoring {
                why: Unwatchable::OutsideHours {
                    next: Some("2026-11-23 13:15".into())
                }
            }
        );
        assert!(
            refused.to_string().contains("2026-11-23 13:15"),
            "{refused}"
        );
        let view = room.view().borrow().clone();
        assert!(!view.monitoring && !view.watched && view.monitoring_configured);
        assert_eq!(view.next_monitoring.as_deref(), Some("2026-11-23 13:15"));

        // 13:20: the afternoon window is open again.
        clock.set(datetime!(2026-11-23 13:20));
        assert!(stream_order(&mut rx, Stream::Thumb).await.is_some());
        assert!(leds(&sim, StatusLed::Watching).await);
        assert!(room.open_focus(1).await.is_ok());
    }

    /// Fail closed: without a schedule nothing is ever watched, with a message saying why,
    /// while the other controls work.
    #[tokio::test(start_paused = true)]
    async fn without_a_schedule_no_screen_is_ever_watched() {
        let clock = TestClock::new(datetime!(2026-11-23 10:00));
        let (room, mosaic, sim) = room_on_schedule(2, None, clock).await;
        let _viewer = room.mosaic_viewer().await;
        let (mut rx, _) = online(&room, 1, CAN_SHOW_BADGE).await;
        tokio::time::sleep(SCHEDULE_RECHECK * 2).await;
        assert_eq!(queued_stream_orders(&mut rx), [], "no video asked");
        assert!(leds(&sim, StatusLed::Off).await);
        assert!(
            mosaic.is_active(),
            "the tablet still gets the class's (grey) mosaic"
        );
        let view = room.view().borrow().clone();
        assert!(!view.monitoring_configured && !view.monitoring && !view.watched);
        assert_eq!(view.next_monitoring, None);
        let refused = room.open_focus(1).await.err().expect("focus refused");
        assert_eq!(
            refused,
            FocusError::OutsideMonitoring {
                why: Unwatchable::NotConfigured
            }
        );
        assert!(refused.to_string().contains("[schedule]"), "{refused}");
        let demo = room
            .start_demo(
                DemoRequest {
                    source: DemoSource::Station { station_id: 1 },
                    targets: None,
                    mode: DemoMode::Windowed,
                    region: None,
                },
                "prof",
            )
            .await
            .expect_err("a demo of a student refused");
        assert!(demo.to_string().contains("not configured"), "{demo}");
        // The lock and other orders still reach the station.
        room.set_lock(Some(true), None, "prof").await.unwrap();
        room.order(
            None,
            Control::OpenUrl {
                url: "https://fr.wikipedia.org/".into(),
            },
        )
        .await
        .unwrap();
        let mut got = (false, false);
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            match msg {
                Control::Lock { .. } => got.0 = true,
                Control::OpenUrl { .. } => got.1 = true,
                Control::SetStream {
                    settings: Some(_), ..
                } => panic!("video asked"),
                _ => {}
            }
            if got == (true, true) {
                break;
            }
        }
        assert_eq!(got, (true, true));
    }

    /// Names and hands work at any hour (here: no schedule at all, nobody may be watched),
    /// hands keep the order they went up in, and both go with the station's link.
    #[tokio::test(start_paused = true)]
    async fn raised_hands_keep_their_order_and_names_last_the_session_at_any_hour() {
        let clock = TestClock::new(datetime!(2026-11-23 10:00));
        let (room, _mosaic, _sim) = room_on_schedule(3, None, clock).await;
        let (mut rx1, c1) = online(&room, 1, CAN_SHOW_BADGE).await;
        let (_rx2, c2) = online(&room, 2, CAN_SHOW_BADGE).await;
        let (_rx3, c3) = online(&room, 3, CAN_SHOW_BADGE).await;
        room.session_user(1, c1, Some("Élise Martin".into())).await;
        room.hand(2, c2, true).await;
        room.hand(1, c1, true).await;
        room.hand(3, c3, true).await;
        // Raised again while up: keeps its place.
        room.hand(2, c2, true).await;
        settle().await;
        assert_eq!(tile(&room, 1).user_name.as_deref(), Some("Élise Martin"));
        assert_eq!(tile(&room, 2).user_name, None);
        let ranks = || [1, 2, 3].map(|id| tile(&room, id).hand);
        assert_eq!(ranks(), [Some(2), Some(1), Some(3)]);
        // The student of poste-02 withdraws: the others move up.
        room.hand(2, c2, false).await;
        settle().await;
        assert_eq!(ranks(), [Some(1), None, Some(2)]);
        // A report from an old connection changes nothing.
        room.hand(2, c2 + 100, true).await;
        settle().await;
        assert_eq!(tile(&room, 2).hand, None);
        // The teacher clears poste-01's hand: the station is told.
        assert_eq!(room.clear_hand(1).await, Ok(true));
        assert_eq!(room.clear_hand(1).await, Ok(false), "already cleared");
        assert_eq!(room.clear_hand(9).await, Err(SendError::UnknownStation(9)));
        assert_eq!(ranks(), [None, None, Some(1)]);
        let mut told = false;
        while let Ok(c) = rx1.try_recv() {
            told |= c == Control::HandCleared;
        }
        assert!(told, "the station heard its hand was cleared");
        // Logging out removes the name; the station going offline removes everything.
        room.session_user(1, c1, None).await;
        room.offline(3, c3).await;
        settle().await;
        assert_eq!(tile(&room, 1).user_name, None);
        assert_eq!(tile(&room, 3).hand, None);
    }

    #[tokio::test]
    async fn a_removed_station_loses_its_link_and_its_tile_and_cannot_come_back() {
        let (room, _mosaic, _sim) = room_with(2).await;
        let (tx, _rx) = mpsc::channel(64);
        let reg = room.online(row(1), channels(tx)).await.unwrap();
        assert!(!reg.cut.is_cancelled());
        assert!(room.remove_station(1).await);
        assert!(reg.cut.is_cancelled(), "the live link is cut");
        let tiles: Vec<u32> = room
            .view()
            .borrow()
            .mosaic
            .tiles
            .iter()
            .map(|t| t.station_id)
            .collect();
        assert_eq!(tiles, vec![2]);
        let (tx, _rx) = mpsc::channel(64);
        assert_eq!(
            room.online(row(1), channels(tx)).await.err(),
            Some(OnlineError::Removed),
            "a link checked before the revocation is refused after it"
        );
        assert!(!room.remove_station(1).await, "already gone");
        assert!(!room.remove_station(9).await, "never known");
    }

    #[tokio::test]
    async fn a_second_link_with_the_same_certificate_replaces_the_first() {
        let (room, _mosaic, _sim) = room_with(1).await;
        let (tx1, _rx1) = mpsc::channel(64);
        let first = room.online(row(1), channels(tx1)).await.unwrap();
        let (tx2, _rx2) = mpsc::channel(64);
        let second = room.online(row(1), channels(tx2)).await.unwrap();
        assert!(first.cut.is_cancelled(), "the older link is closed");
        assert!(!second.cut.is_cancelled());
        assert!(second.replaced && !first.replaced);
        // The old link's late goodbye does not take the new one offline.
        room.offline(1, first.conn).await;
        assert!(room.view().borrow().mosaic.tiles[0].online);
    }

    #[tokio::test]
    async fn only_answers_to_outstanding_orders_are_taken() {
        let (room, _mosaic, _sim) = room_with(2).await;
        let (tx1, _rx1) = mpsc::channel(64);
        let one = room.online(row(1), channels(tx1)).await.unwrap();
        let (tx2, _rx2) = mpsc::channel(64);
        let two = room.online(row(2), channels(tx2)).await.unwrap();
        let answer = |id, conn, action: &str| {
            room.action_result(id, conn, action.to_string(), true, String::new())
        };
        assert!(
            !answer(1, one.conn, "open-url").await,
            "nothing was ordered yet"
        );
        let order = room
            .order(
                Some(vec![1]),
                Control::OpenUrl {
                    url: "https://example.org/".into(),
                },
            )
            .await
            .unwrap();
        assert!(
            !answer(2, two.conn, "open-url").await,
            "not sent to station 2"
        );
        assert!(
            !answer(1, one.conn, "shutdown").await,
            "not this kind of order"
        );
        assert!(
            !answer(1, one.conn + 100, "open-url").await,
            "not this link"
        );
        assert!(answer(1, one.conn, "open-url").await);
        assert!(!answer(1, one.conn, "open-url").await, "already answered");
        let run = room.order_run(order.id).await.unwrap().unwrap();
        assert_eq!(run.results.len(), 1);
        assert_eq!((run.results[0].done, run.results[0].ok), (true, Some(true)));

        // Forgotten orders are no longer outstanding either.
        room.order(
            Some(vec![2]),
            Control::OpenUrl {
                url: "https://example.org/".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(room.forget_orders(lanterne_wire::now_us() + 1).await, 2);
        assert!(room.order_run(order.id).await.unwrap().is_none());
        assert!(!answer(2, two.conn, "open-url").await);
    }
}
