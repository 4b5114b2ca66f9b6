//! The two kinds of video source a station link can drive: the live screen (through
//! `lanterne_media::ScreenEncoder`) and a replayed pre-encoded file (for simulated classrooms
//! of 30+ stations on one machine, where encoding every screen would measure the encoders
//! instead of the box).

use std::sync::{Arc, Mutex};

use lanterne_media::replay::ReplayFile;
use lanterne_media::{
    CaptureSource, CodecProbe, EncodedFrame, ScreenEncoder, StreamKind, StreamParams,
};
use lanterne_wire::{Capabilities, Stream, StreamSettings};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::link::VideoSource;

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

fn params(s: StreamSettings) -> StreamParams {
    StreamParams {
        width: s.width,
        height: s.height,
        fps: s.fps,
        bitrate_kbps: s.bitrate_kbps,
    }
}

/// The real screen (or the synthetic test pattern), encoded on this station.
pub struct LiveSource {
    encoder: ScreenEncoder,
    capture: &'static str,
    encoder_name: String,
}

impl LiveSource {
    pub fn start(
        capture: CaptureSource,
        probe: &CodecProbe,
        out: mpsc::Sender<(StreamKind, EncodedFrame)>,
    ) -> Result<Self, lanterne_media::MediaError> {
        let name = match &capture {
            CaptureSource::Synthetic { .. } => "synthetic",
            CaptureSource::X11 { .. } => "x11",
            CaptureSource::PipeWire => "pipewire",
        };
        let encoder = ScreenEncoder::start(capture, probe, out)?;
        Ok(LiveSource {
            encoder,
            capture: name,
            encoder_name: format!("{:?}", probe.encoder).to_lowercase(),
        })
    }

    pub fn encoder(&self) -> &ScreenEncoder {
        &self.encoder
    }
}

impl VideoSource for LiveSource {
    fn set_stream(&self, stream: Stream, settings: Option<StreamSettings>) -> Result<(), String> {
        let kind = media_kind(stream).ok_or("a station does not send the demo stream")?;
        self.encoder.set_stream(kind, settings.map(params));
        Ok(())
    }

    fn request_keyframe(&self, stream: Stream) {
        if let Some(kind) = media_kind(stream) {
            self.encoder.request_keyframe(kind);
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            capture: self.capture.to_string(),
            encoder: self.encoder_name.clone(),
            screen: None,
        }
    }
}

/// A recorded thumbnail stream played in a loop at its recorded pace. It has no full-size
/// stream and cannot make keyframes on request: keyframes come at the file's own interval.
pub struct ReplaySource {
    file: Arc<ReplayFile>,
    out: mpsc::Sender<(StreamKind, EncodedFrame)>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ReplaySource {
    pub fn new(file: Arc<ReplayFile>, out: mpsc::Sender<(StreamKind, EncodedFrame)>) -> Self {
        ReplaySource {
            file,
            out,
            task: Mutex::new(None),
        }
    }
}

impl VideoSource for ReplaySource {
    fn set_stream(&self, stream: Stream, settings: Option<StreamSettings>) -> Result<(), String> {
        if stream != Stream::Thumb {
            return match settings {
                None => Ok(()),
                Some(_) => Err(format!("a replay station has no {stream:?} stream")),
            };
        }
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = task.take() {
            t.abort();
        }
        if settings.is_some() {
            let (tx, mut rx) = mpsc::channel::<EncodedFrame>(4);
            let out = self.out.clone();
            let file = self.file.clone();
            *task = Some(tokio::spawn(async move {
                let play = lanterne_media::replay::play(file, tx, true);
                let forward = async {
                    while let Some(f) = rx.recv().await {
                        // Lossy like the live encoder: a full queue drops the frame, and the
                        // link resyncs at the next keyframe.
                        let _ = out.try_send((StreamKind::Thumb, f));
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
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}
