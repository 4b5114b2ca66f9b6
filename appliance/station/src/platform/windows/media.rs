//! The live screen on Windows: the desktop copied with DXGI Desktop Duplication, or GDI where
//! Windows refuses it ([`super::capture`]), scaled and converted per stream
//! ([`super::picture`]), encoded ([`super::encoder`]) by Media Foundation's H.264 encoder
//! (the PC's hardware one when it has one) or, where none starts (under Wine, for one), by
//! OpenH264 (built from source into the agent: nothing to
//! install on the PC), on one capture thread.
//!
//! The stream rules are the Linux encoder's (`lanterne_media::ScreenEncoder`): each stream
//! (thumbnail, full) is off until the box switches it on and costs nothing while off; a
//! stream starts with a keyframe; a picture identical to the last one encoded is not encoded
//! (a still screen sends nothing); a keyframe is made on request, after a frame the receiver
//! could not take (then nothing but the keyframe is sent), and at least every
//! [`KEYFRAME_EVERY`] of encoded frames. Every access unit is Annex B, baseline profile (no
//! B-frames), with SPS and PPS in front of each IDR, whichever encoder made it.
//!
//! The demo player ([`DemoPlayer`]) decodes the box's demo access units with OpenH264's
//! decoder on a thread of its own and paints them in a window (`lanterne_winsys::video`):
//! full screen on the primary monitor (topmost; the session blocks input as the lock does),
//! or an ordinary window.
//!
//! DXGI duplication and the Media Foundation encoder can be tested only on a real PC, by
//! hand, and have not been yet; the automatic tests (under Wine, which has neither) use GDI
//! and OpenH264.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanterne_media::{EncodedFrame, StreamKind, StreamParams};
use lanterne_wire::{Capabilities, Stream, StreamSettings};
use tokio::sync::mpsc;

use super::capture::ScreenCapture;
use super::encoder::{EncoderKind, H264Encoder};
use super::picture::{bgra_to_i420, I420};
use crate::sources::{media_kind, params, VideoSource};

/// Longest run of encoded frames without a keyframe (a still screen encodes none, so it
/// makes none either): bounds how long a decoder that lost its place stays wrong.
pub const KEYFRAME_EVERY: Duration = Duration::from_secs(60);

/// Why the media side cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the OpenH264 encoder cannot start: {0}")]
    Encoder(String),
    #[error("cannot start the capture thread: {0}")]
    Thread(std::io::Error),
}

/// What [`init`] found: the encoder this PC uses.
#[derive(Clone, Copy, Debug)]
pub struct CodecProbe {
    encoder: EncoderKind,
}

impl CodecProbe {
    pub fn encoder(&self) -> EncoderKind {
        self.encoder
    }
}

/// Finds the encoder this PC uses: Media Foundation's if one encodes a small grey picture,
/// else OpenH264 (built into the agent). On a thread of its own, so that the caller's
/// thread is left out of COM.
pub fn init() -> Result<CodecProbe, MediaError> {
    let probe = || {
        let (width, height) = (320, 180);
        let mut encoder = new_encoder(StreamParams {
            width,
            height,
            fps: 10,
            bitrate_kbps: 250,
        })?;
        let grey = I420 {
            width: width as usize,
            height: height as usize,
            data: vec![128; (width * height * 3 / 2) as usize],
        };
        // A Media Foundation encoder that fails here gives way to OpenH264 (see `encoder`).
        encoder.encode(&grey, true).map_err(MediaError::Encoder)?;
        Ok(CodecProbe {
            encoder: encoder.kind(),
        })
    };
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("codec probe".into())
            .spawn_scoped(s, probe)
            .map_err(|e| MediaError::Encoder(format!("cannot start the codec probe: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(MediaError::Encoder("the codec probe panicked".into())))
    })
}

/// What a Windows station's live screen is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureSource {
    /// The whole desktop (every monitor): DXGI Desktop Duplication where Windows allows it,
    /// else GDI ([`ScreenCapture::open`]).
    Desktop,
    /// The whole desktop (every monitor) through GDI only.
    Gdi,
}

mod player;
pub use player::{DemoPlayer, PlayerConfig, PlayerOutput, PlayerStats};

fn new_encoder(p: StreamParams) -> Result<H264Encoder, MediaError> {
    H264Encoder::new(p).map_err(MediaError::Encoder)
}

/// One stream's switch and requests, shared with the capture thread.
#[derive(Debug, Default)]
struct StreamOrder {
    params: Option<StreamParams>,
    /// Bumped at each switch: the thread then starts the stream afresh (new encoder).
    generation: u64,
    keyframe_asked: bool,
}

#[derive(Debug, Default)]
struct Orders {
    streams: [StreamOrder; 2],
    stop: bool,
}

struct Shared {
    orders: Mutex<Orders>,
    wake: Condvar,
    dropped: [AtomicU64; 2],
    /// The last capture failed (logged once per run of failures).
    failing: AtomicBool,
    /// The capture in use is DXGI Desktop Duplication (else GDI), as the box is told.
    duplicating: AtomicBool,
    /// The encoder the latest stream used (a Media Foundation encoder that failed for one
    /// stream gives way to OpenH264), as the box is told.
    encoder: Mutex<EncoderKind>,
}

fn slot(kind: StreamKind) -> usize {
    match kind {
        StreamKind::Thumb => 0,
        StreamKind::Full => 1,
    }
}

const KINDS: [StreamKind; 2] = [StreamKind::Thumb, StreamKind::Full];

/// The desktop, encoded on this station.
pub struct LiveSource {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveSource {
    pub fn start(
        capture: CaptureSource,
        probe: &CodecProbe,
        out: mpsc::Sender<(StreamKind, EncodedFrame)>,
    ) -> Result<Self, MediaError> {
        let shared = Arc::new(Shared {
            orders: Mutex::new(Orders::default()),
            wake: Condvar::new(),
            dropped: [AtomicU64::new(0), AtomicU64::new(0)],
            failing: AtomicBool::new(false),
            duplicating: AtomicBool::new(false),
            encoder: Mutex::new(probe.encoder),
        });
        // The capture is opened on the thread that uses it (a Direct3D device's immediate
        // context belongs to one thread), before `capabilities` can be asked.
        let (opened_tx, opened) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("screen capture".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    let desktop = match capture {
                        CaptureSource::Desktop => ScreenCapture::open(),
                        CaptureSource::Gdi => ScreenCapture::gdi_only(),
                    };
                    let dxgi = desktop.kind() == "dxgi";
                    shared.duplicating.store(dxgi, Ordering::Relaxed);
                    let _ = opened_tx.send(());
                    capture_loop(&shared, &out, desktop)
                }
            })
            .map_err(MediaError::Thread)?;
        let _ = opened.recv();
        Ok(LiveSource {
            shared,
            thread: Some(thread),
        })
    }

    /// Switches `kind` on with `params`, or off.
    pub fn set(&self, kind: StreamKind, params: Option<StreamParams>) {
        let mut o = self.orders();
        let s = &mut o.streams[slot(kind)];
        s.params = params;
        s.generation += 1;
        s.keyframe_asked = false;
        self.shared.wake.notify_all();
    }

    /// Frames of `kind` the receiver could not take.
    pub fn dropped(&self, kind: StreamKind) -> u64 {
        self.shared.dropped[slot(kind)].load(Ordering::Relaxed)
    }

    fn orders(&self) -> std::sync::MutexGuard<'_, Orders> {
        self.shared.orders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl VideoSource for LiveSource {
    fn set_stream(&self, stream: Stream, settings: Option<StreamSettings>) -> Result<(), String> {
        let kind = media_kind(stream).ok_or("a station does not send the demo stream")?;
        let p = settings.map(params);
        if let Some(p) = &p {
            p.validate().map_err(|e| e.to_string())?;
        }
        self.set(kind, p);
        Ok(())
    }

    fn request_keyframe(&self, stream: Stream) {
        if let Some(kind) = media_kind(stream) {
            self.orders().streams[slot(kind)].keyframe_asked = true;
            self.shared.wake.notify_all();
        }
    }

    fn capabilities(&self) -> Capabilities {
        let duplicating = self.shared.duplicating.load(Ordering::Relaxed);
        Capabilities {
            capture: if duplicating { "dxgi" } else { "gdi" }.into(),
            encoder: self
                .shared
                .encoder
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .wire_name()
                .into(),
            screen: None,
        }
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        self.orders().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One running stream on the capture thread.
struct Running {
    generation: u64,
    params: StreamParams,
    encoder: H264Encoder,
    /// The last picture encoded (the change gate).
    last: Option<I420>,
    /// Encode the last picture once more although it did not change: a Media Foundation
    /// encoder may hand a picture out only when the next one goes in, and on a screen that
    /// then stays still no next one would come.
    repeat: bool,
    /// A keyframe is owed: the first frame, a request, a frame the receiver missed.
    need_key: bool,
    last_key: Instant,
    next_due: Instant,
    seq: u64,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn capture_loop(
    shared: &Shared,
    out: &mpsc::Sender<(StreamKind, EncodedFrame)>,
    mut desktop: ScreenCapture,
) {
    let mut running: [Option<Running>; 2] = [None, None];
    loop {
        // Take the orders: start, restart or stop streams; wait while none is on.
        let mut asked = [false; 2];
        {
            let mut o = shared.orders.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if o.stop || out.is_closed() {
                    return;
                }
                if o.streams.iter().any(|s| s.params.is_some()) {
                    break;
                }
                running = [None, None];
                o = shared.wake.wait(o).unwrap_or_else(|p| p.into_inner());
            }
            for (i, order) in o.streams.iter_mut().enumerate() {
                asked[i] = std::mem::take(&mut order.keyframe_asked);
                let current = running[i].as_ref().map(|r| r.generation);
                match order.params {
                    None => running[i] = None,
                    Some(p) if current != Some(order.generation) => {
                        running[i] = match new_encoder(p) {
                            Ok(encoder) => Some(Running {
                                generation: order.generation,
                                params: p,
                                encoder,
                                last: None,
                                repeat: false,
                                need_key: true,
                                last_key: Instant::now(),
                                next_due: Instant::now(),
                                seq: 0,
                            }),
                            Err(e) => {
                                tracing::warn!(kind = ?KINDS[i], "{e}");
                                order.params = None;
                                None
                            }
                        };
                    }
                    Some(_) => {}
                }
            }
        }
        for (r, asked) in running.iter_mut().zip(asked) {
            if let Some(r) = r {
                r.need_key |= asked;
            }
        }
        let now = Instant::now();
        let due: Vec<usize> = (0..2)
            .filter(|&i| running[i].as_ref().is_some_and(|r| r.next_due <= now))
            .collect();
        if !due.is_empty() {
            let grabbed = desktop.grab();
            let dxgi = desktop.kind() == "dxgi";
            shared.duplicating.store(dxgi, Ordering::Relaxed);
            match grabbed {
                Ok(picture) => {
                    if shared.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("screen capture works again");
                    }
                    let capture_us = now_us();
                    for i in due {
                        let r = running[i].as_mut().expect("due streams run");
                        r.next_due = now + Duration::from_secs(1) / r.params.fps.max(1);
                        encode_one(shared, out, KINDS[i], r, &picture, capture_us);
                    }
                }
                Err(e) => {
                    if !shared.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!("screen capture failed: {e}");
                    }
                    for r in running.iter_mut().flatten() {
                        r.next_due = now + Duration::from_millis(200);
                    }
                }
            }
        }
        // Sleep until the next stream is due, or an order comes.
        let next = running
            .iter()
            .flatten()
            .map(|r| r.next_due)
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        let o = shared.orders.lock().unwrap_or_else(|p| p.into_inner());
        let pending = o.stop || o.streams.iter().any(|s| s.keyframe_asked);
        let wait = next.saturating_duration_since(Instant::now());
        if !pending && !wait.is_zero() {
            let _ = shared.wake.wait_timeout(o, wait);
        }
    }
}

/// Scales, gates, encodes and sends one picture of one stream.
fn encode_one(
    shared: &Shared,
    out: &mpsc::Sender<(StreamKind, EncodedFrame)>,
    kind: StreamKind,
    r: &mut Running,
    picture: &lanterne_winsys::capture::Bgra,
    capture_us: u64,
) {
    let Some(pic) = bgra_to_i420(
        &picture.data,
        picture.width as usize,
        picture.height as usize,
        r.params.width as usize,
        r.params.height as usize,
    ) else {
        return;
    };
    if r.last_key.elapsed() > KEYFRAME_EVERY {
        r.need_key = true;
    }
    let unchanged = r.last.as_ref() == Some(&pic);
    if !r.need_key && unchanged && !r.repeat {
        return;
    }
    r.repeat = false;
    let result = r.encoder.encode(&pic, r.need_key);
    let kind_now = r.encoder.kind();
    *shared.encoder.lock().unwrap_or_else(|p| p.into_inner()) = kind_now;
    let (data, keyframe) = match result {
        Ok(Some(unit)) => unit,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(?kind, "encoding failed: {e}");
            r.need_key = true;
            return;
        }
    };
    if !unchanged {
        r.repeat = matches!(kind_now, EncoderKind::MediaFoundation { .. });
    }
    r.last = Some(pic);
    if data.is_empty() || (r.need_key && !keyframe) {
        return;
    }
    if keyframe {
        r.last_key = Instant::now();
    }
    let frame = EncodedFrame {
        data: Bytes::from(data),
        keyframe,
        capture_us,
        seq: r.seq,
    };
    match out.try_send((kind, frame)) {
        Ok(()) => {
            r.seq += 1;
            if keyframe {
                r.need_key = false;
            }
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            let n = shared.dropped[slot(kind)].fetch_add(1, Ordering::Relaxed) + 1;
            if !r.need_key {
                tracing::warn!(
                    ?kind,
                    dropped_total = n,
                    "receiver full; dropping until the next keyframe"
                );
            }
            r.need_key = true;
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    //! These run under Wine on Xvfb (scripts/test-windows.sh) or on a real Windows PC: they
    //! cover the whole desktop with a window of a known colour and read the streams back
    //! through OpenH264's decoder.

    use super::*;
    use lanterne_winsys::window::ColourWindow;
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    const TEAL: [u8; 3] = [20, 160, 150];

    fn nal_types(au: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        let mut i = 0;
        while i + 3 < au.len() {
            if au[i..i + 3] == [0, 0, 1] {
                types.push(au[i + 3] & 0x1f);
                i += 3;
            } else {
                i += 1;
            }
        }
        types
    }

    /// The decoded picture's size and the colour at its centre.
    fn centre(decoder: &mut Decoder, au: &[u8]) -> Option<((usize, usize), [u8; 3])> {
        let yuv = decoder.decode(au).ok()??;
        let (w, h) = yuv.dimensions();
        let mut rgb = vec![0u8; w * h * 3];
        yuv.write_rgb8(&mut rgb);
        let i = ((h / 2) * w + w / 2) * 3;
        Some(((w, h), [rgb[i], rgb[i + 1], rgb[i + 2]]))
    }

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 16)
    }

    fn settings(width: u32, height: u32) -> Option<StreamSettings> {
        Some(StreamSettings {
            width,
            height,
            fps: 10,
            bitrate_kbps: 500,
        })
    }

    async fn next(
        rx: &mut mpsc::Receiver<(StreamKind, EncodedFrame)>,
    ) -> (StreamKind, EncodedFrame) {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a frame within 20 s")
            .expect("the source is running")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_desktop_streams_as_the_box_asks_keyframes_first_and_on_request() {
        let _turn = crate::platform::windows::DESKTOP.lock().await;
        let _window = ColourWindow::cover_desktop(TEAL).expect("a window over the desktop");
        let probe = init().expect("an encoder starts");
        let (tx, mut rx) = mpsc::channel(8);
        let src = LiveSource::start(CaptureSource::Gdi, &probe, tx).unwrap();
        assert_eq!(src.capabilities().capture, "gdi");
        assert!(src.set_stream(Stream::Demo, settings(320, 180)).is_err());
        assert!(src.set_stream(Stream::Thumb, settings(321, 180)).is_err());

        // The thumbnail starts with a keyframe carrying its parameter sets, and shows the
        // window's colour once the window has been drawn.
        src.set_stream(Stream::Thumb, settings(320, 180)).unwrap();
        let (kind, first) = next(&mut rx).await;
        assert_eq!(kind, StreamKind::Thumb);
        assert!(first.keyframe);
        let types = nal_types(&first.data);
        assert!(
            types.starts_with(&[7, 8]) && types.contains(&5),
            "SPS, PPS, IDR: {types:?}"
        );
        let mut decoder = Decoder::new().unwrap();
        let mut seen = centre(&mut decoder, &first.data);
        while !seen.is_some_and(|(_, c)| close(c, TEAL)) {
            let (_, f) = next(&mut rx).await;
            seen = centre(&mut decoder, &f.data);
        }
        assert_eq!(seen.unwrap().0, (320, 180));

        // The screen is still: the next frame is the keyframe asked for, nothing before it.
        src.request_keyframe(Stream::Thumb);
        let (kind, f) = next(&mut rx).await;
        assert_eq!(kind, StreamKind::Thumb);
        assert!(
            f.keyframe,
            "a still screen sends nothing but the keyframe asked for"
        );

        // The full stream on request, at its own size, starting with a keyframe.
        src.set_stream(Stream::Thumb, None).unwrap();
        src.set_stream(Stream::Full, settings(1280, 720)).unwrap();
        let (kind, f) = loop {
            let (kind, f) = next(&mut rx).await;
            if kind == StreamKind::Full {
                break (kind, f);
            }
        };
        assert_eq!(kind, StreamKind::Full);
        assert!(f.keyframe);
        let mut decoder = Decoder::new().unwrap();
        let (size, colour) = centre(&mut decoder, &f.data).expect("a decodable keyframe");
        assert_eq!(size, (1280, 720));
        assert!(close(colour, TEAL), "{colour:?}");
        assert_eq!(src.dropped(StreamKind::Full), 0);
    }
}
