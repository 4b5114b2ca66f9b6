//! The room: which stations exist, which are online, who is watching what.
//!
//! One task owns this state; station links and web handlers talk to it through
//! [`RoomHandle`]. Media does not pass through it: a station link pushes thumbnails straight
//! into the mosaic and full frames into its own broadcast channel, so the room task only
//! handles the slow events (connect, disconnect, open/close a focus view).
//!
//! The room publishes a [`RoomView`] on a watch channel; the web side sends it to tablets
//! whenever it changes (a station comes online, a new one is enrolled).

use std::collections::BTreeMap;
use std::sync::Arc;

use lanterne_media::{EncodedFrame, Mosaic, TileInfo};
use lanterne_wire::{Control, Stream, StreamSettings};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::store::StationRow;

/// A station's full-size frame as forwarded to focus viewers (never re-encoded).
pub type FullFrame = Arc<EncodedFrame>;

/// What a tablet needs to draw the room.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoomView {
    pub name: String,
    pub mosaic: MosaicView,
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
}

enum Cmd {
    Online {
        station: StationRow,
        control: mpsc::Sender<Control>,
        reply: oneshot::Sender<Registered>,
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
}

#[derive(Clone)]
pub struct RoomHandle {
    tx: mpsc::Sender<Cmd>,
    view: watch::Receiver<RoomView>,
}

impl RoomHandle {
    pub async fn online(
        &self,
        station: StationRow,
        control: mpsc::Sender<Control>,
    ) -> Option<Registered> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Online {
                station,
                control,
                reply,
            })
            .await
            .ok()?;
        rx.await.ok()
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
}

struct StationState {
    row: StationRow,
    link: Option<Link>,
}

struct Link {
    conn: u64,
    control: mpsc::Sender<Control>,
    full_tx: broadcast::Sender<FullFrame>,
    ended: watch::Sender<bool>,
    focus_viewers: usize,
}

/// Settings the room hands to stations.
#[derive(Clone, Copy, Debug)]
pub struct StreamPlan {
    pub thumbnail: StreamSettings,
    pub focus: StreamSettings,
}

struct Room {
    name: String,
    stations: BTreeMap<u32, StationState>,
    mosaic: Arc<Mosaic>,
    plan: StreamPlan,
    next_conn: u64,
    view: watch::Sender<RoomView>,
    tx: mpsc::Sender<Cmd>,
}

/// Starts the room task with the enrolled stations.
pub fn spawn(
    name: String,
    stations: Vec<StationRow>,
    mosaic: Arc<Mosaic>,
    plan: StreamPlan,
) -> RoomHandle {
    let (tx, rx) = mpsc::channel(256);
    let (view_tx, view_rx) = watch::channel(RoomView::default());
    let mut room = Room {
        name,
        stations: stations
            .into_iter()
            .map(|row| (row.id, StationState { row, link: None }))
            .collect(),
        mosaic,
        plan,
        next_conn: 1,
        view: view_tx,
        tx: tx.clone(),
    };
    room.relayout();
    tokio::spawn(room.run(rx));
    RoomHandle { tx, view: view_rx }
}

impl Room {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Cmd::Online {
                    station,
                    control,
                    reply,
                } => {
                    let conn = self.next_conn;
                    self.next_conn += 1;
                    let (full_tx, _) = broadcast::channel(64);
                    let id = station.id;
                    let entry = self.stations.entry(id).or_insert(StationState {
                        row: station.clone(),
                        link: None,
                    });
                    entry.row = station;
                    if let Some(old) = entry.link.take() {
                        // A station that reconnects before its old link timed out: the old
                        // connection is dead to us; its viewers must reopen.
                        let _ = old.ended.send(true);
                    }
                    let (ended, _) = watch::channel(false);
                    // Monitoring is on whenever the room is (issue 5 adds the schedule):
                    // ask for thumbnails right away.
                    let _ = control.try_send(Control::SetStream {
                        stream: Stream::Thumb,
                        settings: Some(self.plan.thumbnail),
                    });
                    entry.link = Some(Link {
                        conn,
                        control,
                        full_tx: full_tx.clone(),
                        ended,
                        focus_viewers: 0,
                    });
                    let _ = reply.send(Registered { conn, full_tx });
                    self.relayout();
                }
                Cmd::Offline { station_id, conn } => {
                    if let Some(st) = self.stations.get_mut(&station_id) {
                        if st.link.as_ref().is_some_and(|l| l.conn == conn) {
                            let link = st.link.take().expect("checked");
                            let _ = link.ended.send(true);
                            self.relayout();
                        }
                    }
                }
                Cmd::Enrolled { station } => {
                    self.stations.entry(station.id).or_insert(StationState {
                        row: station,
                        link: None,
                    });
                    self.relayout();
                }
                Cmd::OpenFocus { station_id, reply } => {
                    let _ = reply.send(self.open_focus(station_id));
                }
                Cmd::CloseFocus { station_id, conn } => {
                    if let Some(link) = self.link_mut(station_id, conn) {
                        link.focus_viewers = link.focus_viewers.saturating_sub(1);
                        if link.focus_viewers == 0 {
                            let _ = link.control.try_send(Control::SetStream {
                                stream: Stream::Full,
                                settings: None,
                            });
                        }
                    }
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

    fn link_mut(&mut self, station_id: u32, conn: u64) -> Option<&mut Link> {
        self.stations
            .get_mut(&station_id)?
            .link
            .as_mut()
            .filter(|l| l.conn == conn)
    }

    fn open_focus(&mut self, station_id: u32) -> Result<FocusSubscription, FocusError> {
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

    /// Recomputes the mosaic grid and publishes the view.
    fn relayout(&mut self) {
        let ids: Vec<u32> = self.stations.values().map(|s| s.row.id).collect();
        self.mosaic
            .set_tiles(ids.iter().map(|&id| TileInfo { id }).collect());
        for st in self.stations.values() {
            self.mosaic.set_online(st.row.id, st.link.is_some());
        }
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
                    x: t.x,
                    y: t.y,
                    w: t.w,
                    h: t.h,
                })
            })
            .collect();
        self.view.send_replace(RoomView {
            name: self.name.clone(),
            mosaic: MosaicView {
                width: layout.width,
                height: layout.height,
                tiles,
            },
        });
    }
}
