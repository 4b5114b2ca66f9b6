//! The demo player on Windows: the box's H.264 access units, decoded by OpenH264 (built into
//! the agent) on a thread of their own, cut to the teacher's region, and painted in a window
//! (`lanterne_winsys::video`); the colour at the picture's centre is sampled a few times a
//! second for the health report, with or without a window.
//!
//! ```text
//! push(AU) ─▶ [32 queued at most] ─▶ decode ─▶ [region] ─┬─▶ centre colour (every 250 ms)
//!                                                       └─▶ BGRX ─▶ window (latest only)
//! ```
//!
//! [`DemoPlayer::push`] never blocks: it is called from the station link's task. Frames are
//! dropped (and counted) when the decoder falls behind, after a gap in the sequence or a
//! frame that does not decode, until the next keyframe.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanterne_media::EncodedFrame;
use lanterne_winsys::video::{primary_monitor, Picture, Placement, VideoWindow};
use lanterne_winsys::window::Rect;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use super::CodecProbe;

/// Access units waiting for the decoder (about a second of a 30 fps demo, a few megabytes at
/// most): enough to ride out the window's first paint; beyond that the player is behind and
/// drops until the next keyframe.
const MAX_QUEUED: usize = 32;
/// Largest decoded picture shown (beyond it, frames are dropped): 4K UHD.
pub const MAX_PICTURE: (usize, usize) = (3840, 2160);
/// Least time between two samples of the centre colour.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// While the decoder is behind (access units waiting), a picture is painted at least this
/// often; the others are decoded (the next ones refer to them) but not converted nor painted.
const PAINT_WHEN_BEHIND: Duration = Duration::from_millis(200);
/// A windowed demo's window, at most (it is smaller on a smaller monitor).
const WINDOW_SIZE: (u32, u32) = (1024, 600);

/// Where decoded pictures go besides the health probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlayerOutput {
    /// Nowhere: display-less stations only decode.
    Probe,
    /// A window on this desktop: over the whole primary monitor (`fullscreen`, topmost) or
    /// an ordinary window.
    Window { fullscreen: bool },
}

/// What a player shows (the same fields as on Linux).
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
    /// (width << 16) | height of the pictures shown, 0 before.
    picture: AtomicU32,
    /// Nothing but a keyframe may go to the decoder.
    need_key: AtomicBool,
    /// Access units waiting for the decoder.
    queued: AtomicUsize,
}

/// A running demo player. Dropping it closes the window and stops decoding.
pub struct DemoPlayer {
    queue: Option<SyncSender<Bytes>>,
    shared: Arc<Shared>,
    last_seq: AtomicU64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for DemoPlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoPlayer")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Where a windowed demo's window goes: centred on the primary monitor.
fn windowed_rect() -> Rect {
    let m = primary_monitor();
    let width = WINDOW_SIZE.0.min(m.width * 8 / 10).max(160);
    let height = WINDOW_SIZE.1.min(m.height * 8 / 10).max(120);
    Rect {
        x: m.x + (m.width as i32 - width as i32) / 2,
        y: m.y + (m.height as i32 - height as i32) / 2,
        width,
        height,
    }
}

impl DemoPlayer {
    pub fn start(config: &PlayerConfig, _probe: &CodecProbe) -> Result<DemoPlayer, String> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| format!("the OpenH264 decoder cannot start: {e}"))?;
        let window = match config.output {
            PlayerOutput::Probe => None,
            PlayerOutput::Window { fullscreen } => {
                let placement = if fullscreen {
                    Placement::FullScreen(primary_monitor())
                } else {
                    Placement::Windowed(windowed_rect())
                };
                let title = format!("Lanterne — démonstration : {}", config.label);
                Some(
                    VideoWindow::open(placement, &title, &config.label)
                        .map_err(|e| format!("cannot open the demo window: {e}"))?,
                )
            }
        };
        let shared = Arc::new(Shared {
            need_key: AtomicBool::new(true),
            ..Shared::default()
        });
        let (queue, rx) = std::sync::mpsc::sync_channel(MAX_QUEUED);
        let region = config.region;
        let thread = std::thread::Builder::new()
            .name("demo player".into())
            .spawn({
                let shared = shared.clone();
                move || decode_loop(decoder, &rx, window, region, &shared)
            })
            .map_err(|e| format!("cannot start the demo player's thread: {e}"))?;
        tracing::info!(label = %config.label, output = ?config.output, region = ?config.region, "demo player started");
        Ok(DemoPlayer {
            queue: Some(queue),
            shared,
            last_seq: AtomicU64::new(u64::MAX),
            thread: Some(thread),
        })
    }

    /// Hands one access unit to the decoder, or drops it (never waits).
    pub fn push(&self, frame: EncodedFrame) {
        let need_key = &self.shared.need_key;
        let last = self.last_seq.swap(frame.seq, Ordering::Relaxed);
        if last != u64::MAX && frame.seq != last.wrapping_add(1) {
            // The box dropped frames for this station: references are missing.
            need_key.store(true, Ordering::Relaxed);
        }
        if frame.keyframe {
            need_key.store(false, Ordering::Relaxed);
        }
        let dropped = || {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        };
        if need_key.load(Ordering::Relaxed) {
            return dropped();
        }
        let Some(queue) = &self.queue else {
            return dropped();
        };
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        match queue.try_send(frame.data) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                need_key.store(true, Ordering::Relaxed);
                dropped();
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                dropped();
            }
        }
    }

    pub fn stats(&self) -> PlayerStats {
        let c = self.shared.centre.load(Ordering::Relaxed);
        let p = self.shared.picture.load(Ordering::Relaxed);
        PlayerStats {
            frames_decoded: self.shared.decoded.load(Ordering::Relaxed),
            frames_dropped: self.shared.dropped.load(Ordering::Relaxed),
            centre_rgb: (c != 0).then_some([(c >> 16) as u8, (c >> 8) as u8, c as u8]),
            picture: (p != 0).then_some((p >> 16, p & 0xffff)),
        }
    }
}

impl Drop for DemoPlayer {
    fn drop(&mut self) {
        // Closing the queue ends the thread, which closes the window.
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The part of a `width` × `height` picture that `region` asks for, clipped to the picture
/// (all of it when the region lies outside): (x, y, width, height).
fn clip(
    region: Option<(u32, u32, u32, u32)>,
    width: usize,
    height: usize,
) -> (usize, usize, usize, usize) {
    let Some((x, y, w, h)) = region else {
        return (0, 0, width, height);
    };
    let (x, y) = (x as usize, y as usize);
    if x >= width || y >= height {
        return (0, 0, width, height);
    }
    let w = (w as usize).min(width - x).max(1);
    let h = (h as usize).min(height - y).max(1);
    (x, y, w, h)
}

/// BT.601 limited range, what decoders assume for H.264 without colour information.
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let (c, d, e) = (i32::from(y) - 16, i32::from(u) - 128, i32::from(v) - 128);
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(298 * c + 409 * e),
        clamp(298 * c - 100 * d - 208 * e),
        clamp(298 * c + 516 * d),
    ]
}

/// The median of each channel over a 5 × 5 grid around the centre of the shown part of a
/// decoded picture, read from its planes (no conversion of the whole picture).
fn centre_colour(yuv: &impl YUVSource, (x, y, w, h): (usize, usize, usize, usize)) -> [u8; 3] {
    let (ys, us, vs) = yuv.strides();
    let (cx, cy) = (x + w / 2, y + h / 2);
    let mut samples: [Vec<u8>; 3] = Default::default();
    for dy in -2i64..=2 {
        for dx in -2i64..=2 {
            let sx = (cx as i64 + dx * 2).clamp(x as i64, (x + w - 1) as i64) as usize;
            let sy = (cy as i64 + dy * 2).clamp(y as i64, (y + h - 1) as i64) as usize;
            let rgb = yuv_to_rgb(
                yuv.y()[sy * ys + sx],
                yuv.u()[(sy / 2) * us + sx / 2],
                yuv.v()[(sy / 2) * vs + sx / 2],
            );
            for (c, s) in samples.iter_mut().enumerate() {
                s.push(rgb[c]);
            }
        }
    }
    samples.map(|mut s| {
        s.sort_unstable();
        s[s.len() / 2]
    })
}

fn decode_loop(
    mut decoder: Decoder,
    queue: &Receiver<Bytes>,
    window: Option<VideoWindow>,
    region: Option<(u32, u32, u32, u32)>,
    shared: &Shared,
) {
    let mut rgba = Vec::new();
    let mut last_sample: Option<Instant> = None;
    let mut last_paint: Option<Instant> = None;
    let mut warned_size = false;
    while let Ok(au) = queue.recv() {
        shared.queued.fetch_sub(1, Ordering::Relaxed);
        let yuv = match decoder.decode(&au) {
            Ok(Some(yuv)) => yuv,
            // Parameter sets alone, or a picture still being assembled.
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!("a demo frame did not decode: {e}");
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                shared.need_key.store(true, Ordering::Relaxed);
                continue;
            }
        };
        shared.decoded.fetch_add(1, Ordering::Relaxed);
        let (width, height) = yuv.dimensions();
        if width == 0 || height == 0 || width > MAX_PICTURE.0 || height > MAX_PICTURE.1 {
            if !warned_size {
                tracing::warn!(
                    width,
                    height,
                    "demo pictures larger than {MAX_PICTURE:?} are not shown"
                );
                warned_size = true;
            }
            continue;
        }
        let cut = clip(region, width, height);
        shared
            .picture
            .store(((cut.2 as u32) << 16) | cut.3 as u32, Ordering::Relaxed);
        if last_sample.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY) {
            let [r, g, b] = centre_colour(&yuv, cut);
            shared.centre.store(
                0x0100_0000 | (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b),
                Ordering::Relaxed,
            );
            last_sample = Some(Instant::now());
        }
        let Some(window) = &window else { continue };
        // Behind: newer pictures are waiting, paint only now and then.
        let behind = shared.queued.load(Ordering::Relaxed) > 0;
        if behind && last_paint.is_some_and(|t| t.elapsed() < PAINT_WHEN_BEHIND) {
            continue;
        }
        last_paint = Some(Instant::now());
        rgba.resize(width * height * 4, 0);
        yuv.write_rgba8(&mut rgba);
        let (x, y, w, h) = cut;
        let mut bgrx = Vec::with_capacity(w * h * 4);
        for row in y..y + h {
            let line = &rgba[(row * width + x) * 4..(row * width + x + w) * 4];
            for p in line.chunks_exact(4) {
                bgrx.extend_from_slice(&[p[2], p[1], p[0], 0]);
            }
        }
        if let Err(e) = window.present(Picture {
            width: w as u32,
            height: h as u32,
            bgrx,
        }) {
            tracing::warn!("cannot paint the demo: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Under Wine on Xvfb (scripts/test-windows.sh) or on a real PC: a stream that OpenH264
    //! encoded from a picture of known colours is played, and the colours are read back from
    //! the player's health probe and from the desktop with the same GDI capture the station
    //! streams.

    use super::super::{init, new_encoder};
    use super::*;
    use crate::platform::windows::picture::bgra_to_i420;
    use lanterne_media::StreamParams;
    use lanterne_winsys::capture::DesktopCapture;

    const ORANGE: [u8; 3] = [240, 128, 16];
    const PURPLE: [u8; 3] = [120, 40, 160];

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 16)
    }

    /// `n` access units of a 640 × 360 picture: its left half `left`, its right half
    /// `right`; the first is a keyframe.
    fn stream(left: [u8; 3], right: [u8; 3], n: usize) -> Vec<EncodedFrame> {
        let (w, h) = (640usize, 360usize);
        let mut bgra = Vec::with_capacity(w * h * 4);
        for _ in 0..h {
            for x in 0..w {
                let [r, g, b] = if x < w / 2 { left } else { right };
                bgra.extend_from_slice(&[b, g, r, 255]);
            }
        }
        let pic = bgra_to_i420(&bgra, w, h, w, h).unwrap();
        let mut encoder = new_encoder(StreamParams {
            width: w as u32,
            height: h as u32,
            fps: 10,
            bitrate_kbps: 2000,
        })
        .unwrap();
        let mut frames = Vec::new();
        for seq in 0..n {
            // A skipped picture is an empty frame (the player must take those too).
            let (data, _) = encoder.encode(&pic, seq == 0).unwrap().unwrap_or_default();
            frames.push(EncodedFrame {
                data: Bytes::from(data),
                keyframe: seq == 0,
                capture_us: 0,
                seq: seq as u64,
            });
        }
        frames
    }

    fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(Instant::now() < deadline, "{what} within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_full_screen_demo_paints_the_decoded_colours_over_the_primary_monitor() {
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let probe = init().unwrap();
        let player = DemoPlayer::start(
            &PlayerConfig {
                label: "poste-07".into(),
                region: None,
                output: PlayerOutput::Window { fullscreen: true },
            },
            &probe,
        )
        .unwrap();
        for f in stream(ORANGE, PURPLE, 3) {
            player.push(f);
        }
        wait_until("the centre colour sampled", || {
            player.stats().frames_decoded >= 1 && player.stats().centre_rgb.is_some()
        });
        assert_eq!(player.stats().picture, Some((640, 360)));
        let m = primary_monitor();
        let mut capture = DesktopCapture::new();
        // The picture fills the monitor's width (16:9 on 16:9): a quarter in from either side
        // is each half's colour.
        let (lx, rx, y) = (m.width / 4, m.width * 3 / 4, m.height / 2);
        wait_until("the demo on the desktop", || {
            let shot = capture.grab().unwrap();
            let (l, r) = (shot.rgb_at(lx, y).unwrap(), shot.rgb_at(rx, y).unwrap());
            close(l, ORANGE) && close(r, PURPLE)
        });
        drop(player);
        // The window is gone with the player.
        wait_until("the demo window closed", || {
            let shot = capture.grab().unwrap();
            !close(shot.rgb_at(lx, y).unwrap(), ORANGE)
        });
    }

    #[test]
    fn a_windowed_demo_paints_in_a_window_of_its_own() {
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let player = DemoPlayer::start(
            &PlayerConfig {
                label: "poste-02".into(),
                region: None,
                output: PlayerOutput::Window { fullscreen: false },
            },
            &init().unwrap(),
        )
        .unwrap();
        for f in stream(PURPLE, ORANGE, 2) {
            player.push(f);
        }
        let r = windowed_rect();
        let m = primary_monitor();
        assert!(
            r.width < m.width && r.height < m.height,
            "not full screen: {r:?}"
        );
        let (lx, rx, y) = (
            (r.x + r.width as i32 / 4) as u32,
            (r.x + r.width as i32 * 3 / 4) as u32,
            (r.y + r.height as i32 / 2) as u32,
        );
        let mut capture = DesktopCapture::new();
        wait_until("the demo in its window", || {
            let shot = capture.grab().unwrap();
            let (l, r) = (shot.rgb_at(lx, y).unwrap(), shot.rgb_at(rx, y).unwrap());
            close(l, PURPLE) && close(r, ORANGE)
        });
        // Outside the window, the desktop is not covered.
        let shot = capture.grab().unwrap();
        let corner = shot.rgb_at(2, m.height - 2).unwrap();
        assert!(
            !close(corner, PURPLE) && !close(corner, ORANGE),
            "{corner:?}"
        );
    }

    #[test]
    fn a_region_shows_only_that_part_and_a_gap_waits_for_the_next_keyframe() {
        let probe = init().unwrap();
        let player = DemoPlayer::start(
            &PlayerConfig {
                label: "poste-03".into(),
                region: Some((400, 0, 200, 360)),
                output: PlayerOutput::Probe,
            },
            &probe,
        )
        .unwrap();
        let frames = stream(ORANGE, PURPLE, 4);
        player.push(frames[0].clone());
        wait_until("the first picture decoded", || {
            player.stats().centre_rgb.is_some()
        });
        let stats = player.stats();
        assert_eq!(stats.picture, Some((200, 360)));
        assert!(
            close(stats.centre_rgb.unwrap(), PURPLE),
            "the region is in the right half: {:?}",
            stats.centre_rgb
        );
        // Frame 1 is lost on the way: 2 and 3 are dropped (no keyframe follows).
        player.push(frames[2].clone());
        player.push(frames[3].clone());
        assert_eq!(player.stats().frames_dropped, 2);
        // The next keyframe resumes the stream.
        let mut more = stream(ORANGE, PURPLE, 1);
        more[0].seq = 4;
        player.push(more.remove(0));
        assert_eq!(player.stats().frames_dropped, 2, "a keyframe resumes");
        assert_eq!(clip(Some((900, 0, 10, 10)), 640, 360), (0, 0, 640, 360));
        assert_eq!(
            clip(Some((600, 300, 100, 100)), 640, 360),
            (600, 300, 40, 60)
        );
    }
}
