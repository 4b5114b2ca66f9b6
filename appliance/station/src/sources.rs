//! The two kinds of video source a station session can drive: the live screen
//! ([`LiveSource`], from the platform: GStreamer on Linux, GDI and OpenH264 on Windows) and a
//! replayed pre-encoded file (for simulated classrooms of 30+ stations on one machine, where
//! encoding every screen would measure the encoders instead of the box).

use std::sync::{Arc, Mutex};

use lanterne_media::replay::ReplayFile;
use lanterne_media::{EncodedFrame, StreamKind, StreamParams};
use lanterne_wire::{Capabilities, Stream, StreamSettings};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a session's video comes from: a live screen encoder or a replayed file. The session
/// switches its streams on the service's orders.
pub trait VideoSource: Send + Sync {
    /// Start (Some) or stop (None) a stream. Err explains why it cannot be done.
    fn set_stream(&self, stream: Stream, settings: Option<StreamSettings>) -> Result<(), String>;
    fn request_keyframe(&self, stream: Stream);
    fn capabilities(&self) -> Capabilities;
}

pub fn wire_stream(kind: StreamKind) -> Stream {
    match kind {
        StreamKind::Thumb => Stream::Thumb,
        StreamKind::Full => Stream::Full,
    }
}

/// The encoder stream behind a wire stream; None for the demo stream, which a station plays
/// and never sends.
pub fn media_kind(stream: Stream) -> Option<StreamKind> {
    match stream {
        Stream::Thumb => Some(StreamKind::Thumb),
        Stream::Full => Some(StreamKind::Full),
        Stream::Demo => None,
    }
}

pub use crate::platform::LiveSource;

/// The encoder's parameters for the box's settings of a stream.
pub fn params(s: StreamSettings) -> StreamParams {
    StreamParams {
        width: s.width,
        height: s.height,
        fps: s.fps,
        bitrate_kbps: s.bitrate_kbps,
    }
}

/// Recorded streams played in a loop at their recorded pace: a thumbnail stream, and
/// optionally a full-size one. Keyframes cannot be made on request: they come at the files'
/// own interval. Stream settings from the box (size, rate) cannot change a recording either.
pub struct ReplaySource {
    thumb: Arc<ReplayFile>,
    full: Option<Arc<ReplayFile>>,
    out: mpsc::Sender<(StreamKind, EncodedFrame)>,
    /// How long a stream waits before its first frame (spreads a simulated room's stations
    /// over the file's length).
    delay: std::time::Duration,
    /// The playing task per stream (thumbnail, full).
    tasks: Mutex<[Option<JoinHandle<()>>; 2]>,
}

impl ReplaySource {
    pub fn new(file: Arc<ReplayFile>, out: mpsc::Sender<(StreamKind, EncodedFrame)>) -> Self {
        ReplaySource {
            thumb: file,
            full: None,
            out,
            delay: std::time::Duration::ZERO,
            tasks: Mutex::new([None, None]),
        }
    }

    /// Starts every stream `delay` after it is switched on.
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Also answers requests for the full stream, with `full`.
    pub fn with_full(mut self, full: Arc<ReplayFile>) -> Self {
        self.full = Some(full);
        self
    }
}

impl VideoSource for ReplaySource {
    fn set_stream(&self, stream: Stream, settings: Option<StreamSettings>) -> Result<(), String> {
        let (kind, file) = match (media_kind(stream), stream) {
            (Some(StreamKind::Thumb), _) => (StreamKind::Thumb, self.thumb.clone()),
            (Some(StreamKind::Full), _) if self.full.is_some() => {
                (StreamKind::Full, self.full.clone().expect("checked"))
            }
            _ => {
                return match settings {
                    None => Ok(()),
                    Some(_) => Err(format!("a replay station has no {stream:?} stream")),
                }
            }
        };
        let slot = match kind {
            StreamKind::Thumb => 0,
            StreamKind::Full => 1,
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tasks[slot].take() {
            t.abort();
        }
        if settings.is_some() {
            let (tx, mut rx) = mpsc::channel::<EncodedFrame>(4);
            let out = self.out.clone();
            let delay = self.delay;
            tasks[slot] = Some(tokio::spawn(async move {
                let play = lanterne_media::replay::play_delayed(file, tx, true, delay);
                let forward = async {
                    while let Some(f) = rx.recv().await {
                        // Lossy like the live encoder: a full queue drops the frame, and the
                        // link resyncs at the next keyframe.
                        let _ = out.try_send((kind, f));
                    }
                };
                tokio::join!(play, forward);
            }));
        }
        Ok(())
    }

    fn request_keyframe(&self, _stream: Stream) {}

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            capture: "replay".into(),
            encoder: "replay".into(),
            screen: None,
        }
    }
}

impl Drop for ReplaySource {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
        {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanterne_media::replay::{encode, ReplayFrame};

    /// A two-frame file whose access units say which file they come from.
    fn file(tag: u8, width: u32) -> Arc<ReplayFile> {
        let frames: Vec<ReplayFrame> = (0..2u64)
            .map(|i| ReplayFrame {
                pts_us: i * 100_000,
                keyframe: i == 0,
                data: bytes::Bytes::from(vec![0, 0, 0, 1, 0x65, tag]),
            })
            .collect();
        let params = StreamParams {
            width,
            height: width * 9 / 16,
            fps: 10,
            bitrate_kbps: 100,
        };
        Arc::new(ReplayFile::parse(encode(params, &frames).into()).unwrap())
    }

    fn settings() -> Option<StreamSettings> {
        Some(StreamSettings {
            width: 320,
            height: 180,
            fps: 10,
            bitrate_kbps: 100,
        })
    }

    #[tokio::test]
    async fn a_replay_with_a_full_file_serves_both_streams_each_from_its_own_file() {
        let (tx, mut rx) = mpsc::channel(16);
        let src = ReplaySource::new(file(1, 320), tx).with_full(file(2, 1920));
        src.set_stream(Stream::Full, settings()).unwrap();
        let (kind, f) = rx.recv().await.unwrap();
        assert_eq!((kind, f.data.last().copied()), (StreamKind::Full, Some(2)));
        src.set_stream(Stream::Full, None).unwrap();
        src.set_stream(Stream::Thumb, settings()).unwrap();
        // Frames already queued from the full stream may come first; then only thumbnails.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let (kind, f) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap()
                .unwrap();
            if kind == StreamKind::Thumb {
                assert_eq!(f.data.last().copied(), Some(1));
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_plain_replay_refuses_the_full_stream_clearly() {
        let (tx, _rx) = mpsc::channel(16);
        let src = ReplaySource::new(file(1, 320), tx);
        let err = src.set_stream(Stream::Full, settings()).unwrap_err();
        assert!(err.contains("no Full stream"), "{err}");
        src.set_stream(Stream::Full, None).unwrap();
    }
}
