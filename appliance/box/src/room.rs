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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
use crate::store::{self, StationRow, Store};

/// A station's full-size frame as forwarded to focus viewers (never re-encoded).
pub type FullFrame = Arc<EncodedFrame>;

/// What a tablet needs to draw the room.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoomView {
    pub name: String,
    /// The whole room is locked (persisted); each tile says what its station shows.
    pub locked: bool,
    /// Some screen is being watched right now (what the status LED shows).
    pub watched: bool,
    /// Inside a monitoring window (always true for a room without a schedule).
    pub monitoring: bool,
    /// When monitoring is next allowed, box local time ("2026-11-23 09:15"), while outside.
    pub next_monitoring: Option<String>,
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
    #[error("a student's screen may not be shown now (outside the monitoring hours){}", next.as_ref().map(|n| format!("; next monitoring window: {n}")).unwrap_or_default())]
    OutsideMonitoring { next: Option<String> },
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
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Why a focus view could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FocusError {
    #[error("no such station")]
    Unknown,
    #[error("the station is offline")]
    Offline,
    #[error("screens may not be watched now (outside the monitoring hours){}", next.as_ref().map(|n| format!("; next monitoring window: {n}")).unwrap_or_default())]
    OutsideMonitoring { next: Option<String> },
}

/// An open focus view. Dropping it tells the room, which stops the station's full stream
/// when the last viewer leaves.
pub struct FocusSubscription {
    pub frames: broadcast::Receiver<FullFrame>,
    /// Flips to true when the station goes offline or is replaced by a new connection.
    pub ended: watch::Receiver<bool>,
    pub station_name: String,
    station_id: u32,
    conn: u64,
    room: mpsc::Sender<Cmd>,
}

impl FocusSubscription {
    /// Asks the station for a keyframe (after this viewer dropped frames).
    pub fn request_keyframe(&self) {
        let _ = self.room.try_send(Cmd::Keyframe {
            station_id: self.station_id,
            conn: self.conn,
        });
    }
}

impl Drop for FocusSubscription {
    fn drop(&mut self) {
        // try_send: Drop cannot await. If the room's queue is full the count is repaired when
        // the station next disconnects, which also ends its full stream.
        let _ = self.room.try_send(Cmd::CloseFocus {
            station_id: self.station_id,
            conn: self.conn,
        });
    }
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
    CloseFocus {
        station_id: u32,
        conn: u64,
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
    focus_viewers: usize,
    thumb_on: bool,
    shown: Shown,
    /// Messages and command runs this connection got and has not answered yet (a station
    /// that reconnects starts afresh: its agent may have restarted without them).
    unread: BTreeSet<u64>,
    running: BTreeSet<u64>,
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

struct Room {
    name: String,
    schedule: Option<Schedule>,
    schedule_json: Option<String>,
    clock: Arc<dyn Clock + Send + Sync>,
    monitoring: bool,
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
    /// Recent power and open-URL orders, oldest first.
    orders: std::collections::VecDeque<OrderRun>,
    next_order: u64,
    view: watch::Sender<RoomView>,
    tx: mpsc::Sender<Cmd>,
    demo: Option<Demo>,
    last_demo_end: Option<DemoEnd>,
    hdmi: Option<(crate::config::Hdmi, lanterne_media::CodecProbe)>,
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
    /// None: monitoring allowed at any time.
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
        .is_none_or(|s| s.is_monitoring_at(clock.now()));
    let mut room = Room {
        name,
        schedule,
        schedule_json,
        clock,
        monitoring,
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
        orders: std::collections::VecDeque::new(),
        next_order: 1,
        view: view_tx,
        tx: tx.clone(),
        demo: None,
        last_demo_end: None,
        hdmi,
    };
    room.relayout();
    tokio::spawn(room.run(rx));
    Ok(RoomHandle { tx, view: view_rx })
}

/// Station ids stored as "3,7,12"; anything unreadable is dropped (the table is ours).
fn parse_ids(text: &str) -> BTreeSet<u32> {
    text.split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

impl Room {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        // Monitoring windows start and end on the minute; checking every few seconds keeps
        // the edges sharp without a timer per window.
        let mut schedule_tick = tokio::time::interval(std::time::Duration::from_secs(5));
        // While a demo runs, its receivers' health changes every second; tablets see it at
        // that pace rather than at every station's report.
        let mut demo_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let cmd = tokio::select! {
                cmd = rx.recv() => match cmd { Some(c) => c, None => return },
                _ = schedule_tick.tick() => {
                    self.check_schedule().await;
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
                    let thumbnail = self.thumbnail_settings();
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
                    // Monitoring is on whenever the room is (issue 5 adds the schedule):
                    // ask for thumbnails right away.
                    // The station checks the hours itself too, and shows them to the student.
                    if let Some(json) = &self.schedule_json {
                        let _ = control.try_send(Control::Schedule {
                            config_json: json.clone(),
                        });
                    }
                    if self.monitoring {
                        let _ = control.try_send(Control::SetStream {
                            stream: Stream::Thumb,
                            settings: Some(thumbnail),
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
                        focus_viewers: 0,
                        thumb_on: self.monitoring,
                        shown: Shown::default(),
                        unread: BTreeSet::new(),
                        running: BTreeSet::new(),
                    });
                    let _ = reply.send(Ok(Registered {
                        conn,
                        full_tx,
                        cut,
                        replaced,
                    }));
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
                    if let Some(link) = self.link_mut(station_id, conn) {
                        if link.shown != shown {
                            link.shown = shown;
                            self.publish();
                        }
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
                Cmd::CloseFocus { station_id, conn } => {
                    self.release_full(station_id, conn);
                }
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

    /// One viewer (a focus view or the demo) no longer needs this station's full stream;
    /// the last one stops it.
    fn release_full(&mut self, station_id: u32, conn: u64) {
        if let Some(link) = self.link_mut(station_id, conn) {
            link.focus_viewers = link.focus_viewers.saturating_sub(1);
            if link.focus_viewers == 0 {
                let _ = link.control.try_send(Control::SetStream {
                    stream: Stream::Full,
                    settings: None,
                });
            }
            self.publish();
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
                if !self.monitoring {
                    return Err(DemoError::OutsideMonitoring {
                        next: self.next_monitoring(),
                    });
                }
                let src = self
                    .stations
                    .get(&station_id)
                    .ok_or(DemoError::UnknownStation(station_id))?;
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
                let focus = self.plan.focus;
                let link = self
                    .stations
                    .get_mut(&id)
                    .and_then(|s| s.link.as_mut())
                    .expect("checked online");
                link.focus_viewers += 1;
                if link.focus_viewers == 1 {
                    let _ = link.control.try_send(Control::SetStream {
                        stream: Stream::Full,
                        settings: Some(focus),
                    });
                }
                let control = link.control.clone();
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
            self.release_full(source, conn);
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
        Some(format!(
            "{} {:02}:{:02}",
            next.date(),
            next.hour(),
            next.minute()
        ))
    }

    /// Starts or stops every station's thumbnails at the edges of the monitoring windows,
    /// and ends focus views when a window closes. Stations stop sending; the box stops
    /// showing (tiles go grey instead of freezing on the last picture).
    async fn check_schedule(&mut self) {
        let now = self
            .schedule
            .as_ref()
            .is_none_or(|s| s.is_monitoring_at(self.clock.now()));
        if now == self.monitoring {
            return;
        }
        self.monitoring = now;
        tracing::info!(
            monitoring = now,
            "monitoring window {}",
            if now { "opens" } else { "closes" }
        );
        let thumbnail = self.thumbnail_settings();
        for st in self.stations.values_mut() {
            if let Some(link) = st.link.as_mut() {
                link.thumb_on = now;
                let _ = link.control.try_send(Control::SetStream {
                    stream: Stream::Thumb,
                    settings: now.then_some(thumbnail),
                });
            }
            self.mosaic.set_online(st.row.id, now && st.link.is_some());
        }
        // Showing the teacher's own PC watches nobody: only a student's screen stops.
        if !now
            && self
                .demo
                .as_ref()
                .is_some_and(|d| d.source_station().is_some())
        {
            self.end_demo("outside-monitoring-hours", "schedule").await;
        }
        // Publish first, so focus viewers ended below see why.
        self.publish();
        if !now {
            for link in self.stations.values().filter_map(|s| s.link.as_ref()) {
                if link.focus_viewers > 0 {
                    let _ = link.control.try_send(Control::SetStream {
                        stream: Stream::Full,
                        settings: None,
                    });
                    let _ = link.ended.send(true);
                }
            }
        }
    }

    fn open_focus(&mut self, station_id: u32) -> Result<FocusSubscription, FocusError> {
        if !self.monitoring {
            return Err(FocusError::OutsideMonitoring {
                next: self.next_monitoring(),
            });
        }
        let tx = self.tx.clone();
        let focus = self.plan.focus;
        let st = self
            .stations
            .get_mut(&station_id)
            .ok_or(FocusError::Unknown)?;
        let link = st.link.as_mut().ok_or(FocusError::Offline)?;
        link.focus_viewers += 1;
        if link.focus_viewers == 1 {
            let _ = link.control.try_send(Control::SetStream {
                stream: Stream::Full,
                settings: Some(focus),
            });
        }
        // A new viewer needs an IDR to start decoding.
        let _ = link.control.try_send(Control::RequestKeyframe {
            stream: Stream::Full,
        });
        Ok(FocusSubscription {
            frames: link.full_tx.subscribe(),
            ended: link.ended.subscribe(),
            station_name: st.row.name.clone(),
            station_id,
            conn: link.conn,
            room: tx,
        })
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
    /// a station is watched while it sends thumbnails or someone has it open.
    fn watched(&self) -> bool {
        self.stations
            .values()
            .filter_map(|s| s.link.as_ref())
            .any(|l| l.thumb_on || l.focus_viewers > 0)
    }

    /// Recomputes the mosaic grid, then publishes.
    fn relayout(&mut self) {
        let ids: Vec<u32> = self.stations.values().map(|s| s.row.id).collect();
        self.mosaic
            .set_tiles(ids.iter().map(|&id| TileInfo { id }).collect());
        for st in self.stations.values() {
            self.mosaic
                .set_online(st.row.id, self.monitoring && st.link.is_some());
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
            status: if watched {
                StatusLed::Watching
            } else {
                StatusLed::Off
            },
        });
        let layout = self.mosaic.layout();
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
                    locked: st.link.as_ref().is_some_and(|l| l.shown.locked),
                    lock_ordered: self.lock_wanted(t.id),
                    unread_messages: st.link.as_ref().map_or(0, |l| l.unread.len() as u32),
                    commands_running: st.link.as_ref().map_or(0, |l| l.running.len() as u32),
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
        let view = RoomView {
            name: self.name.clone(),
            locked: self.locked,
            watched,
            monitoring: self.monitoring,
            next_monitoring,
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

    fn row(id: u32) -> StationRow {
        StationRow {
            id,
            name: format!("poste-{id:02}"),
            hostname: format!("poste-{id:02}"),
            mac: None,
            cert_fingerprint: format!("fp{id}"),
        }
    }

    async fn room_with(n: u32) -> (RoomHandle, Arc<Mosaic>, lanterne_panel::SimulatedPanel) {
        let clock = Arc::new(lanterne_privacy::policy::SystemClock::new());
        room_on_schedule(n, None, clock).await
    }

    async fn room_on_schedule(
        n: u32,
        schedule: Option<Schedule>,
        clock: Arc<dyn Clock + Send + Sync>,
    ) -> (RoomHandle, Arc<Mosaic>, lanterne_panel::SimulatedPanel) {
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

    async fn thumb_order(rx: &mut mpsc::Receiver<Control>) -> StreamSettings {
        loop {
            match rx.recv().await.expect("control open") {
                Control::SetStream {
                    stream: Stream::Thumb,
                    settings: Some(s),
                } => return s,
                _ => continue,
            }
        }
    }

    #[tokio::test]
    async fn thumbnails_are_asked_no_larger_than_a_tile() {
        let (room, mosaic, _sim) = room_with(32).await;
        let (tx, mut rx) = mpsc::channel(64);
        room.online(row(1), channels(tx)).await.unwrap();
        let s = thumb_order(&mut rx).await;
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
        let (tx, mut rx) = mpsc::channel(64);
        room.online(row(1), channels(tx)).await.unwrap();
        let s = thumb_order(&mut rx).await;
        assert_eq!((s.width, s.height), (480, 270));
    }

    async fn leds(sim: &lanterne_panel::SimulatedPanel, status: StatusLed) -> bool {
        let want = LedState {
            lock: false,
            status,
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), sim.wait_for_leds(want))
            .await
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn the_status_led_is_lit_while_a_station_streams_and_off_after() {
        let (room, _mosaic, sim) = room_with(2).await;
        assert!(leds(&sim, StatusLed::Off).await);
        let (tx, _rx) = mpsc::channel(64);
        let reg = room.online(row(1), channels(tx)).await.unwrap();
        assert!(leds(&sim, StatusLed::Watching).await);
        room.offline(1, reg.conn).await;
        assert!(leds(&sim, StatusLed::Off).await);
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

    /// The next thumbnail order (Some: start, None: stop), skipping other control messages.
    async fn thumb_switch(rx: &mut mpsc::Receiver<Control>) -> Option<StreamSettings> {
        let wait = std::time::Duration::from_secs(10);
        loop {
            let msg = tokio::time::timeout(wait, rx.recv())
                .await
                .expect("a thumbnail order within the schedule check period")
                .expect("control open");
            if let Control::SetStream {
                stream: Stream::Thumb,
                settings,
            } = msg
            {
                return settings;
            }
        }
    }

    /// Monitoring hours (P3) with a controllable clock: the room follows the schedule as the
    /// clock crosses the edges of a window, on every path at once (station video, status
    /// LED, focus view, what the tablet is told).
    #[tokio::test]
    async fn monitoring_follows_the_schedule_as_a_manual_clock_crosses_window_edges() {
        use time::macros::datetime;
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
        let schedule = config.validate().unwrap();
        // Monday 23 November 2026, 10:00: inside the morning window.
        let clock = Arc::new(lanterne_privacy::policy::ManualClock::new(datetime!(
            2026-11-23 10:00
        )));
        let (room, _mosaic, sim) = room_on_schedule(2, Some(schedule), clock.clone()).await;
        let (tx, mut rx) = mpsc::channel(64);
        room.online(row(1), channels(tx)).await.unwrap();
        assert!(thumb_switch(&mut rx).await.is_some(), "thumbnails asked");
        assert!(leds(&sim, StatusLed::Watching).await);
        let focus = room
            .open_focus(1)
            .await
            .expect("focus allowed inside a window");
        drop(focus);
        assert!(room.view().borrow().monitoring);

        // 12:00, lunch: a monitoring-free slot.
        clock.set(datetime!(2026-11-23 12:00));
        assert_eq!(thumb_switch(&mut rx).await, None, "thumbnails stopped");
        assert!(leds(&sim, StatusLed::Off).await);
        let refused = room.open_focus(1).await.err().expect("focus refused");
        assert_eq!(
            refused,
            FocusError::OutsideMonitoring {
                next: Some("2026-11-23 13:15".into())
            }
        );
        assert!(
            refused.to_string().contains("2026-11-23 13:15"),
            "{refused}"
        );
        let view = room.view().borrow().clone();
        assert!(!view.monitoring && !view.watched);
        assert_eq!(view.next_monitoring.as_deref(), Some("2026-11-23 13:15"));

        // 13:20: the afternoon window is open again.
        clock.set(datetime!(2026-11-23 13:20));
        assert!(
            thumb_switch(&mut rx).await.is_some(),
            "thumbnails asked again"
        );
        assert!(leds(&sim, StatusLed::Watching).await);
        assert!(room.open_focus(1).await.is_ok());
    }
}
