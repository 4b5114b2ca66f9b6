//! Fan-out: one demo source relayed to many stations, access units forwarded untouched.
//!
//! ```text
//! source stream ─▶ broadcast ─▶ relay task ─┬─▶ queue (DEMO_QUEUE) ─▶ link writer ─▶ poste-02
//!                                           ├─▶ queue (DEMO_QUEUE) ─▶ link writer ─▶ poste-03
//!                                           └─▶ …
//! ```
//!
//! The relay task owns the receivers. It hands each access unit (an `Arc`, never a copy) to
//! every receiver's bounded queue with `try_send`, so it never waits for anyone: a receiver
//! whose queue is full loses that frame and every following one until the next keyframe (a
//! decoder cannot use P-frames whose references it missed), and the source is asked for a
//! keyframe. Keyframe requests are rate-limited across receivers because they all share one
//! encoder: ten stalled receivers must not turn the source into an all-IDR stream. Drops are
//! counted per receiver and logged as one aggregated line every [`WARN_EVERY`].
//!
//! A receiver that joins (a station that comes back mid-demo) starts in the "waiting for a
//! keyframe" state and the join itself requests one, so it starts decoding within one
//! keyframe round trip instead of waiting for the encoder's periodic IDR. Stations encode
//! with `h264parse config-interval=-1`, so every IDR carries its SPS/PPS and a joiner needs
//! nothing else.
//!
//! The relay knows nothing about stations' sockets or the room: a benchmark drives it with a
//! broadcast sender and plain channel receivers.

use std::collections::BTreeMap;

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, warn};

use crate::room::FullFrame;

/// Frames a receiver may have waiting: half a second at 30 fps. More would be latency the
/// student sees; less would drop on every scheduling hiccup.
pub const DEMO_QUEUE: usize = 16;
/// Least time between two keyframe requests made because receivers fell behind. A receiver
/// that stays stalled asks again at every keyframe it misses; this gap caps what it can cost
/// the others (one IDR a second instead of an all-IDR stream).
pub const KEYFRAME_REQUEST_GAP: Duration = Duration::from_secs(1);
/// A request not answered by a keyframe within this time is considered lost: a joiner may
/// ask again.
pub const KEYFRAME_ANSWER_WITHIN: Duration = Duration::from_millis(300);
/// How often the drop counters are summed up in one log line (when anything dropped).
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// How often [`Relay::stats`] is refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// Where a demo comes from. The relay only needs a [`SourceFeed`]; each source says how to
/// make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DemoSource {
    /// A station's full stream (a student's screen, or the teacher's PC running the agent).
    Station { station_id: u32 },
    /// The teacher's PC through the box's HDMI input (`crate::hdmi`).
    Hdmi,
}

/// A running source as the relay sees it: its access units, and a way to ask for an IDR.
pub struct SourceFeed {
    pub frames: broadcast::Receiver<FullFrame>,
    pub request_keyframe: Box<dyn Fn() + Send + Sync>,
}

/// One receiver's queue and its resync state, as kept by the relay task.
#[derive(Debug)]
pub struct ReceiverQueue {
    tx: mpsc::Sender<FullFrame>,
    waiting_for_key: bool,
    delivered: u64,
    dropped: u64,
    /// Dropped since the last aggregated warning.
    dropped_unlogged: u64,
}

/// What became of one frame offered to a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Not queued; `need_keyframe` when the receiver just lost its place (queue full) and
    /// the source should send an IDR.
    Dropped {
        need_keyframe: bool,
    },
    /// The receiver's side is gone (its station disconnected): remove it.
    Closed,
}

impl ReceiverQueue {
    /// A new receiver waits for a keyframe: it cannot decode anything before one.
    pub fn new(tx: mpsc::Sender<FullFrame>) -> Self {
        ReceiverQueue {
            tx,
            waiting_for_key: true,
            delivered: 0,
            dropped: 0,
            dropped_unlogged: 0,
        }
    }

    pub fn offer(&mut self, frame: &FullFrame) -> Offer {
        if self.waiting_for_key && !frame.keyframe {
            // Skipping up to the first keyframe is how a receiver joins, not a loss.
            if self.delivered > 0 {
                self.count_drop();
            }
            return Offer::Dropped {
                need_keyframe: false,
            };
        }
        match self.tx.try_send(frame.clone()) {
            Ok(()) => {
                self.waiting_for_key = false;
                self.delivered += 1;
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.count_drop();
                self.waiting_for_key = true;
                Offer::Dropped {
                    need_keyframe: true,
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }

    /// Frames were lost before reaching this receiver (the relay itself lagged).
    pub fn resync(&mut self) {
        self.waiting_for_key = true;
    }

    fn count_drop(&mut self) {
        self.dropped += 1;
        self.dropped_unlogged += 1;
    }

    pub fn stats(&self) -> ReceiverStats {
        ReceiverStats {
            delivered: self.delivered,
            dropped: self.dropped,
            waiting_for_key: self.waiting_for_key,
        }
    }
}

/// One receiver's counters, as the relay saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReceiverStats {
    /// Frames put in the receiver's queue.
    pub delivered: u64,
    /// Frames not put there (queue full, or waiting for a keyframe after that); the frames
    /// skipped before the first keyframe of a joiner are not counted.
    pub dropped: u64,
    pub waiting_for_key: bool,
}

/// The relay's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// Frames received from the source.
    pub frames_in: u64,
    pub keyframe_requests: u64,
    /// Per station id.
    pub receivers: BTreeMap<u32, ReceiverStats>,
}

/// Why a keyframe is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeNeed {
    /// A receiver joined: it shows nothing until the keyframe, so it is served at once
    /// unless a request is already on its way.
    Join,
    /// A receiver fell behind: at most one such request per [`KEYFRAME_REQUEST_GAP`].
    Behind,
}

/// Decides which keyframe requests reach the source.
#[derive(Debug, Default)]
pub struct KeyframeLimiter {
    last_request: Option<Instant>,
    /// Asked, and no keyframe has come through since.
    outstanding: bool,
}

impl KeyframeLimiter {
    /// True when a request may go out now (and records it).
    pub fn allow(&mut self, now: Instant, need: KeyframeNeed) -> bool {
        let since = self.last_request.map(|t| now.duration_since(t));
        let pending = self.outstanding && since.is_some_and(|d| d < KEYFRAME_ANSWER_WITHIN);
        let due = match need {
            KeyframeNeed::Join => !pending,
            KeyframeNeed::Behind => !pending && since.is_none_or(|d| d >= KEYFRAME_REQUEST_GAP),
        };
        if due {
            self.last_request = Some(now);
            self.outstanding = true;
        }
        due
    }

    /// A keyframe came from the source: whatever was asked has been answered.
    pub fn keyframe_seen(&mut self) {
        self.outstanding = false;
    }
}

enum RelayCmd {
    Add {
        station_id: u32,
        name: String,
        tx: mpsc::Sender<FullFrame>,
    },
    Remove {
        station_id: u32,
    },
}

/// A running relay. Dropping it stops the relay; receivers' queues then stay empty.
pub struct Relay {
    cmds: mpsc::Sender<RelayCmd>,
    stats: watch::Receiver<RelayStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts relaying `feed`. Receivers are added with [`Relay::add`].
    pub fn start(feed: SourceFeed) -> Relay {
        let (cmds, rx) = mpsc::channel(256);
        let (stats_tx, stats) = watch::channel(RelayStats::default());
        let task = tokio::spawn(relay_loop(feed, rx, stats_tx));
        Relay { cmds, stats, task }
    }

    /// Adds (or replaces, for a reconnected station) a receiver. It gets frames from the
    /// next keyframe on; one is requested now.
    pub fn add(&self, station_id: u32, name: &str, tx: mpsc::Sender<FullFrame>) {
        self.send(RelayCmd::Add {
            station_id,
            name: name.to_string(),
            tx,
        });
    }

    pub fn remove(&self, station_id: u32) {
        self.send(RelayCmd::Remove { station_id });
    }

    fn send(&self, cmd: RelayCmd) {
        // 256 pending changes means the relay task is gone or wedged; the room goes on and
        // the demo view shows the receiver without deliveries.
        if self.cmds.try_send(cmd).is_err() {
            warn!("demo relay is not taking receiver changes");
        }
    }

    /// Counters as of the last second.
    pub fn stats(&self) -> RelayStats {
        self.stats.borrow().clone()
    }

    /// Follows the counters (refreshed every second).
    pub fn subscribe(&self) -> watch::Receiver<RelayStats> {
        self.stats.clone()
    }

    /// True once the source has ended (its stream closed) and the relay stopped.
    pub fn finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Receiver {
    name: String,
    queue: ReceiverQueue,
}

async fn relay_loop(
    mut feed: SourceFeed,
    mut cmds: mpsc::Receiver<RelayCmd>,
    stats_tx: watch::Sender<RelayStats>,
) {
    let mut receivers: BTreeMap<u32, Receiver> = BTreeMap::new();
    let mut limiter = KeyframeLimiter::default();
    let mut stats = RelayStats::default();
    let mut tick = tokio::time::interval(STATS_EVERY);
    let mut last_warning = Instant::now();
    let request = |limiter: &mut KeyframeLimiter, stats: &mut RelayStats, need| {
        if limiter.allow(Instant::now(), need) {
            stats.keyframe_requests += 1;
            (feed.request_keyframe)();
        }
    };
    loop {
        tokio::select! {
            // Receiver changes first: a joiner should not wait behind a burst of frames.
            biased;
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(RelayCmd::Add { station_id, name, tx }) => {
                    debug!(station = %name, "demo receiver joins");
                    receivers.insert(station_id, Receiver { name, queue: ReceiverQueue::new(tx) });
                    request(&mut limiter, &mut stats, KeyframeNeed::Join);
                }
                Some(RelayCmd::Remove { station_id }) => {
                    receivers.remove(&station_id);
                }
            },
            f = feed.frames.recv() => match f {
                Ok(frame) => {
                    stats.frames_in += 1;
                    if frame.keyframe {
                        limiter.keyframe_seen();
                    }
                    let mut need_key = false;
                    let mut closed = Vec::new();
                    for (id, r) in receivers.iter_mut() {
                        match r.queue.offer(&frame) {
                            Offer::Queued => {}
                            Offer::Dropped { need_keyframe } => need_key |= need_keyframe,
                            Offer::Closed => closed.push(*id),
                        }
                    }
                    for id in closed {
                        receivers.remove(&id);
                    }
                    if need_key {
                        request(&mut limiter, &mut stats, KeyframeNeed::Behind);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    // Only if this task could not keep up with the source: everyone missed
                    // the same frames.
                    warn!(skipped = n, "demo relay lagged behind its source; resyncing every receiver");
                    for r in receivers.values_mut() {
                        r.queue.resync();
                    }
                    request(&mut limiter, &mut stats, KeyframeNeed::Join);
                }
                Err(RecvError::Closed) => {
                    debug!("demo source ended");
                    publish(&stats_tx, &mut stats, &receivers);
                    return;
                }
            },
            _ = tick.tick() => {
                publish(&stats_tx, &mut stats, &receivers);
                if last_warning.elapsed() >= WARN_EVERY {
                    let behind: Vec<String> = receivers
                        .values_mut()
                        .filter(|r| r.queue.dropped_unlogged > 0)
                        .map(|r| {
                            let n = std::mem::take(&mut r.queue.dropped_unlogged);
                            format!("{} ({n})", r.name)
                        })
                        .collect();
                    if !behind.is_empty() {
                        last_warning = Instant::now();
                        warn!(
                            receivers = %behind.join(", "),
                            "demo receivers fell behind; frames dropped until the next keyframe"
                        );
                    }
                }
            }
        }
    }
}

fn publish(
    tx: &watch::Sender<RelayStats>,
    stats: &mut RelayStats,
    receivers: &BTreeMap<u32, Receiver>,
) {
    stats.receivers = receivers
        .iter()
        .map(|(id, r)| (*id, r.queue.stats()))
        .collect();
    tx.send_replace(stats.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanterne_media::EncodedFrame;
    use std::sync::Arc;

    fn frame(seq: u64, keyframe: bool) -> FullFrame {
        Arc::new(EncodedFrame {
            data: bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            keyframe,
            capture_us: 0,
            seq,
        })
    }

    #[test]
    fn a_new_receiver_starts_at_a_keyframe() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut q = ReceiverQueue::new(tx);
        assert_eq!(
            q.offer(&frame(1, false)),
            Offer::Dropped {
                need_keyframe: false
            }
        );
        assert_eq!(q.offer(&frame(2, true)), Offer::Queued);
        assert_eq!(q.offer(&frame(3, false)), Offer::Queued);
        assert_eq!(rx.try_recv().unwrap().seq, 2);
        assert_eq!(rx.try_recv().unwrap().seq, 3);
        assert_eq!(
            q.stats(),
            ReceiverStats {
                delivered: 2,
                dropped: 0,
                waiting_for_key: false
            },
            "joining is not dropping"
        );
    }

    #[test]
    fn a_full_queue_drops_until_the_next_keyframe_and_counts() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut q = ReceiverQueue::new(tx);
        assert_eq!(q.offer(&frame(1, true)), Offer::Queued);
        assert_eq!(q.offer(&frame(2, false)), Offer::Queued);
        // Full: this frame is lost, and with it the receiver's place in the GOP.
        assert_eq!(
            q.offer(&frame(3, false)),
            Offer::Dropped {
                need_keyframe: true
            }
        );
        // The reader catches up, but P-frames after the hole are useless to it.
        assert_eq!(rx.try_recv().unwrap().seq, 1);
        assert_eq!(rx.try_recv().unwrap().seq, 2);
        assert_eq!(
            q.offer(&frame(4, false)),
            Offer::Dropped {
                need_keyframe: false
            }
        );
        assert_eq!(q.offer(&frame(5, true)), Offer::Queued);
        assert_eq!(q.offer(&frame(6, false)), Offer::Queued);
        assert_eq!(rx.try_recv().unwrap().seq, 5);
        assert_eq!(rx.try_recv().unwrap().seq, 6);
        let s = q.stats();
        assert_eq!((s.delivered, s.dropped, s.waiting_for_key), (4, 2, false));
    }

    #[test]
    fn a_keyframe_that_finds_the_queue_still_full_asks_again() {
        let (tx, _rx) = mpsc::channel(1);
        let mut q = ReceiverQueue::new(tx);
        assert_eq!(q.offer(&frame(1, true)), Offer::Queued);
        assert_eq!(
            q.offer(&frame(2, true)),
            Offer::Dropped {
                need_keyframe: true
            }
        );
        assert!(q.stats().waiting_for_key);
    }

    #[test]
    fn a_gone_receiver_reports_closed() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut q = ReceiverQueue::new(tx);
        assert_eq!(q.offer(&frame(1, true)), Offer::Closed);
    }

    #[test]
    fn requests_for_receivers_behind_are_rate_limited() {
        let mut l = KeyframeLimiter::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(l.allow(t0, KeyframeNeed::Behind));
        assert!(!l.allow(ms(10), KeyframeNeed::Behind));
        l.keyframe_seen();
        // Answered, but a stalled receiver asking at every keyframe still waits its turn.
        assert!(!l.allow(ms(100), KeyframeNeed::Behind));
        assert!(l.allow(t0 + KEYFRAME_REQUEST_GAP, KeyframeNeed::Behind));
    }

    /// Regression: a station rejoining just after another receiver's request had been
    /// answered waited for the encoder's periodic IDR (2 s) instead of getting its own.
    #[test]
    fn a_joiner_is_served_unless_a_keyframe_is_already_on_its_way() {
        let mut l = KeyframeLimiter::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(l.allow(t0, KeyframeNeed::Behind));
        // Still on its way: the joiner will get that one.
        assert!(!l.allow(ms(50), KeyframeNeed::Join));
        l.keyframe_seen();
        assert!(l.allow(ms(100), KeyframeNeed::Join));
        // Never answered (lost): a later joiner asks again.
        assert!(l.allow(ms(100) + KEYFRAME_ANSWER_WITHIN, KeyframeNeed::Join));
    }

    async fn recv(rx: &mut mpsc::Receiver<FullFrame>) -> FullFrame {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a frame within 5 s")
            .expect("queue open")
    }

    /// The property the design rests on: a receiver nobody reads never delays or thins the
    /// others' frames, and joining asks the source for a keyframe.
    #[tokio::test]
    async fn a_stalled_receiver_does_not_change_the_others_delivery() {
        let (src, frames) = broadcast::channel(64);
        let (kf_tx, mut kf_rx) = mpsc::unbounded_channel();
        let relay = Relay::start(SourceFeed {
            frames,
            request_keyframe: Box::new(move || {
                let _ = kf_tx.send(());
            }),
        });
        let (healthy_tx, mut healthy) = mpsc::channel(DEMO_QUEUE);
        let (stalled_tx, _stalled) = mpsc::channel(DEMO_QUEUE);
        relay.add(2, "poste-02", healthy_tx);
        relay.add(3, "poste-03", stalled_tx);
        tokio::time::timeout(Duration::from_secs(5), kf_rx.recv())
            .await
            .expect("joining requests a keyframe");
        // Both joins are queued before the first frame, and the relay serves joins first.
        let total = (DEMO_QUEUE * 4) as u64;
        for seq in 0..total {
            src.send(frame(seq, seq % 30 == 0)).unwrap();
            // The healthy receiver reads as it goes.
            assert_eq!(recv(&mut healthy).await.seq, seq);
        }
        let mut s = relay.subscribe();
        let stats = loop {
            let st = s.borrow_and_update().clone();
            if st.frames_in == total {
                break st;
            }
            tokio::time::timeout(Duration::from_secs(3), s.changed())
                .await
                .expect("stats refresh")
                .unwrap();
        };
        assert_eq!(stats.receivers[&2].delivered, total);
        assert_eq!(stats.receivers[&2].dropped, 0);
        assert_eq!(stats.receivers[&3].delivered, DEMO_QUEUE as u64);
        assert_eq!(stats.receivers[&3].dropped, total - DEMO_QUEUE as u64);
        assert!(stats.receivers[&3].waiting_for_key);
    }
}
