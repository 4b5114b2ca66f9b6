//! Choosing the H.264 encoder and decoder once per process, and making configured instances.
//!
//! Hardware first, but only when a quick open test passes: on a Pi 5 or in a container the
//! V4L2 element may be registered while no codec device works, and a pipeline that fails at
//! its first frame is worse than a software one that runs.

use std::sync::OnceLock;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::bus::make;
use crate::MediaError;

/// Which H.264 encoder the pipelines use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderKind {
    /// `v4l2h264enc`: Raspberry Pi 4's memory-to-memory encoder.
    V4l2,
    /// `vah264enc` (preferred) or `vaapih264enc`.
    Vaapi,
    /// `x264enc`.
    X264,
    /// `openh264enc`.
    OpenH264,
}

/// Which H.264 decoder the mosaic uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderKind {
    /// `v4l2h264dec`: Raspberry Pi 4.
    V4l2,
    /// `avdec_h264` (libav).
    Avdec,
    /// `openh264dec`.
    OpenH264,
}

/// The result of [`init`]: which codecs this process uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecProbe {
    pub encoder: EncoderKind,
    pub decoder: DecoderKind,
}

static PROBE: OnceLock<Result<CodecProbe, String>> = OnceLock::new();

/// Initialises GStreamer (once per process) and picks the encoder and decoder.
/// Later calls return the first answer.
pub fn init() -> Result<CodecProbe, MediaError> {
    PROBE
        .get_or_init(|| {
            gst::init().map_err(|e| format!("gst::init: {e}"))?;
            let encoder = probe_encoder().ok_or("encoder")?;
            let decoder = probe_decoder().ok_or("decoder")?;
            tracing::info!(?encoder, ?decoder, gstreamer = %gst::version_string(), "H.264 codecs chosen");
            Ok(CodecProbe { encoder, decoder })
        })
        .clone()
        .map_err(|e| match e.as_str() {
            "encoder" => MediaError::NoCodec("encoder"),
            "decoder" => MediaError::NoCodec("decoder"),
            _ => MediaError::Init(e),
        })
}

fn exists(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

fn probe_encoder() -> Option<EncoderKind> {
    for kind in [EncoderKind::V4l2, EncoderKind::Vaapi] {
        if encoder_factory(kind).is_some() {
            match encode_test(kind) {
                Ok(()) => return Some(kind),
                Err(e) => {
                    tracing::info!(?kind, error = %e, "hardware encoder present but unusable")
                }
            }
        }
    }
    if exists("x264enc") {
        return Some(EncoderKind::X264);
    }
    if exists("openh264enc") {
        return Some(EncoderKind::OpenH264);
    }
    None
}

fn probe_decoder() -> Option<DecoderKind> {
    if exists("v4l2h264dec") {
        // The V4L2 decoder opens its device on NULL→READY: enough to know it is real.
        match make("v4l2h264dec") {
            Ok(dec) => {
                let ok = dec.set_state(gst::State::Ready).is_ok();
                let _ = dec.set_state(gst::State::Null);
                if ok {
                    return Some(DecoderKind::V4l2);
                }
                tracing::info!("v4l2h264dec present but its device does not open");
            }
            Err(e) => tracing::info!(error = %e, "v4l2h264dec unusable"),
        }
    }
    if exists("avdec_h264") {
        return Some(DecoderKind::Avdec);
    }
    if exists("openh264dec") {
        return Some(DecoderKind::OpenH264);
    }
    None
}

fn encoder_factory(kind: EncoderKind) -> Option<&'static str> {
    let names: &[&'static str] = match kind {
        EncoderKind::V4l2 => &["v4l2h264enc"],
        EncoderKind::Vaapi => &["vah264enc", "vaapih264enc"],
        EncoderKind::X264 => &["x264enc"],
        EncoderKind::OpenH264 => &["openh264enc"],
    };
    names.iter().copied().find(|n| exists(n))
}

/// Encodes three small frames end to end; hardware that cannot do that is not used.
///
/// `videotestsrc num-buffers=3 ! video/x-raw,I420,320x240 ! <encoder> ! <encoder caps> ! fakesink`
fn encode_test(kind: EncoderKind) -> Result<(), MediaError> {
    let params = crate::StreamParams {
        width: 320,
        height: 240,
        fps: 10,
        bitrate_kbps: 300,
    };
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 3i32)
        .build()
        .map_err(|_| MediaError::MissingElement("videotestsrc".into()))?;
    let caps = gst::ElementFactory::make("capsfilter")
        .property("caps", raw_caps(&params))
        .build()
        .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
    let enc = make_encoder(kind, &params, false, Gop::SHORT, RateMode::Bitrate)?;
    let enc_caps = gst::ElementFactory::make("capsfilter")
        .property("caps", encoder_output_caps(kind))
        .build()
        .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
    let sink = make("fakesink")?;
    let pipeline = gst::Pipeline::new();
    let elems = [&src, &caps, &enc, &enc_caps, &sink];
    let build = |e: gst::glib::BoolError| MediaError::Build {
        what: "encoder probe",
        detail: e.to_string(),
    };
    pipeline.add_many(elems).map_err(build)?;
    gst::Element::link_many(elems).map_err(build)?;
    crate::bus::start_pipeline("encoder probe", &pipeline)?;
    let bus = pipeline.bus().expect("a pipeline always has a bus");
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(m) => match m.view() {
            gst::MessageView::Eos(_) => Ok(()),
            gst::MessageView::Error(e) => {
                Err(crate::PipelineError::from_message("encoder probe", e).into())
            }
            _ => unreachable!("filtered to EOS and errors"),
        },
        None => Err(MediaError::Timeout(
            "encoder probe got no EOS in 5 s".into(),
        )),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// `video/x-raw,format=I420,width=W,height=H,framerate=F/1,pixel-aspect-ratio=1/1`
pub(crate) fn raw_caps(p: &crate::StreamParams) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", p.width as i32)
        .field("height", p.height as i32)
        .field("framerate", gst::Fraction::new(p.fps as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

/// Caps right after the encoder: a profile every browser decodes without reordering, and the
/// `level` that `v4l2h264enc` insists on finding downstream.
pub(crate) fn encoder_output_caps(kind: EncoderKind) -> gst::Caps {
    let b = gst::Caps::builder("video/x-h264");
    match kind {
        EncoderKind::X264 | EncoderKind::OpenH264 => {
            b.field("profile", "constrained-baseline").build()
        }
        EncoderKind::V4l2 => b.field("level", "4").build(),
        // Recent Intel VA drivers dropped baseline; main without B-frames never reorders.
        EncoderKind::Vaapi => b.field("profile", "main").build(),
    }
}

/// `video/x-h264,stream-format=byte-stream,alignment=au`
pub(crate) fn annexb_au_caps() -> gst::Caps {
    gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build()
}

/// How often an encoder makes a keyframe on its own, in seconds of encoded frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gop(pub u32);

impl Gop {
    /// About two seconds, so a receiver that loses a frame recovers quickly without asking
    /// (the mosaic stream to tablets, the HDMI demo source).
    pub(crate) const SHORT: Gop = Gop(2);

    fn frames(self, fps: u32) -> u32 {
        (fps.saturating_mul(self.0)).max(1)
    }
}

/// How an encoder spends its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RateMode {
    /// Aim at the bitrate (the mosaic, the HDMI source: pictures that are encoded anyway).
    Bitrate,
    /// Screens: constant quality, with the bitrate as a ceiling (x264 CRF under a VBV cap).
    /// An encoder aiming at 3 Mbit/s spends them whatever the picture: on a slide where
    /// only a caret blinks it re-encodes the unchanged text ever finer, frame after frame.
    /// At constant quality a small change costs a small frame, and motion still gets up to
    /// the bitrate. Encoders without such a mode keep aiming at the bitrate.
    ScreenQuality,
}

/// x264's constant-quality factor for screens (its default is 23; lower is finer). Text
/// scaled from 1080p to 720p stays sharp at this value.
const SCREEN_CRF: u32 = 23;

/// An encoder configured for low latency, no B-frames, the given bitrate and GOP.
/// `light` asks for a single thread (thumbnails: many small encodes, latency over speed).
pub(crate) fn make_encoder(
    kind: EncoderKind,
    p: &crate::StreamParams,
    light: bool,
    gop: Gop,
    rate: RateMode,
) -> Result<gst::Element, MediaError> {
    let factory = encoder_factory(kind)
        .ok_or_else(|| MediaError::MissingElement(format!("{kind:?} encoder")))?;
    let enc = make(factory)?;
    match (kind, factory) {
        (EncoderKind::X264, _) => {
            enc.set_property_from_str("tune", "zerolatency");
            enc.set_property_from_str("speed-preset", "superfast");
            enc.set_property("bframes", 0u32);
            enc.set_property("byte-stream", true);
            enc.set_property("b-adapt", false);
            if light {
                enc.set_property("threads", 1u32);
            }
            if rate == RateMode::ScreenQuality {
                // "qual": CRF, with `bitrate` as the VBV maximum.
                enc.set_property_from_str("pass", "qual");
                enc.set_property("quantizer", SCREEN_CRF);
            }
        }
        (EncoderKind::OpenH264, _) => {
            enc.set_property_from_str("usage-type", "screen");
            enc.set_property_from_str("rate-control", "bitrate");
        }
        (EncoderKind::Vaapi, "vah264enc") => {
            enc.set_property("b-frames", 0u32);
            enc.set_property_from_str("rate-control", "cbr");
        }
        (EncoderKind::Vaapi, _) => {
            enc.set_property("max-bframes", 0u32);
            enc.set_property_from_str("rate-control", "cbr");
        }
        (EncoderKind::V4l2, _) => {}
    }
    configure_encoder(kind, &enc, p, gop);
    Ok(enc)
}

/// Sets the bitrate, the one setting the encoders accept while playing (`gop`: the one the
/// encoder was made with; V4L2 takes every control again at once).
pub(crate) fn set_bitrate(
    kind: EncoderKind,
    enc: &gst::Element,
    p: &crate::StreamParams,
    gop: Gop,
) {
    match kind {
        EncoderKind::X264 | EncoderKind::Vaapi => enc.set_property("bitrate", p.bitrate_kbps),
        EncoderKind::OpenH264 => enc.set_property("bitrate", p.bitrate_kbps.saturating_mul(1000)),
        EncoderKind::V4l2 => configure_v4l2(enc, p, gop),
    }
}

/// Bitrate and GOP at creation. The GOP cannot change while playing (x264enc refuses), so
/// callers that change fps later force keyframes on a timer instead.
fn configure_encoder(kind: EncoderKind, enc: &gst::Element, p: &crate::StreamParams, gop: Gop) {
    match kind {
        EncoderKind::X264 => {
            enc.set_property("bitrate", p.bitrate_kbps);
            enc.set_property("key-int-max", gop.frames(p.fps));
        }
        EncoderKind::OpenH264 => {
            enc.set_property("bitrate", p.bitrate_kbps.saturating_mul(1000));
            enc.set_property("gop-size", gop.frames(p.fps));
        }
        EncoderKind::Vaapi => {
            enc.set_property("bitrate", p.bitrate_kbps);
            if enc.find_property("key-int-max").is_some() {
                enc.set_property("key-int-max", gop.frames(p.fps));
            } else {
                enc.set_property("keyframe-period", gop.frames(p.fps));
            }
        }
        EncoderKind::V4l2 => configure_v4l2(enc, p, gop),
    }
}

/// The Pi's encoder takes its settings as V4L2 controls; `repeat_sequence_header` puts
/// SPS/PPS in front of every IDR.
fn configure_v4l2(enc: &gst::Element, p: &crate::StreamParams, gop: Gop) {
    let controls = gst::Structure::builder("controls")
        .field(
            "video_bitrate",
            (p.bitrate_kbps.saturating_mul(1000)) as i32,
        )
        .field("h264_i_frame_period", gop.frames(p.fps) as i32)
        .field("repeat_sequence_header", 1i32)
        .build();
    enc.set_property("extra-controls", controls);
}

/// A decoder for one mosaic tile: single-threaded, because frame threading adds a frame of
/// delay per thread and 32 tiles × N threads would only contend for two cores.
pub(crate) fn make_decoder(kind: DecoderKind) -> Result<gst::Element, MediaError> {
    let dec = match kind {
        DecoderKind::V4l2 => make("v4l2h264dec")?,
        DecoderKind::Avdec => {
            let dec = make("avdec_h264")?;
            dec.set_property("max-threads", 1i32);
            dec
        }
        DecoderKind::OpenH264 => make("openh264dec")?,
    };
    // The decoder's own max-errors default stays: a station that keeps sending undecodable
    // data ends in a bus error, which the mosaic counts and answers by restarting the tile.
    Ok(dec)
}
