//! Lanterne media: everything that touches pixels or H.264.
//!
//! * Station side — [`ScreenEncoder`] captures the screen (X11, or a synthetic test pattern;
//!   PipeWire is reported as unsupported until the ScreenCast portal is wired in) and encodes
//!   two independent H.264 streams from one capture: a thumbnail for the mosaic and a full
//!   stream for the focus view. The box switches each one on and off; an OFF stream costs no
//!   encoding at all.
//! * Box side — [`Mosaic`] decodes every station's thumbnail, composes the tiles into one
//!   canvas in Rust and encodes that canvas once, so the teacher's tablet decodes one stream
//!   whatever the class size. A full stream is never decoded here: the box forwards its access
//!   units untouched.
//! * Station side — [`DemoPlayer`] decodes a demo the box relays, shows it in a window when
//!   the station has a display, and samples the picture's centre colour for health reports.
//! * Box side — [`hdmi_capture`] captures the teacher PC's HDMI output (TC358743 bridge on a
//!   Pi 4, or a USB dongle) through V4L2 and encodes it into the same [`EncodedFrame`] stream
//!   as a station's full stream, so the fan-out relay can forward it as a demo source.
//! * [`replay`] — a small, versioned file of pre-encoded access units, played back at the
//!   recorded pace, so a benchmark can simulate 30+ stations without running 30 encoders.
//! * [`codec_string`] — the WebCodecs `avc1.PPCCLL` string for the browser's `VideoDecoder`.
//!
//! Every stream leaves here as Annex B access units with SPS/PPS in front of each IDR and no
//! B-frames, because the browser decodes with WebCodecs and must never wait for reordering.
//! Hardware codecs (Raspberry Pi 4 V4L2, VA-API) are used when [`init`] finds them working;
//! otherwise x264 / libav, then OpenH264.
//!
//! Capture times: station pipelines run on a realtime (Unix-epoch) clock, so a frame's
//! `capture_us` is base time + PTS; the mosaic carries each station frame's `capture_us`
//! through its decoder as the PTS and reports it in [`MosaicFrame::updates`].
//!
//! # Tests
//!
//! `CARGO_TARGET_DIR=/work/target-media cargo test -p lanterne-media` runs every test,
//! including X11 capture under a private `Xvfb` (needs `xvfb` and `x11-xserver-utils`, as
//! installed by `scripts/setup.sh`; the test fails, never skips, without them). The 32-tile
//! load measurement is ignored by default:
//! `cargo test -p lanterne-media --release -- --ignored --nocapture mosaic_32`.
//! The HDMI capture's device tests need real hardware and the `v4l2-capture` feature:
//! see `docs/hardware.md`.
//! The replay parser's fuzz target lives in `fuzz/` (cargo-fuzz).
//!
//! # Features
//!
//! `gstreamer` (default) is everything that runs a GStreamer pipeline: capture, encoders,
//! the mosaic, the demo player, recording replay files. Without it the crate is the
//! platform-neutral part only (the frame and stream types, replay files' format and playback,
//! [`codec_string`]), which is what the Windows station agent uses: it captures and encodes
//! by its own means (see `appliance/station/src/platform/windows`).

#![forbid(unsafe_code)]

#[cfg(feature = "gstreamer")]
mod bus;
#[cfg(feature = "gstreamer")]
mod encoder;
mod h264;
#[cfg(feature = "gstreamer")]
pub mod hdmi_capture;
#[cfg(feature = "gstreamer")]
mod mosaic;
#[cfg(feature = "gstreamer")]
mod player;
#[cfg(feature = "gstreamer")]
mod probe;
pub mod replay;
#[cfg(feature = "gstreamer")]
pub mod still;

#[cfg(all(test, feature = "gstreamer"))]
mod testutil;

use bytes::Bytes;

#[cfg(feature = "gstreamer")]
pub use bus::PipelineError;
#[cfg(feature = "gstreamer")]
pub use encoder::{CaptureSource, ScreenEncoder};
pub use h264::codec_string;
#[cfg(feature = "gstreamer")]
pub use mosaic::{
    Mosaic, MosaicConfig, MosaicFrame, MosaicLayout, MosaicStats, TileFeedback, TileInfo, TileRect,
    TileStats,
};
#[cfg(feature = "gstreamer")]
pub use player::{DemoPlayer, PlayerConfig, PlayerOutput, PlayerStats};
#[cfg(feature = "gstreamer")]
pub use probe::{init, CodecProbe, DecoderKind, EncoderKind};

/// One H.264 access unit, Annex B byte stream, with SPS/PPS in front of every IDR.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub data: Bytes,
    pub keyframe: bool,
    /// Unix-epoch microseconds when the screen was captured.
    pub capture_us: u64,
    /// Increases by one for every frame handed to the consumer of one stream.
    pub seq: u64,
}

/// The two streams a station can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Thumb,
    Full,
}

/// What the box asks one stream to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamParams {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl StreamParams {
    /// Rejects sizes the encoders cannot take (zero, odd, absurdly large).
    pub fn validate(&self) -> Result<(), MediaError> {
        let bad = |what: String| Err(MediaError::InvalidParams(what));
        if !(16..=7680).contains(&self.width) || !(16..=4320).contains(&self.height) {
            return bad(format!(
                "size {}x{} outside 16x16..7680x4320",
                self.width, self.height
            ));
        }
        if self.width % 2 != 0 || self.height % 2 != 0 {
            return bad(format!(
                "size {}x{} must be even (4:2:0 video)",
                self.width, self.height
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return bad(format!("fps {} outside 1..=120", self.fps));
        }
        if !(16..=100_000).contains(&self.bitrate_kbps) {
            return bad(format!(
                "bitrate {} kbit/s outside 16..=100000",
                self.bitrate_kbps
            ));
        }
        Ok(())
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer initialisation failed: {0}")]
    Init(String),
    #[error("no usable H.264 {0} found (tried hardware, x264/libav and OpenH264)")]
    NoCodec(&'static str),
    #[error("GStreamer element '{0}' is missing (install the plugin package that provides it)")]
    MissingElement(String),
    #[error("building the {what} pipeline failed: {detail}")]
    Build { what: &'static str, detail: String },
    #[error("the {what} pipeline refused to start: {detail}")]
    Start { what: &'static str, detail: String },
    #[cfg(feature = "gstreamer")]
    #[error("{0}")]
    Pipeline(#[from] PipelineError),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid stream parameters: {0}")]
    InvalidParams(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("replay file: {0}")]
    Replay(#[from] replay::ReplayError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Microseconds since the Unix epoch, from the system's realtime clock.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
