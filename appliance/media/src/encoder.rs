//! Station side: one screen capture, two independently switched H.264 streams.
//!
//! ```text
//! source ─▶ tee ─┬─▶ queue(leaky) ─▶ videorate ─▶ valve ─▶ videoscale ─▶ videoconvert ─▶ caps ─▶ enc ─▶ caps ─▶ h264parse ─▶ caps ─▶ appsink   (thumb)
//!                └─▶ queue(leaky) ─▶ videorate ─▶ valve ─▶ videoscale ─▶ videoconvert ─▶ caps ─▶ enc ─▶ caps ─▶ h264parse ─▶ caps ─▶ appsink   (full)
//! ```
//!
//! A stream that is OFF has its valve closed, so its branch neither scales nor encodes; only
//! the queue and videorate (which drops without touching pixels) keep seeing frames. videorate
//! sits before the valve on purpose: behind a valve it would see a gap of minutes when the
//! stream comes back and pass a burst of frames at capture rate while catching up.
//! Colour conversion happens per branch *after* scaling: the usual case is thumbnail only,
//! and converting a 480×270 picture is much cheaper than converting the 1080p capture once.
//! `videorate drop-only` only ever drops: a screen that stalls must not be padded with copies.
//! In front of it a pad probe thins frames to the target interval by PTS: after a stall
//! (a busy machine) videorate alone would pass a burst at capture rate to catch up with its
//! timestamp grid; the probe lets through at most one frame per interval.
//!
//! Rate control for screens ([`change`]): a pad probe in front of each encoder drops a scaled
//! picture identical to the last one encoded, so a still screen sends nothing, a blinking
//! cursor a small frame per blink, and motion gets the stream's full rate and bitrate.
//! Keyframes come when a receiver needs one (stream switched on, a request from the box, a
//! frame lost to a full queue), not on a short timer: a periodic IDR of a still 1280×720
//! slide would alone cost more than the whole stream otherwise does. A long safety GOP
//! ([`STATION_GOP`]) remains for a decoder that lost its place without anyone asking.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, watch};

use crate::bus::{make, BusWatch};
use crate::probe::{self, EncoderKind, Gop};

mod change;
use crate::{CodecProbe, EncodedFrame, MediaError, PipelineError, StreamKind, StreamParams};
use change::ChangeGate;

/// What a station captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureSource {
    /// A generated picture: solid `rgb` background, a moving ball, `label` in the top left and
    /// a running clock in the bottom right. Used for simulated stations and tests.
    Synthetic { label: String, rgb: [u8; 3] },
    /// An X11 screen; `display` defaults to `$DISPLAY`.
    X11 { display: Option<String> },
    /// Wayland through PipeWire: needs the ScreenCast portal (not available yet).
    PipeWire,
}

/// Size and rate of the synthetic picture before each branch scales it.
const SYNTHETIC: (i32, i32, i32) = (1280, 720, 30);
/// Capture rate asked of real screens; each branch's videorate brings it down.
const CAPTURE_FPS: i32 = 30;
/// The stations' own keyframe interval, in seconds of *encoded* frames (still pictures are
/// not encoded, so a still screen makes none). Receivers ask for keyframes when they need
/// one; this only bounds how long a decoder that lost its place silently stays wrong.
pub(crate) const STATION_GOP: Gop = Gop(60);
/// The same bound in capture time, whatever the encoder's own GOP (which cannot change while
/// playing when the rate changes).
const KEYFRAME_EVERY_US: u64 = STATION_GOP.0 as u64 * 1_000_000;

/// Defaults a branch is built with; it stays OFF until [`ScreenEncoder::set_stream`].
fn default_params(kind: StreamKind) -> StreamParams {
    match kind {
        StreamKind::Thumb => StreamParams {
            width: 480,
            height: 270,
            fps: 5,
            bitrate_kbps: 250,
        },
        StreamKind::Full => StreamParams {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 2500,
        },
    }
}

/// State the appsink callback shares with the controlling side (lock-free: the callback runs
/// on the streaming thread and must never wait).
struct BranchShared {
    on: AtomicBool,
    /// Drop frames until the next keyframe (after switching on, a caps change or a drop).
    need_key: AtomicBool,
    /// A keyframe was asked of the encoder and has not come out yet: still pictures go to
    /// the encoder meanwhile, since it can only make the keyframe from a picture.
    key_asked: AtomicBool,
    /// Pictures the change gate held back (nothing had changed) and let through.
    still_skipped: AtomicU64,
    encoded: AtomicU64,
    seq: AtomicU64,
    dropped: AtomicU64,
    last_key_us: AtomicU64,
    /// Target frame interval (ns) and PTS of the last frame let through, for the thinning
    /// probe in front of videorate.
    interval_ns: AtomicU64,
    last_pts_ns: AtomicU64,
}

struct Branch {
    valve: gst::Element,
    raw_caps: gst::Element,
    encoder: gst::Element,
    appsink: gst_app::AppSink,
    shared: Arc<BranchShared>,
    params: Mutex<Option<StreamParams>>,
    gate: Arc<Mutex<ChangeGate>>,
}

/// Captures the screen and encodes the thumbnail and full streams on demand.
/// Dropping it (or [`ScreenEncoder::stop`]) sets the pipeline to `Null`.
pub struct ScreenEncoder {
    pipeline: gst::Pipeline,
    thumb: Branch,
    full: Branch,
    encoder_kind: EncoderKind,
    bus: BusWatch,
    /// Serialises `set_stream`, which decides the pipeline state from both branches.
    control: Mutex<()>,
}

impl ScreenEncoder {
    /// Builds and starts the capture; both streams start OFF. Frames go to `out` with
    /// `try_send`: when the receiver is full the frame is dropped and that stream waits for
    /// (and asks for) the next keyframe.
    pub fn start(
        source: CaptureSource,
        probe: &CodecProbe,
        out: mpsc::Sender<(StreamKind, EncodedFrame)>,
    ) -> Result<Self, MediaError> {
        let pipeline = gst::Pipeline::with_name("station-encoder");
        // Wall-clock capture times: base_time + PTS is then Unix time.
        pipeline.use_clock(Some(&crate::bus::realtime_clock()));
        let tee = build_source(&pipeline, &source)?;
        let thumb = build_branch(
            &pipeline,
            &tee,
            StreamKind::Thumb,
            probe.encoder,
            out.clone(),
        )?;
        let full = build_branch(&pipeline, &tee, StreamKind::Full, probe.encoder, out)?;
        crate::bus::start_pipeline("station encoder", &pipeline)?;
        wait_negotiated(&pipeline, &tee)?;
        // Both streams are OFF: stop capturing until one is switched on.
        let _ = pipeline.set_state(gst::State::Paused);
        let bus = BusWatch::spawn("station encoder", &pipeline);
        tracing::info!(source = ?source_name(&source), encoder = ?probe.encoder, "screen encoder started");
        Ok(ScreenEncoder {
            pipeline,
            thumb,
            full,
            encoder_kind: probe.encoder,
            bus,
            control: Mutex::new(()),
        })
    }

    /// Captures only while a stream is ON: a live source in PAUSED grabs nothing, so an
    /// idle station (outside monitoring hours) spends no CPU on its screen.
    fn apply_capture_state(&self) {
        let any_on = self.thumb.shared.on.load(Ordering::SeqCst)
            || self.full.shared.on.load(Ordering::SeqCst);
        let target = if any_on {
            gst::State::Playing
        } else {
            gst::State::Paused
        };
        if self.bus.errors().borrow().is_some() {
            return; // failed for good; stays in Null
        }
        if self.pipeline.set_state(target).is_err() {
            tracing::warn!(?target, "capture state change refused");
        }
    }

    fn branch(&self, kind: StreamKind) -> &Branch {
        match kind {
            StreamKind::Thumb => &self.thumb,
            StreamKind::Full => &self.full,
        }
    }

    /// Switches one stream on with these parameters, changes them, or (`None`) switches it
    /// off: nothing is encoded or sent for an OFF stream. Invalid parameters are logged and
    /// ignored (the stream keeps its previous state).
    pub fn set_stream(&self, kind: StreamKind, params: Option<StreamParams>) {
        let _serial = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let b = self.branch(kind);
        let mut current = b.params.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = params else {
            if current.take().is_some() {
                b.shared.on.store(false, Ordering::SeqCst);
                b.valve.set_property("drop", true);
                b.gate.lock().unwrap_or_else(|p| p.into_inner()).reset();
                self.apply_capture_state();
                tracing::debug!(?kind, "stream off");
            }
            return;
        };
        if let Err(e) = p.validate() {
            tracing::warn!(?kind, error = %e, "ignoring stream parameters");
            return;
        }
        if *current == Some(p) {
            return;
        }
        let was_on = current.is_some();
        let old = current.unwrap_or_else(|| default_params(kind));
        *current = Some(p);
        // videorate drop-only cannot make frames: never ask for more than the capture gives.
        let fps = p.fps.min(CAPTURE_FPS as u32);
        b.shared
            .interval_ns
            .store(1_000_000_000 / fps as u64, Ordering::SeqCst);
        if (old.width, old.height, old.fps.min(CAPTURE_FPS as u32)) != (p.width, p.height, fps) {
            b.raw_caps
                .set_property("caps", probe::raw_caps(&StreamParams { fps, ..p }));
            b.shared.need_key.store(true, Ordering::SeqCst);
        }
        if old.bitrate_kbps != p.bitrate_kbps {
            probe::set_bitrate(self.encoder_kind, &b.encoder, &p, STATION_GOP);
        }
        if !was_on {
            b.shared.need_key.store(true, Ordering::SeqCst);
            b.shared.on.store(true, Ordering::SeqCst);
            b.valve.set_property("drop", false);
            self.apply_capture_state();
        }
        ask_keyframe(&b.shared, &b.appsink);
        tracing::debug!(?kind, ?p, "stream on");
    }

    /// Asks for an IDR (with SPS/PPS) on one stream as soon as possible, still screen or not.
    pub fn request_keyframe(&self, kind: StreamKind) {
        let b = self.branch(kind);
        ask_keyframe(&b.shared, &b.appsink);
    }

    /// Pictures of one stream that were not encoded because the screen had not changed, and
    /// pictures that were encoded.
    pub fn still_skipped(&self, kind: StreamKind) -> (u64, u64) {
        let s = &self.branch(kind).shared;
        (
            s.still_skipped.load(Ordering::Relaxed),
            s.encoded.load(Ordering::Relaxed),
        )
    }

    /// True while the screen is being captured (some stream is ON).
    pub fn capturing(&self) -> bool {
        self.pipeline.current_state() == gst::State::Playing
    }

    /// The current parameters of a stream (`None` = OFF).
    pub fn stream(&self, kind: StreamKind) -> Option<StreamParams> {
        *self
            .branch(kind)
            .params
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Frames dropped because the receiver was full, per stream.
    pub fn dropped(&self, kind: StreamKind) -> u64 {
        self.branch(kind).shared.dropped.load(Ordering::Relaxed)
    }

    /// Becomes `Some` when the pipeline failed (it is then stopped for good).
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

impl Drop for ScreenEncoder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (at most 5 s) until the capture has fixed its caps. Changing a branch's caps while
/// the source is still in its first negotiation can make that negotiation fail.
fn wait_negotiated(pipeline: &gst::Pipeline, tee: &gst::Element) -> Result<(), MediaError> {
    let pad = tee.static_pad("sink").expect("tee has a sink pad");
    let bus = pipeline.bus().expect("a pipeline always has a bus");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pad.current_caps().is_none() {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(10),
            &[gst::MessageType::Error],
        ) {
            let _ = pipeline.set_state(gst::State::Null);
            if let gst::MessageView::Error(e) = msg.view() {
                return Err(PipelineError::from_message("station encoder", e).into());
            }
        }
        if std::time::Instant::now() > deadline {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(MediaError::Timeout(
                "the capture produced no picture within 5 s".into(),
            ));
        }
    }
    Ok(())
}

fn source_name(s: &CaptureSource) -> &'static str {
    match s {
        CaptureSource::Synthetic { .. } => "synthetic",
        CaptureSource::X11 { .. } => "x11",
        CaptureSource::PipeWire => "pipewire",
    }
}

fn build_err(what: &'static str) -> impl Fn(gst::glib::BoolError) -> MediaError {
    move |e| MediaError::Build {
        what,
        detail: e.to_string(),
    }
}

fn element(factory: &str) -> gst::element_factory::ElementBuilder<'_> {
    gst::ElementFactory::make(factory)
}

fn built(
    r: Result<gst::Element, gst::glib::BoolError>,
    factory: &str,
) -> Result<gst::Element, MediaError> {
    r.map_err(|_| MediaError::MissingElement(factory.to_string()))
}

/// Adds the capture part and returns the tee the branches hang off.
///
/// Synthetic: `videotestsrc is-live pattern=ball ! video/x-raw,I420,1280x720,30/1 ! textoverlay ! timeoverlay ! tee`
/// X11:       `ximagesrc use-damage=false show-pointer=true ! video/x-raw,framerate=30/1 ! tee`
fn build_source(
    pipeline: &gst::Pipeline,
    source: &CaptureSource,
) -> Result<gst::Element, MediaError> {
    let tee = built(element("tee").name("capture-tee").build(), "tee")?;
    let chain: Vec<gst::Element> = match source {
        CaptureSource::Synthetic { label, rgb } => {
            let argb =
                0xff00_0000u32 | (rgb[0] as u32) << 16 | (rgb[1] as u32) << 8 | rgb[2] as u32;
            // White ball on the station colour; a contrasting ball keeps motion visible.
            let src = built(
                element("videotestsrc")
                    .property("is-live", true)
                    .property_from_str("pattern", "ball")
                    .property_from_str("animation-mode", "running-time")
                    .property_from_str("motion", "wavy")
                    .property("background-color", argb)
                    .property("foreground-color", 0xffff_ffffu32)
                    .build(),
                "videotestsrc",
            )?;
            let (w, h, fps) = SYNTHETIC;
            let caps = built(
                element("capsfilter")
                    .property(
                        "caps",
                        gst::Caps::builder("video/x-raw")
                            .field("format", "I420")
                            .field("width", w)
                            .field("height", h)
                            .field("framerate", gst::Fraction::new(fps, 1))
                            .build(),
                    )
                    .build(),
                "capsfilter",
            )?;
            let text = built(
                element("textoverlay")
                    .property("text", label.as_str())
                    .property_from_str("valignment", "top")
                    .property_from_str("halignment", "left")
                    .property("font-desc", "Sans 32")
                    .property("shaded-background", true)
                    .build(),
                "textoverlay",
            )?;
            let clock = built(
                element("timeoverlay")
                    .property_from_str("valignment", "bottom")
                    .property_from_str("halignment", "right")
                    .property("font-desc", "Sans 24")
                    .property("shaded-background", true)
                    .build(),
                "timeoverlay",
            )?;
            vec![src, caps, text, clock]
        }
        CaptureSource::X11 { display } => {
            let display = display
                .clone()
                .or_else(|| std::env::var("DISPLAY").ok())
                .ok_or_else(|| {
                    MediaError::Unsupported(
                        "X11 capture needs a display: none given and $DISPLAY is unset".into(),
                    )
                })?;
            let src = built(
                element("ximagesrc")
                    .property("display-name", display.as_str())
                    .property("use-damage", false)
                    .property("show-pointer", true)
                    .build(),
                "ximagesrc",
            )?;
            let caps = built(
                element("capsfilter")
                    .property(
                        "caps",
                        gst::Caps::builder("video/x-raw")
                            .field("framerate", gst::Fraction::new(CAPTURE_FPS, 1))
                            .build(),
                    )
                    .build(),
                "capsfilter",
            )?;
            vec![src, caps]
        }
        CaptureSource::PipeWire => {
            return Err(MediaError::Unsupported(
                "PipeWire capture needs the ScreenCast portal (org.freedesktop.portal.ScreenCast) \
                 to hand over a PipeWire fd and node id; this build does not negotiate the portal \
                 yet — on Wayland run the station under an X11 session or XWayland"
                    .into(),
            ));
        }
    };
    let err = build_err("station capture");
    pipeline.add_many(&chain).map_err(&err)?;
    pipeline.add(&tee).map_err(&err)?;
    gst::Element::link_many(&chain).map_err(&err)?;
    chain
        .last()
        .expect("non-empty chain")
        .link(&tee)
        .map_err(&err)?;
    Ok(tee)
}

/// One stream branch.
///
/// `tee ! queue leaky=downstream max-size-buffers=2 ! [thinning probe] videorate drop-only=true
///  ! valve drop=true ! videoscale ! videoconvert ! video/x-raw,I420,W×H,F/1 ! <encoder> ! <profile caps>
///  ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink`
fn build_branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    kind: StreamKind,
    encoder_kind: EncoderKind,
    out: mpsc::Sender<(StreamKind, EncodedFrame)>,
) -> Result<Branch, MediaError> {
    let params = default_params(kind);
    let valve = built(element("valve").property("drop", true).build(), "valve")?;
    let queue = built(
        element("queue")
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 2u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", 0u64)
            .build(),
        "queue",
    )?;
    let rate = built(
        element("videorate").property("drop-only", true).build(),
        "videorate",
    )?;
    let scale = make("videoscale")?;
    let convert = make("videoconvert")?;
    let raw_caps = built(
        element("capsfilter")
            .property("caps", probe::raw_caps(&params))
            .build(),
        "capsfilter",
    )?;
    let encoder = probe::make_encoder(
        encoder_kind,
        &params,
        kind == StreamKind::Thumb,
        STATION_GOP,
        probe::RateMode::ScreenQuality,
    )?;
    let enc_caps = built(
        element("capsfilter")
            .property("caps", probe::encoder_output_caps(encoder_kind))
            .build(),
        "capsfilter",
    )?;
    let parse = built(
        element("h264parse")
            .property("config-interval", -1i32)
            .build(),
        "h264parse",
    )?;
    let au_caps = built(
        element("capsfilter")
            .property("caps", probe::annexb_au_caps())
            .build(),
        "capsfilter",
    )?;
    // async=false: an OFF branch never prerolls, and a sink that prerolls minutes after the
    // pipeline reached PLAYING would make the bin recalculate state and stall every branch.
    let appsink = gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .max_buffers(2)
        .drop(true)
        .enable_last_sample(false)
        .build();
    let shared = Arc::new(BranchShared {
        on: AtomicBool::new(false),
        need_key: AtomicBool::new(true),
        key_asked: AtomicBool::new(false),
        still_skipped: AtomicU64::new(0),
        encoded: AtomicU64::new(0),
        seq: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        last_key_us: AtomicU64::new(0),
        interval_ns: AtomicU64::new(1_000_000_000 / params.fps as u64),
        last_pts_ns: AtomicU64::new(u64::MAX),
    });
    let thin = shared.clone();
    rate.static_pad("sink")
        .expect("videorate has a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(pts) = info.buffer().and_then(|b| b.pts()).map(|t| t.nseconds()) else {
                return gst::PadProbeReturn::Ok;
            };
            let interval = thin.interval_ns.load(Ordering::Relaxed);
            let last = thin.last_pts_ns.load(Ordering::Relaxed);
            // A tenth of an interval of slack for capture jitter.
            if last != u64::MAX && pts >= last && pts - last < interval - interval / 10 {
                // Handled, not Drop: gstreamer-rs takes the buffer out of the probe info, and
                // GStreamer before 1.24.8 then unrefs a NULL on Drop (a CRITICAL per frame).
                // With Handled the buffer is released by gstreamer-rs and core leaves it be.
                return gst::PadProbeReturn::Handled;
            }
            thin.last_pts_ns.store(pts, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let gate = Arc::new(Mutex::new(ChangeGate::default()));
    let (gate_shared, probe_gate) = (shared.clone(), gate.clone());
    encoder
        .static_pad("sink")
        .expect("an encoder has a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let force = gate_shared.need_key.load(Ordering::SeqCst)
                || gate_shared.key_asked.load(Ordering::SeqCst);
            let mut gate = probe_gate.lock().unwrap_or_else(|p| p.into_inner());
            if still_picture(pad, buffer, &mut gate, force) {
                gate_shared.still_skipped.fetch_add(1, Ordering::Relaxed);
                // Handled, not Drop: see the thinning probe above.
                return gst::PadProbeReturn::Handled;
            }
            gate_shared.encoded.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let cb_shared = shared.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                on_encoded(sink, kind, &sample, &cb_shared, &out);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let elems: Vec<gst::Element> = vec![
        queue.clone(),
        rate,
        valve.clone(),
        scale,
        convert,
        raw_caps.clone(),
        encoder.clone(),
        enc_caps,
        parse,
        au_caps,
        appsink.clone().upcast(),
    ];
    let err = build_err("station stream branch");
    pipeline.add_many(&elems).map_err(&err)?;
    gst::Element::link_many(&elems).map_err(&err)?;
    tee.link(&queue).map_err(&err)?;
    Ok(Branch {
        valve,
        raw_caps,
        encoder,
        appsink,
        shared,
        params: Mutex::new(None),
        gate,
    })
}

/// True when `buffer` (the raw picture going into the encoder) shows exactly what the last
/// encoded picture showed and no keyframe is owed. A picture that cannot be read is encoded.
fn still_picture(
    pad: &gst::Pad,
    buffer: &gst::BufferRef,
    gate: &mut ChangeGate,
    force: bool,
) -> bool {
    use gstreamer_video::prelude::*;
    let Some(info) = pad
        .current_caps()
        .and_then(|c| gstreamer_video::VideoInfo::from_caps(&c).ok())
    else {
        return false;
    };
    let Ok(frame) = gstreamer_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info) else {
        return false;
    };
    // Every visible row of every plane: the bytes past a row's width are padding.
    let fi = info.format_info();
    let mut planes = Vec::with_capacity(frame.n_planes() as usize);
    for plane in 0..frame.n_planes() {
        let Ok(data) = frame.plane_data(plane) else {
            return false;
        };
        // The first component stored in this plane gives its row length and height.
        let Some(comp) = (0..fi.n_components()).find(|&c| fi.plane()[c as usize] == plane) else {
            return false;
        };
        let stride = frame.plane_stride()[plane as usize] as usize;
        let width = frame.comp_width(comp) as usize * fi.pixel_stride()[comp as usize] as usize;
        let height = frame.comp_height(comp) as usize;
        if height == 0 || width > stride || data.len() < stride * (height - 1) + width {
            return false;
        }
        planes.push((data, stride, width, height));
    }
    let rows = planes.iter().flat_map(|&(data, stride, width, height)| {
        (0..height).map(move |r| &data[r * stride..r * stride + width])
    });
    !gate.admit(rows, force)
}

/// Runs on the streaming thread for every encoded access unit: never blocks.
fn on_encoded(
    sink: &gst_app::AppSink,
    kind: StreamKind,
    sample: &gst::Sample,
    shared: &BranchShared,
    out: &mpsc::Sender<(StreamKind, EncodedFrame)>,
) {
    if !shared.on.load(Ordering::SeqCst) {
        // Encoded just before the valve closed: an OFF stream sends nothing.
        return;
    }
    let Some(buffer) = sample.buffer_owned() else {
        return;
    };
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    tracing::trace!(?kind, keyframe, pts = ?buffer.pts(), "encoded");
    if !keyframe && shared.need_key.load(Ordering::SeqCst) {
        return;
    }
    let capture_us = crate::bus::wallclock_us(
        sink.base_time(),
        crate::bus::running_time(sample, buffer.pts()),
    );
    if keyframe {
        shared.last_key_us.store(capture_us, Ordering::Relaxed);
        shared.key_asked.store(false, Ordering::SeqCst);
    } else if capture_us.saturating_sub(shared.last_key_us.load(Ordering::Relaxed))
        > KEYFRAME_EVERY_US
    {
        // Count from now so the request is not repeated for every frame until the IDR arrives.
        shared.last_key_us.store(capture_us, Ordering::Relaxed);
        ask_keyframe(shared, sink);
    }
    let Ok(mapped) = buffer.into_mapped_buffer_readable() else {
        return;
    };
    let frame = EncodedFrame {
        data: Bytes::from_owner(mapped),
        keyframe,
        capture_us,
        seq: shared.seq.load(Ordering::Relaxed),
    };
    match out.try_send((kind, frame)) {
        Ok(()) => {
            shared.seq.fetch_add(1, Ordering::Relaxed);
            if keyframe {
                shared.need_key.store(false, Ordering::SeqCst);
            }
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            let n = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // The receiver missed a reference frame: resync at a keyframe, asked for once.
            if !shared.need_key.swap(true, Ordering::SeqCst) {
                ask_keyframe(shared, sink);
                tracing::warn!(
                    ?kind,
                    dropped_total = n,
                    "receiver full; dropping until the next keyframe"
                );
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// Asks the encoder of a station stream for a keyframe and lets still pictures through to it
/// until that keyframe comes out.
fn ask_keyframe(shared: &BranchShared, sink: &gst_app::AppSink) {
    shared.key_asked.store(true, Ordering::SeqCst);
    send_keyframe_request(sink);
}

/// An upstream force-key-unit event from the appsink reaches h264parse (which then repeats
/// SPS/PPS) and the encoder.
pub(crate) fn send_keyframe_request(sink: &gst_app::AppSink) {
    let ev = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    if !sink.send_event(ev) {
        tracing::debug!("keyframe request not handled (pipeline stopped?)");
    }
}

impl std::fmt::Debug for ScreenEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenEncoder")
            .field("encoder", &self.encoder_kind)
            .field("thumb", &self.stream(StreamKind::Thumb))
            .field("full", &self.stream(StreamKind::Full))
            .finish()
    }
}

#[cfg(test)]
mod tests;
