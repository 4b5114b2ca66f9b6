//! The Lanterne station agent: runs on each student PC, enrols once with the classroom box,
//! then streams the screen to it over the mutually authenticated station link whenever the
//! box asks (thumbnails during monitoring, the full stream while the teacher has this station
//! open).
//!
//! On a PC the agent is two processes. The system service (`lanterne-station run`, root)
//! holds the identity and the [`link`] to the box, and does what needs the PC's authority:
//! power, log out, open a session, [`commands`] from the PC's own allow-list ([`config`]).
//! The session helper (`lanterne-station session`, started in each interactive session as
//! the student) does everything the student sees or uses: capture and encoding
//! ([`sources`]), the overlay ([`screen`]), the demo player, opening URLs ([`session`]).
//! [`session_link`] joins them over a local stream whose ends check each other's account:
//! the Unix socket `session_socket` on Linux, the named pipe `session_pipe` on Windows.
//!
//! What differs between Linux and Windows (capture and encoding, the overlay, system actions,
//! the session socket, file permissions) is in [`platform`]; everything else is shared.
//!
//! [`enrol`] makes the identity. [`spawn_station`] runs one whole station in this process
//! (link and session joined by channels instead of the socket); the `classroom` command runs
//! many that way for demos, tests and benchmarks.
#![forbid(unsafe_code)]

pub mod classroom;
pub mod commands;
pub mod config;
pub mod enrol;
pub mod identity;
pub mod link;
pub mod platform;
pub mod screen;
pub mod session;
pub mod session_link;
pub mod sources;
pub mod system;

#[cfg(unix)]
pub use platform::linux::session_socket;

use std::path::Path;
use std::sync::Arc;

use lanterne_media::replay::ReplayFile;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::commands::AllowList;
use crate::identity::Identity;
use crate::link::{Link, LinkStatus};
use crate::platform::{CaptureSource, CodecProbe};
use crate::screen::Screen;
use crate::session::{Session, SessionConn, UrlOpener, MEDIA_QUEUE};
use crate::sources::VideoSource;
use crate::system::SystemActions;

/// What a station shows.
pub enum SourceSpec {
    Live(CaptureSource),
    Replay(Arc<ReplayFile>),
    /// A replayed file whose streams start `delay` after they are switched on.
    ReplayDelayed {
        file: Arc<ReplayFile>,
        delay: std::time::Duration,
    },
    /// A replayed thumbnail stream plus a replayed full stream (for the focus view and as a
    /// demo source in benchmarks).
    ReplayWithFull {
        thumb: Arc<ReplayFile>,
        full: Arc<ReplayFile>,
    },
}

impl SourceSpec {
    /// Starts the source, its frames going to `out`.
    pub fn start(
        self,
        probe: &CodecProbe,
        out: mpsc::Sender<session::VideoFrame>,
    ) -> anyhow::Result<Arc<dyn VideoSource>> {
        Ok(match self {
            SourceSpec::Live(capture) => Arc::new(sources::LiveSource::start(capture, probe, out)?),
            SourceSpec::Replay(file) => Arc::new(sources::ReplaySource::new(file, out)),
            SourceSpec::ReplayDelayed { file, delay } => {
                Arc::new(sources::ReplaySource::new(file, out).with_delay(delay))
            }
            SourceSpec::ReplayWithFull { thumb, full } => {
                Arc::new(sources::ReplaySource::new(thumb, out).with_full(full))
            }
        })
    }
}

/// A running station: its link task, the task of its session when that runs in this
/// process, and the source it drives (kept alive with it).
pub struct RunningStation {
    pub name: String,
    pub station_id: u32,
    pub status: watch::Receiver<LinkStatus>,
    pub task: JoinHandle<()>,
    /// The in-process session (a finished task for a service whose sessions connect
    /// through the socket).
    pub session: JoinHandle<()>,
    pub source: Option<Arc<dyn VideoSource>>,
}

impl RunningStation {
    /// Stops the link, the session and the video source, and waits until they are gone
    /// (the capture pipeline is stopped when the last reference to the source is dropped).
    pub async fn shutdown(self) {
        let RunningStation {
            task,
            session,
            source,
            ..
        } = self;
        task.abort();
        let _ = task.await;
        session.abort();
        let _ = session.await;
        drop(source);
    }
}

/// Starts one enrolled station from its identity directory, with its session in this
/// process. It runs no command the box orders: see [`spawn_station_allowing`].
pub fn spawn_station<S>(
    dir: &Path,
    spec: SourceSpec,
    screen: Arc<dyn Screen>,
    system: Arc<S>,
    probe: &CodecProbe,
    hostname: String,
) -> anyhow::Result<RunningStation>
where
    S: SystemActions + UrlOpener + 'static,
{
    let none = Arc::new(AllowList::default());
    spawn_station_allowing(dir, spec, screen, system, probe, hostname, none)
}

/// [`spawn_station`], running the commands of `commands` when the box orders them.
pub fn spawn_station_allowing<S>(
    dir: &Path,
    spec: SourceSpec,
    screen: Arc<dyn Screen>,
    system: Arc<S>,
    probe: &CodecProbe,
    hostname: String,
    commands: Arc<AllowList>,
) -> anyhow::Result<RunningStation>
where
    S: SystemActions + UrlOpener + 'static,
{
    let identity = Arc::new(Identity::load(dir)?);
    let (tx, rx) = mpsc::channel(MEDIA_QUEUE);
    let source = spec.start(probe, tx)?;
    let mut session = Session::new(source.clone(), screen, system.clone(), *probe);
    let (conn, end) = session::pair("in-process".into(), None, session.capabilities(), rx);
    let (sessions_tx, sessions) = mpsc::channel(1);
    sessions_tx
        .try_send(conn)
        .expect("an empty channel takes one");
    // No other session ever comes: the link stops listening once this one is taken.
    drop(sessions_tx);
    let mut running = spawn_service(identity, system, sessions, hostname, commands);
    running.session = tokio::spawn(async move { session.serve(end).await });
    running.source = Some(source);
    Ok(running)
}

/// Starts the link of a station whose sessions arrive on `sessions` (the system service:
/// they connect through [`session_socket`]).
pub fn spawn_service(
    identity: Arc<Identity>,
    system: Arc<dyn SystemActions>,
    sessions: mpsc::Receiver<SessionConn>,
    hostname: String,
    commands: Arc<AllowList>,
) -> RunningStation {
    let (link, status) = Link::new(identity.clone(), system, sessions, hostname);
    let link = link.with_allowed_commands(commands);
    RunningStation {
        name: identity.enrolment.name.clone(),
        station_id: identity.enrolment.station_id,
        status,
        task: tokio::spawn(link.run()),
        session: tokio::spawn(async {}),
        source: None,
    }
}

/// The MAC address of the first real network interface, for Wake-on-LAN.
pub fn primary_mac() -> Option<String> {
    platform::primary_mac()
}

/// Distinct colours for simulated stations, far apart so a pixel check can tell them apart
/// through H.264 and scaling (and none is the dark grey of an offline tile).
pub const PALETTE: [[u8; 3]; 16] = [
    [200, 40, 40],
    [40, 160, 60],
    [40, 70, 200],
    [220, 190, 30],
    [160, 50, 180],
    [30, 180, 190],
    [240, 120, 20],
    [240, 110, 180],
    [120, 70, 20],
    [150, 210, 60],
    [20, 30, 110],
    [0, 110, 90],
    [250, 250, 250],
    [110, 0, 40],
    [130, 150, 250],
    [250, 200, 150],
];
