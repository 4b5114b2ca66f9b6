//! The Lanterne station agent: runs on each student PC, enrols once with the classroom box,
//! then streams the screen to it over the mutually authenticated station link whenever the
//! box asks (thumbnails during monitoring, the full stream while the teacher has this station
//! open).
//!
//! [`enrol`] makes the identity, [`link`] speaks the protocol, [`sources`] adapts the live
//! encoder or a replay file to the link. [`spawn_station`] glues one station together;
//! the `classroom` command runs many in one process for demos, tests and benchmarks.
#![forbid(unsafe_code)]

pub mod classroom;
pub mod commands;
pub mod config;
pub mod enrol;
pub mod identity;
pub mod link;
pub mod screen;
pub mod sources;
pub mod system;

use std::path::Path;
use std::sync::Arc;

use lanterne_media::replay::ReplayFile;
use lanterne_media::{CaptureSource, CodecProbe};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::commands::AllowList;
use crate::identity::Identity;
use crate::link::{Link, LinkStatus, VideoSource};
use crate::screen::Screen;
use crate::system::SystemActions;

/// What a station shows.
pub enum SourceSpec {
    Live(CaptureSource),
    Replay(Arc<ReplayFile>),
    /// A replayed thumbnail stream plus a replayed full stream (for the focus view and as a
    /// demo source in benchmarks).
    ReplayWithFull {
        thumb: Arc<ReplayFile>,
        full: Arc<ReplayFile>,
    },
}

/// A running station: its link task and the source it drives (kept alive with it).
pub struct RunningStation {
    pub name: String,
    pub station_id: u32,
    pub status: watch::Receiver<LinkStatus>,
    pub task: JoinHandle<()>,
    pub source: Arc<dyn VideoSource>,
}

impl RunningStation {
    /// Stops the link and the video source, and waits until both are gone (the capture
    /// pipeline is stopped when the last reference to the source is dropped).
    pub async fn shutdown(self) {
        let RunningStation { task, source, .. } = self;
        task.abort();
        let _ = task.await;
        drop(source);
    }
}

/// Frames waiting between the encoder and the link. Short on purpose: a late frame is worth
/// less than the next one, and a long queue would be latency.
const MEDIA_QUEUE: usize = 8;

/// Starts one enrolled station from its identity directory. It runs no command the box
/// orders: see [`spawn_station_allowing`].
pub fn spawn_station(
    dir: &Path,
    spec: SourceSpec,
    screen: Arc<dyn Screen>,
    system: Arc<dyn SystemActions>,
    probe: &CodecProbe,
    hostname: String,
) -> anyhow::Result<RunningStation> {
    let none = Arc::new(AllowList::default());
    spawn_station_allowing(dir, spec, screen, system, probe, hostname, none)
}

/// [`spawn_station`], running the commands of `commands` when the box orders them.
pub fn spawn_station_allowing(
    dir: &Path,
    spec: SourceSpec,
    screen: Arc<dyn Screen>,
    system: Arc<dyn SystemActions>,
    probe: &CodecProbe,
    hostname: String,
    commands: Arc<AllowList>,
) -> anyhow::Result<RunningStation> {
    let identity = Arc::new(Identity::load(dir)?);
    let (tx, rx) = mpsc::channel(MEDIA_QUEUE);
    let source: Arc<dyn VideoSource> = match spec {
        SourceSpec::Live(capture) => Arc::new(sources::LiveSource::start(capture, probe, tx)?),
        SourceSpec::Replay(file) => Arc::new(sources::ReplaySource::new(file, tx)),
        SourceSpec::ReplayWithFull { thumb, full } => {
            Arc::new(sources::ReplaySource::new(thumb, tx).with_full(full))
        }
    };
    let (link, status) = Link::new(
        identity.clone(),
        source.clone(),
        screen,
        system,
        rx,
        hostname,
        *probe,
    );
    let link = link.with_allowed_commands(commands);
    Ok(RunningStation {
        name: identity.enrolment.name.clone(),
        station_id: identity.enrolment.station_id,
        status,
        task: tokio::spawn(link.run()),
        source,
    })
}

/// The MAC address of the first real network interface, for Wake-on-LAN.
pub fn primary_mac() -> Option<String> {
    let mut entries: Vec<_> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().find_map(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        if name == "lo" || !e.path().join("device").exists() {
            return None;
        }
        let mac = std::fs::read_to_string(e.path().join("address")).ok()?;
        let mac = mac.trim().to_string();
        (mac.len() == 17 && mac != "00:00:00:00:00:00").then_some(mac)
    })
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
