//! Station side: the demo player, which decodes the stream the box relays and shows it.
//!
//! ```text
//! push(AU) ─▶ appsrc ─▶ h264parse ─▶ decoder ─▶ [videocrop] ─▶ videoconvert ─▶ tee ─┬─▶ queue(leaky) ─▶ [1 in 250 ms] ─▶ videoscale ─▶ RGB 64×36 ─▶ appsink   (health)
//!                                                                                   └─▶ queue(leaky) ─▶ videoscale ─▶ textoverlay(label) ─▶ videoconvert ─▶ ximagesink   (X11 window)
//! ```
//!
//! The health branch always exists: it samples the decoded picture a few times a second and
//! keeps the colour at its centre, so the box (and tests) can check that a station really
//! decodes what the source shows, with or without a display. The window branch exists on
//! stations with an X11 display.
//!
//! A region of the source is cut out here, on the receiving station (`videocrop`), rather
//! than on the box: the box forwards access units and never decodes a full stream, and
//! cropping on the source would change what the teacher sees in the focus view. The cost is
//! that every receiver decodes the whole picture.
//!
//! [`DemoPlayer::push`] never blocks: it is called from the station link's task. Frames are
//! dropped (and counted) when the decoder falls behind or after a gap in the sequence, until
//! the next keyframe.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::bus::{make, BusWatch};
use crate::{probe, CodecProbe, EncodedFrame, MediaError, PipelineError};

/// Size the health branch scales pictures to before reading the centre.
const PROBE_SIZE: (usize, usize) = (64, 36);
/// Least time between two sampled pictures on the health branch.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Access units waiting for the decoder; beyond that the player is behind and drops.
const MAX_QUEUED: u64 = 8;

/// Where decoded pictures go besides the health probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlayerOutput {
    /// Nowhere: display-less stations (simulated classrooms, benchmarks) only decode.
    Probe,
    /// A window on this X11 display (None: `$DISPLAY`); `size`: scaled (letterboxed) to
    /// fill a screen of that size, for a full-screen demo.
    X11Window {
        display: Option<String>,
        size: Option<(u32, u32)>,
    },
}

/// What a player shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerConfig {
    /// Drawn on the picture so the student knows whose screen this is.
    pub label: String,
    /// (x, y, width, height) of the source picture to show; None: all of it.
    pub region: Option<(u32, u32, u32, u32)>,
    pub output: PlayerOutput,
}

/// Counters since the player started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayerStats {
    pub frames_decoded: u64,
    pub frames_dropped: u64,
    /// Median colour of the centre of the last sampled picture.
    pub centre_rgb: Option<[u8; 3]>,
    /// Size of the pictures shown (after the region crop), once known.
    pub picture: Option<(u32, u32)>,
}

#[derive(Default)]
struct Shared {
    decoded: AtomicU64,
    dropped: AtomicU64,
    /// 0x01RRGGBB once a picture was sampled, 0 before.
    centre: AtomicU32,
}

/// A running demo player. Dropping it closes the window and stops decoding.
pub struct DemoPlayer {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    shared: Arc<Shared>,
    need_key: AtomicBool,
    last_seq: AtomicU64,
    bus: BusWatch,
    /// Where the shown pictures' caps can be read.
    tee: gst::Element,
}

impl DemoPlayer {
    pub fn start(config: &PlayerConfig, probe: &CodecProbe) -> Result<DemoPlayer, MediaError> {
        let err = |e: gst::glib::BoolError| MediaError::Build {
            what: "demo player",
            detail: e.to_string(),
        };
        let pipeline = gst::Pipeline::with_name("demo-player");
        let appsrc = gst_app::AppSrc::builder()
            .is_live(true)
            .do_timestamp(true)
            .format(gst::Format::Time)
            .caps(&probe::annexb_au_caps())
            .build();
        let parse = make("h264parse")?;
        let dec = probe::make_decoder(probe.decoder)?;
        let convert = make("videoconvert")?;
        let tee = make("tee")?;
        let mut chain: Vec<gst::Element> = vec![appsrc.clone().upcast(), parse, dec.clone()];
        if let Some((x, y, w, h)) = config.region {
            chain.push(cropper(x, y, w, h)?);
        }
        chain.push(convert);
        chain.push(tee.clone());
        pipeline.add_many(&chain).map_err(err)?;
        gst::Element::link_many(&chain).map_err(err)?;

        let shared = Arc::new(Shared::default());
        let counted = shared.clone();
        dec.static_pad("src")
            .expect("a decoder has a src pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counted.decoded.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        add_health_branch(&pipeline, &tee, shared.clone())?;
        if let PlayerOutput::X11Window { display, size } = &config.output {
            add_window_branch(&pipeline, &tee, &config.label, display.as_deref(), *size)?;
        }
        let bus = BusWatch::spawn("demo player", &pipeline);
        crate::bus::start_pipeline("demo player", &pipeline)?;
        tracing::info!(label = %config.label, output = ?config.output, region = ?config.region, decoder = ?probe.decoder, "demo player started");
        Ok(DemoPlayer {
            pipeline,
            appsrc,
            shared,
            need_key: AtomicBool::new(true),
            last_seq: AtomicU64::new(u64::MAX),
            bus,
            tee,
        })
    }

    /// Hands one access unit to the decoder, or drops it (never waits).
    pub fn push(&self, frame: EncodedFrame) {
        let last = self.last_seq.swap(frame.seq, Ordering::Relaxed);
        if last != u64::MAX && frame.seq != last.wrapping_add(1) {
            // The box dropped frames for this station: references are missing.
            self.need_key.store(true, Ordering::Relaxed);
        }
        if self.appsrc.current_level_buffers() >= MAX_QUEUED {
            self.need_key.store(true, Ordering::Relaxed);
        }
        if frame.keyframe && self.appsrc.current_level_buffers() < MAX_QUEUED {
            self.need_key.store(false, Ordering::Relaxed);
        }
        if self.need_key.load(Ordering::Relaxed) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let buf = gst::Buffer::from_slice(frame.data);
        if self.appsrc.push_buffer(buf).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> PlayerStats {
        let c = self.shared.centre.load(Ordering::Relaxed);
        PlayerStats {
            frames_decoded: self.shared.decoded.load(Ordering::Relaxed),
            frames_dropped: self.shared.dropped.load(Ordering::Relaxed),
            centre_rgb: (c != 0).then_some([(c >> 16) as u8, (c >> 8) as u8, c as u8]),
            picture: self
                .tee
                .static_pad("sink")
                .and_then(|p| p.current_caps())
                .and_then(|caps| {
                    let s = caps.structure(0)?;
                    Some((
                        s.get::<i32>("width").ok()? as u32,
                        s.get::<i32>("height").ok()? as u32,
                    ))
                }),
        }
    }

    /// Becomes `Some` when the pipeline failed (it is then stopped).
    pub fn errors(&self) -> tokio::sync::watch::Receiver<Option<PipelineError>> {
        self.bus.errors()
    }
}

impl Drop for DemoPlayer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// `videocrop left=x top=y`, with right and bottom set once the picture size is known.
fn cropper(x: u32, y: u32, w: u32, h: u32) -> Result<gst::Element, MediaError> {
    let crop = gst::ElementFactory::make("videocrop")
        .property("left", x as i32)
        .property("top", y as i32)
        .build()
        .map_err(|_| MediaError::MissingElement("videocrop".into()))?;
    let weak = crop.downgrade();
    crop.static_pad("sink")
        .expect("videocrop has a sink pad")
        .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view()) else {
                return gst::PadProbeReturn::Ok;
            };
            let s = c.caps().structure(0);
            let size =
                s.and_then(|s| Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?)));
            if let (Some((fw, fh)), Some(crop)) = (size, weak.upgrade()) {
                // A region reaching past the picture is clipped to it.
                let right = (fw - x as i32 - w as i32).max(0);
                let bottom = (fh - y as i32 - h as i32).max(0);
                crop.set_property("right", right);
                crop.set_property("bottom", bottom);
            }
            gst::PadProbeReturn::Ok
        });
    Ok(crop)
}

/// `queue leaky=downstream max-size-buffers=1 ! [one per 250 ms] ! videoscale ! videoconvert
///  ! video/x-raw,RGB,64x36 ! appsink`
fn add_health_branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    shared: Arc<Shared>,
) -> Result<(), MediaError> {
    let queue = leaky_queue()?;
    let scale = make("videoscale")?;
    let convert = make("videoconvert")?;
    let caps = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .field("width", PROBE_SIZE.0 as i32)
                .field("height", PROBE_SIZE.1 as i32)
                .build(),
        )
        .build()
        .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .max_buffers(1)
        .drop(true)
        .enable_last_sample(false)
        .build();
    // Sampling a few pictures a second is enough for a health report; scaling every decoded
    // picture would cost a receiver CPU for nothing.
    let started = Instant::now();
    // Milliseconds since `started` of the last sampled picture, +1 (0: none yet).
    let last = AtomicU64::new(0);
    queue
        .static_pad("src")
        .expect("queue has a src pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let now = started.elapsed().as_millis() as u64 + 1;
            let prev = last.load(Ordering::Relaxed);
            if prev != 0 && now - prev < SAMPLE_EVERY.as_millis() as u64 {
                // Handled, not Drop, for the reason given in the encoder's thinning probe
                // (GStreamer before 1.24.8 logs a CRITICAL per dropped buffer otherwise).
                return gst::PadProbeReturn::Handled;
            }
            last.store(now, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                if let Some(rgb) = sample
                    .buffer()
                    .and_then(|b| b.map_readable().ok())
                    .and_then(|m| centre_colour(&m))
                {
                    let packed = 0x0100_0000
                        | u32::from(rgb[0]) << 16
                        | u32::from(rgb[1]) << 8
                        | u32::from(rgb[2]);
                    shared.centre.store(packed, Ordering::Relaxed);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let elems: Vec<gst::Element> = vec![queue.clone(), scale, convert, caps, sink.upcast()];
    link_branch(pipeline, tee, &elems)
}

/// `queue leaky=downstream ! videoscale ! videoconvert ! textoverlay ! videoconvert ! ximagesink`
fn add_window_branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    label: &str,
    display: Option<&str>,
    size: Option<(u32, u32)>,
) -> Result<(), MediaError> {
    let queue = leaky_queue()?;
    // videoscale adds borders to keep the picture's aspect ratio in the asked size.
    let scale = make("videoscale")?;
    let fit = gst::ElementFactory::make("capsfilter")
        .build()
        .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
    if let Some((w, h)) = size {
        fit.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("width", w as i32)
                .field("height", h as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        );
    }
    let convert = make("videoconvert")?;
    let text = gst::ElementFactory::make("textoverlay")
        .property("text", format!("Écran de {label}"))
        .property_from_str("valignment", "top")
        .property_from_str("halignment", "center")
        .property("font-desc", "Sans 20")
        .property("shaded-background", true)
        .build()
        .map_err(|_| MediaError::MissingElement("textoverlay".into()))?;
    let convert2 = make("videoconvert")?;
    let mut sink = gst::ElementFactory::make("ximagesink").property("force-aspect-ratio", true);
    if let Some(d) = display {
        sink = sink.property("display", d);
    }
    let sink = sink
        .property("sync", false)
        .build()
        .map_err(|_| MediaError::MissingElement("ximagesink".into()))?;
    let elems = vec![queue, scale, fit, convert, text, convert2, sink];
    link_branch(pipeline, tee, &elems)
}

fn leaky_queue() -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make("queue")
        .property_from_str("leaky", "downstream")
        .property("max-size-buffers", 1u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", 0u64)
        .build()
        .map_err(|_| MediaError::MissingElement("queue".into()))
}

fn link_branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    elems: &[gst::Element],
) -> Result<(), MediaError> {
    let err = |e: gst::glib::BoolError| MediaError::Build {
        what: "demo player branch",
        detail: e.to_string(),
    };
    pipeline.add_many(elems).map_err(err)?;
    gst::Element::link_many(elems).map_err(err)?;
    tee.link(&elems[0]).map_err(err)?;
    Ok(())
}

/// Median of each channel over the middle quarter (in each direction) of a 64×36 RGB
/// picture. A median rather than a mean: a moving object or text crossing the centre must
/// not change the answer.
fn centre_colour(rgb: &[u8]) -> Option<[u8; 3]> {
    let (w, h) = PROBE_SIZE;
    // RGB rows are padded to 4 bytes.
    let stride = (w * 3).div_ceil(4) * 4;
    if rgb.len() < stride * (h - 1) + w * 3 {
        return None;
    }
    let mut ch: [Vec<u8>; 3] = Default::default();
    for y in (h * 3 / 8)..(h * 5 / 8) {
        for x in (w * 3 / 8)..(w * 5 / 8) {
            let i = y * stride + x * 3;
            for (c, v) in ch.iter_mut().zip(&rgb[i..i + 3]) {
                c.push(*v);
            }
        }
    }
    let median = |v: &mut Vec<u8>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    Some([median(&mut ch[0]), median(&mut ch[1]), median(&mut ch[2])])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CaptureSource, ScreenEncoder, StreamKind, StreamParams};

    #[test]
    fn the_centre_colour_ignores_a_small_object() {
        let (w, h) = PROBE_SIZE;
        let stride = (w * 3).div_ceil(4) * 4;
        let mut pic = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                let i = y * stride + x * 3;
                // Red background, a white 3×3 "ball" in the middle.
                let ball = x.abs_diff(w / 2) <= 1 && y.abs_diff(h / 2) <= 1;
                pic[i..i + 3].copy_from_slice(if ball {
                    &[255, 255, 255]
                } else {
                    &[200, 40, 40]
                });
            }
        }
        assert_eq!(centre_colour(&pic), Some([200, 40, 40]));
        assert_eq!(centre_colour(&pic[..10]), None);
    }

    /// A real stream from the station encoder, played with and without a region: the player
    /// decodes it and reports the source colour; before any frame it reports none.
    #[tokio::test]
    async fn the_player_decodes_a_station_stream_and_reports_its_colour() {
        crate::testutil::tracing();
        let probe = crate::init().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let enc = ScreenEncoder::start(
            CaptureSource::Synthetic {
                label: "source".into(),
                rgb: [40, 160, 60],
            },
            &probe,
            tx,
        )
        .unwrap();
        enc.set_stream(
            StreamKind::Full,
            Some(StreamParams {
                width: 640,
                height: 360,
                fps: 15,
                bitrate_kbps: 800,
            }),
        );
        for (region, shown) in [(None, (640, 360)), (Some((320, 180, 320, 180)), (320, 180))] {
            let player = DemoPlayer::start(
                &PlayerConfig {
                    label: "poste-02".into(),
                    region,
                    output: PlayerOutput::Probe,
                },
                &probe,
            )
            .unwrap();
            assert_eq!(player.stats().centre_rgb, None);
            enc.request_keyframe(StreamKind::Full);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (_, f) = crate::testutil::recv_within(&mut rx, 10, "encoded frame").await;
                player.push(f);
                let s = player.stats();
                if let (true, Some(c)) = (s.frames_decoded >= 10, s.centre_rgb) {
                    assert!(
                        crate::testutil::close(c, [40, 160, 60], 40),
                        "centre {c:?} with region {region:?}"
                    );
                    // The region is cut out of the 640×360 source.
                    assert_eq!(s.picture, Some(shown), "region {region:?}");
                    break;
                }
                assert!(Instant::now() < deadline, "player stats {s:?}");
            }
        }
    }

    /// The window branch on a real X server: the demo appears on the station's screen,
    /// labelled, where a capture of that screen sees the source's colour.
    #[tokio::test]
    async fn on_an_x11_display_the_demo_shows_in_a_window() {
        window_on_xvfb(None).await;
    }

    /// Full screen: the window is scaled to the screen's size, so the source's colour is
    /// also where the windowed demo leaves the desktop visible.
    #[tokio::test]
    async fn a_full_screen_demo_fills_the_screen() {
        window_on_xvfb(Some((1280, 720))).await;
    }

    async fn window_on_xvfb(size: Option<(u32, u32)>) {
        crate::testutil::tracing();
        let x = crate::testutil::Xvfb::start();
        let status = std::process::Command::new("xsetroot")
            .args(["-display", &x.display, "-solid", "#000000"])
            .status()
            .expect("xsetroot is missing (apt-get install x11-xserver-utils)");
        assert!(status.success());
        let probe = crate::init().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let source = ScreenEncoder::start(
            CaptureSource::Synthetic {
                label: "source".into(),
                rgb: [40, 160, 60],
            },
            &probe,
            tx,
        )
        .unwrap();
        source.set_stream(
            StreamKind::Full,
            Some(StreamParams {
                width: 640,
                height: 360,
                fps: 15,
                bitrate_kbps: 800,
            }),
        );
        let player = DemoPlayer::start(
            &PlayerConfig {
                label: "poste-01".into(),
                region: None,
                output: PlayerOutput::X11Window {
                    display: Some(x.display.clone()),
                    size,
                },
            },
            &probe,
        )
        .unwrap();
        while player.stats().frames_decoded < 15 {
            let (_, f) = crate::testutil::recv_within(&mut rx, 10, "encoded frame").await;
            player.push(f);
        }
        assert!(player.errors().borrow().is_none());

        // Without a window manager the 640×360 window sits at the top left of the 1280×720
        // screen: the top-left quarter of a capture of that screen.
        let (ctx, mut crx) = tokio::sync::mpsc::channel(64);
        let capture = ScreenEncoder::start(
            CaptureSource::X11 {
                display: Some(x.display.clone()),
            },
            &probe,
            ctx,
        )
        .unwrap();
        capture.set_stream(
            StreamKind::Thumb,
            Some(StreamParams {
                width: 320,
                height: 180,
                fps: 5,
                bitrate_kbps: 300,
            }),
        );
        // The screen is still now: under rate control it sends its keyframe and nothing
        // more until it changes, so that one picture is what there is to look at.
        let mut aus = Vec::new();
        while aus.is_empty() {
            let (kind, f) = crate::testutil::recv_within(&mut crx, 10, "captured frame").await;
            if kind == StreamKind::Thumb && (f.keyframe || !aus.is_empty()) {
                aus.push(f.data);
            }
        }
        let pics = crate::testutil::decode(&aus);
        let p = pics.last().unwrap();
        let inside = p.dominant(40, 40, 60, 36);
        assert!(
            crate::testutil::close(inside, [40, 160, 60], 40),
            "inside the player window: {inside:?}"
        );
        let outside = p.dominant(220, 120, 60, 40);
        let expected = if size.is_some() {
            [40, 160, 60]
        } else {
            [0, 0, 0]
        };
        assert!(
            crate::testutil::close(outside, expected, 40),
            "bottom right of the screen ({size:?}): {outside:?}"
        );
    }
}
