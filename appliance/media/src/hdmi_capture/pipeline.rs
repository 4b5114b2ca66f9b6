//! The capture-and-encode pipeline for a [`CaptureChoice`].
//!
//! Its output is the same [`EncodedFrame`] stream as a station's full stream (Annex B access
//! units, SPS/PPS before every IDR, no B-frames, Unix-epoch capture time), so the fan-out
//! relay forwards the box's HDMI capture exactly like a station's screen.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, watch};

use super::select::{CaptureChoice, DeviceKind, PixelFormat};
use super::FrameRate;
use crate::bus::{make, BusWatch};
use crate::encoder::send_keyframe_request;
use crate::probe::{self, EncoderKind};
use crate::{CodecProbe, EncodedFrame, MediaError, PipelineError, StreamParams};

/// Where the pipeline's pictures come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureInput {
    /// The chosen V4L2 node, through `v4l2src`.
    Device,
    /// A generated SMPTE colour-bar picture in the chosen format, size and rate, standing in
    /// for the device on machines without capture hardware. A Motion-JPEG choice is
    /// JPEG-encoded first, so the decode path runs exactly as with a dongle.
    TestPattern,
}

/// State the appsink callback shares with the controlling side (lock-free: the callback runs
/// on the streaming thread and must never wait).
struct Shared {
    /// Drop access units until the next keyframe (at start and after a full receiver).
    need_key: AtomicBool,
    seq: AtomicU64,
    dropped: AtomicU64,
    /// Capture time of the last access unit handed over; 0 before the first.
    last_capture_us: AtomicU64,
}

/// A running HDMI capture. Dropping it (or [`HdmiCapture::stop`]) sets the pipeline to `Null`.
pub struct HdmiCapture {
    pipeline: gst::Pipeline,
    appsink: gst_app::AppSink,
    encoder: gst::Element,
    encoder_kind: EncoderKind,
    params: StreamParams,
    choice: CaptureChoice,
    shared: Arc<Shared>,
    bus: BusWatch,
}

impl HdmiCapture {
    /// Builds and starts the pipeline for `choice`. Access units go to `out` with
    /// `try_send`: when the receiver is full the unit is dropped and the stream resumes at
    /// the next keyframe, which it asks the encoder for.
    ///
    /// For a bridge, the detected DV timings must already be applied to the device (the
    /// device layer's `prepare_device` does it); a test pattern needs nothing.
    pub fn start(
        choice: &CaptureChoice,
        input: CaptureInput,
        probe: &CodecProbe,
        bitrate_kbps: u32,
        out: mpsc::Sender<EncodedFrame>,
    ) -> Result<HdmiCapture, MediaError> {
        let params = StreamParams {
            width: choice.output_width,
            height: choice.output_height,
            fps: whole_fps(choice.output_rate),
            bitrate_kbps,
        };
        params.validate()?;
        let pipeline = gst::Pipeline::with_name("hdmi-capture");
        // Wall-clock capture times: base_time + PTS is then Unix time, as for stations.
        pipeline.use_clock(Some(&crate::bus::realtime_clock()));
        let source_caps = build_source(&pipeline, choice, &input)?;
        let shared = Arc::new(Shared {
            need_key: AtomicBool::new(true),
            seq: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_capture_us: AtomicU64::new(0),
        });
        let (encoder, appsink) = build_encode(
            &pipeline,
            &source_caps,
            choice,
            probe.encoder,
            &params,
            shared.clone(),
            out,
        )?;
        crate::bus::start_pipeline("hdmi capture", &pipeline)?;
        wait_negotiated(&pipeline, &source_caps)?;
        let bus = BusWatch::spawn("hdmi capture", &pipeline);
        tracing::info!(choice = %choice.summary(), ?input, encoder = ?probe.encoder, bitrate_kbps, "HDMI capture started");
        Ok(HdmiCapture {
            pipeline,
            appsink,
            encoder,
            encoder_kind: probe.encoder,
            params,
            choice: choice.clone(),
            shared,
            bus,
        })
    }

    /// What is being captured and encoded.
    pub fn choice(&self) -> &CaptureChoice {
        &self.choice
    }

    /// Asks for an IDR (with SPS/PPS) as soon as possible, e.g. when a station joins.
    pub fn request_keyframe(&self) {
        send_keyframe_request(&self.appsink);
    }

    /// Changes the bitrate while running (the one encoder setting that can change live).
    pub fn set_bitrate(&mut self, bitrate_kbps: u32) -> Result<(), MediaError> {
        let params = StreamParams {
            bitrate_kbps,
            ..self.params
        };
        params.validate()?;
        probe::set_bitrate(self.encoder_kind, &self.encoder, &params, probe::Gop::SHORT);
        self.params = params;
        Ok(())
    }

    /// Access units dropped because the receiver was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Capture time (Unix-epoch µs) of the last access unit handed over, `None` before the
    /// first. A bridge whose cable is pulled just stops delivering (no error), so a caller
    /// that must notice a vanished source compares this with the clock.
    pub fn last_capture_us(&self) -> Option<u64> {
        match self.shared.last_capture_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(us),
        }
    }

    /// Becomes `Some` when the pipeline failed (it is then stopped for good), e.g. when the
    /// dongle is unplugged.
    pub fn errors(&self) -> watch::Receiver<Option<PipelineError>> {
        self.bus.errors()
    }

    /// Resolves when the pipeline fails.
    pub async fn wait_error(&self) -> PipelineError {
        self.bus.wait_error().await
    }

    /// Stops capturing and encoding.
    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for HdmiCapture {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for HdmiCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdmiCapture")
            .field("choice", &self.choice.summary())
            .field("encoder", &self.encoder_kind)
            .field("params", &self.params)
            .finish()
    }
}

/// The encoder's GOP is set in whole frames per second; 29.97 counts as 30.
fn whole_fps(rate: FrameRate) -> u32 {
    (rate.as_f64().round() as u32).max(1)
}

fn build_err(what: &'static str) -> impl Fn(gst::glib::BoolError) -> MediaError {
    move |e| MediaError::Build {
        what,
        detail: e.to_string(),
    }
}

fn built(
    r: Result<gst::Element, gst::glib::BoolError>,
    factory: &str,
) -> Result<gst::Element, MediaError> {
    r.map_err(|_| MediaError::MissingElement(factory.to_string()))
}

fn capsfilter(caps: gst::Caps) -> Result<gst::Element, MediaError> {
    built(
        gst::ElementFactory::make("capsfilter")
            .property("caps", caps)
            .build(),
        "capsfilter",
    )
}

/// The caps the device (or its stand-in) produces: `video/x-raw,format=F` or `image/jpeg`,
/// with the chosen size, and the rate unless the device is a bridge.
fn device_caps(choice: &CaptureChoice, with_rate: bool) -> gst::Caps {
    let builder = match choice.format.gst_raw_format() {
        Some(format) => gst::Caps::builder("video/x-raw").field("format", format),
        None => gst::Caps::builder("image/jpeg"),
    };
    let builder = builder
        .field("width", choice.width as i32)
        .field("height", choice.height as i32);
    if with_rate {
        builder
            .field(
                "framerate",
                gst::Fraction::new(choice.rate.num as i32, choice.rate.den as i32),
            )
            .build()
    } else {
        builder.build()
    }
}

/// Adds the source part and returns its last element (a capsfilter with the device caps).
///
/// Device:            `v4l2src device=/dev/videoN ! <device caps>`
/// Test pattern, raw: `videotestsrc is-live pattern=smpte ! <device caps>`
/// Test pattern, MJPG: `videotestsrc is-live pattern=smpte ! video/x-raw,I420,W×H,R ! jpegenc ! <device caps>`
///
/// A bridge's caps carry no frame rate: unicam cannot set one (the HDMI source decides),
/// and a fixed rate in the caps would fail negotiation against what the driver reports.
fn build_source(
    pipeline: &gst::Pipeline,
    choice: &CaptureChoice,
    input: &CaptureInput,
) -> Result<gst::Element, MediaError> {
    let bridge = choice.kind == DeviceKind::HdmiBridge;
    let mut chain: Vec<gst::Element> = Vec::new();
    match input {
        CaptureInput::Device => {
            let device = choice.device.to_string_lossy();
            chain.push(built(
                gst::ElementFactory::make("v4l2src")
                    .name("capture-source")
                    .property("device", device.as_ref())
                    .build(),
                "v4l2src",
            )?);
            chain.push(capsfilter(device_caps(choice, !bridge))?);
        }
        CaptureInput::TestPattern => {
            chain.push(built(
                gst::ElementFactory::make("videotestsrc")
                    .name("capture-source")
                    .property("is-live", true)
                    .property_from_str("pattern", "smpte")
                    .build(),
                "videotestsrc",
            )?);
            if choice.format == PixelFormat::Mjpeg {
                let raw = PixelFormat::I420;
                let raw_choice = CaptureChoice {
                    format: raw,
                    ..choice.clone()
                };
                chain.push(capsfilter(device_caps(&raw_choice, true))?);
                chain.push(make("jpegenc")?);
            }
            // The stand-in always has a rate: a live test source needs one to pace itself.
            chain.push(capsfilter(device_caps(choice, true))?);
        }
    }
    let err = build_err("hdmi capture source");
    pipeline.add_many(&chain).map_err(&err)?;
    gst::Element::link_many(&chain).map_err(&err)?;
    Ok(chain.pop().expect("the chain is not empty"))
}

/// Adds the processing and encoding part after the source; returns the encoder and appsink.
///
/// `<source> ! queue leaky=downstream max-size-buffers=2 ! [thinning probe] videorate drop-only=true ! <media,framerate=R>
///  ! [jpegdec] ! videoscale ! videoconvert ! video/x-raw,format=F,W×H,framerate=R,par=1/1
///  ! <encoder> ! <profile/level caps> ! h264parse config-interval=-1
///  ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink`
///
/// F is the capture format when the encoder takes it as is (UYVY into `v4l2h264enc`: scale
/// and convert then pass through untouched), else I420. The leaky queue keeps a slow encoder
/// from stalling the capture: it drops the oldest frame instead of making the driver drop.
/// videorate sits before jpegdec so a 60 fps MJPG stream is thinned before it is decoded.
fn build_encode(
    pipeline: &gst::Pipeline,
    source: &gst::Element,
    choice: &CaptureChoice,
    encoder_kind: EncoderKind,
    params: &StreamParams,
    shared: Arc<Shared>,
    out: mpsc::Sender<EncodedFrame>,
) -> Result<(gst::Element, gst_app::AppSink), MediaError> {
    let rate = gst::Fraction::new(choice.output_rate.num as i32, choice.output_rate.den as i32);
    let queue = built(
        gst::ElementFactory::make("queue")
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 2u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", 0u64)
            .build(),
        "queue",
    )?;
    let videorate = built(
        gst::ElementFactory::make("videorate")
            .property("drop-only", true)
            .build(),
        "videorate",
    )?;
    thin_to(&videorate, choice.output_rate);
    let media = if choice.format == PixelFormat::Mjpeg {
        "image/jpeg"
    } else {
        "video/x-raw"
    };
    let rate_caps = capsfilter(gst::Caps::builder(media).field("framerate", rate).build())?;
    let mut elems = vec![queue, videorate, rate_caps];
    if choice.format == PixelFormat::Mjpeg {
        elems.push(make("jpegdec")?);
    }
    let raw_format = match choice.format.gst_raw_format() {
        Some(f) if choice.format.encoder_accepts(encoder_kind) => f,
        _ => "I420",
    };
    elems.push(make("videoscale")?);
    elems.push(make("videoconvert")?);
    elems.push(capsfilter(
        gst::Caps::builder("video/x-raw")
            .field("format", raw_format)
            .field("width", params.width as i32)
            .field("height", params.height as i32)
            .field("framerate", rate)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    )?);
    let encoder = probe::make_encoder(
        encoder_kind,
        params,
        false,
        probe::Gop::SHORT,
        probe::RateMode::Bitrate,
    )?;
    elems.push(encoder.clone());
    elems.push(capsfilter(probe::encoder_output_caps(encoder_kind))?);
    elems.push(built(
        gst::ElementFactory::make("h264parse")
            .property("config-interval", -1i32)
            .build(),
        "h264parse",
    )?);
    elems.push(capsfilter(probe::annexb_au_caps())?);
    let appsink = gst_app::AppSink::builder()
        .name("hdmi-sink")
        .sync(false)
        .max_buffers(2)
        .drop(true)
        .enable_last_sample(false)
        .build();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                on_encoded(sink, &sample, &shared, &out);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    elems.push(appsink.clone().upcast());
    let err = build_err("hdmi capture encoder");
    pipeline.add_many(&elems).map_err(&err)?;
    gst::Element::link_many(&elems).map_err(&err)?;
    source.link(&elems[0]).map_err(&err)?;
    Ok((encoder, appsink))
}

/// Lets at most one frame per output interval (by PTS) reach `videorate`. On its own,
/// videorate passed the first frames of a 60 → 30 fps capture 16.7 ms apart while settling;
/// the demo stream should keep an even cadence from its first frame.
fn thin_to(videorate: &gst::Element, rate: FrameRate) {
    let interval_ns = 1_000_000_000u64 * rate.den as u64 / rate.num.max(1) as u64;
    // A tenth of an interval of slack for capture jitter.
    let min_gap = interval_ns - interval_ns / 10;
    let last_pts = AtomicU64::new(u64::MAX);
    videorate
        .static_pad("sink")
        .expect("videorate has a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(pts) = info.buffer().and_then(|b| b.pts()).map(|t| t.nseconds()) else {
                return gst::PadProbeReturn::Ok;
            };
            let last = last_pts.load(Ordering::Relaxed);
            if last != u64::MAX && pts >= last && pts - last < min_gap {
                // Handled, not Drop: see the encoder's thinning probe (GStreamer 1.22 logs a
                // CRITICAL per buffer dropped from a gstreamer-rs probe).
                return gst::PadProbeReturn::Handled;
            }
            last_pts.store(pts, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
}

/// Runs on the streaming thread for every access unit: never blocks.
fn on_encoded(
    sink: &gst_app::AppSink,
    sample: &gst::Sample,
    shared: &Shared,
    out: &mpsc::Sender<EncodedFrame>,
) {
    let Some(buffer) = sample.buffer_owned() else {
        return;
    };
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    if !keyframe && shared.need_key.load(Ordering::SeqCst) {
        return;
    }
    let capture_us = crate::bus::wallclock_us(
        sink.base_time(),
        crate::bus::running_time(sample, buffer.pts()),
    );
    let Ok(mapped) = buffer.into_mapped_buffer_readable() else {
        return;
    };
    let frame = EncodedFrame {
        data: Bytes::from_owner(mapped),
        keyframe,
        capture_us,
        seq: shared.seq.load(Ordering::Relaxed),
    };
    match out.try_send(frame) {
        Ok(()) => {
            shared.seq.fetch_add(1, Ordering::Relaxed);
            shared.last_capture_us.store(capture_us, Ordering::Relaxed);
            if keyframe {
                shared.need_key.store(false, Ordering::SeqCst);
            }
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            let n = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // The receiver missed a reference frame: resync at a keyframe, asked for once.
            if !shared.need_key.swap(true, Ordering::SeqCst) {
                send_keyframe_request(sink);
                tracing::warn!(
                    dropped_total = n,
                    "HDMI capture receiver full; dropping until the next keyframe"
                );
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// Waits (at most 5 s) until the source has fixed its caps, so that a device that refuses the
/// chosen mode fails `start` instead of failing later on the bus.
fn wait_negotiated(pipeline: &gst::Pipeline, source: &gst::Element) -> Result<(), MediaError> {
    let pad = source.static_pad("src").expect("capsfilter has a src pad");
    let bus = pipeline.bus().expect("a pipeline always has a bus");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pad.current_caps().is_none() {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(10),
            &[gst::MessageType::Error],
        ) {
            let _ = pipeline.set_state(gst::State::Null);
            if let gst::MessageView::Error(e) = msg.view() {
                return Err(PipelineError::from_message("hdmi capture", e).into());
            }
        }
        if std::time::Instant::now() > deadline {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(MediaError::Timeout(
                "the HDMI capture negotiated no format within 5 s (no picture from the device?)"
                    .into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
