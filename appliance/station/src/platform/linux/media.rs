//! The live screen on Linux: `lanterne_media::ScreenEncoder` (GStreamer: X11 capture or the
//! synthetic test pattern, hardware or software H.264).

use lanterne_media::{CaptureSource, CodecProbe, EncodedFrame, ScreenEncoder, StreamKind};
use lanterne_wire::{Capabilities, Stream, StreamSettings};
use tokio::sync::mpsc;

use crate::sources::{media_kind, params, VideoSource};

pub use lanterne_media::{init, DemoPlayer, PlayerConfig, PlayerOutput};

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
