//! Box side: every station's thumbnail decoded, composed into one canvas, encoded once.
//!
//! ```text
//! push(id, AU) ─▶ appsrc ─▶ [h264parse] ─▶ decoder ─▶ videoscale ─▶ videoconvert ─▶ I420 tile size ─▶ appsink   (one small pipeline per station)
//!                                                                                                       │ latest frame, pulled each tick
//! composer thread (owns the I420 canvas, ticks at config.fps) ◀─────────────────────────────────────────┘
//!     └─▶ appsrc ─▶ encoder ─▶ h264parse ─▶ appsink ─▶ broadcast<Arc<MosaicFrame>>
//! ```
//!
//! Composition is done in Rust rather than with the `compositor` element: an aggregator
//! waits for (or times out on) every live input, so a station that goes silent or offline
//! would pace or stall the whole mosaic, and adding or removing pads at runtime needs care.
//! Here the composer never waits for a station: each tick it takes whatever newest picture
//! each tile's appsink holds (max-buffers=1, drop=true) and keeps the old pixels otherwise.
//! Per-station decode pipelines also isolate failures: a corrupt stream restarts one tile.
//!
//! A tile's decoder runs only while its station sends: it starts at the first keyframe and is
//! stopped (its pipeline set to `Null`) after [`TILE_RELEASE_AFTER`] without a frame. libav's
//! H.264 context alone is about 780 kB, allocated zeroed, so 40 idle decoders held 30+ MB for
//! nothing; under the stations' rate control a still screen sends nothing at all, so in a real
//! room many tiles are idle even while the teacher watches, and all of them are when nobody
//! does. The tile keeps its last picture on the canvas; when the station sends again, the
//! first frame is usually an inter frame, which a fresh decoder cannot use: the tile asks for
//! a keyframe ([`TileFeedback::WantKeyframe`]) and starts the decoder on it.
//!
//! Nobody watching, nothing done: [`Mosaic::set_active`]`(false)` stops composing and
//! encoding (the stations are told to stop sending, so the tile decoders idle too). When it
//! becomes active again the canvas starts afresh (no tile frozen on a picture from before
//! the pause) and the first encoded frame is a keyframe.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use tokio::sync::broadcast;

use crate::bus::{make, BusWatch};
use crate::probe::{self, DecoderKind};
use crate::{CodecProbe, EncodedFrame, MediaError, StreamParams};

/// What the mosaic stream looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MosaicConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl Default for MosaicConfig {
    fn default() -> Self {
        MosaicConfig {
            width: 1280,
            height: 720,
            fps: 10,
            bitrate_kbps: 1500,
        }
    }
}

/// One station in the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileInfo {
    /// Station id.
    pub id: u32,
}

/// Where one station's tile is on the canvas (pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRect {
    pub id: u32,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// The grid the web UI draws names over and maps taps with; tile index = position in `tiles`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MosaicLayout {
    pub width: u32,
    pub height: u32,
    pub tiles: Vec<TileRect>,
}

/// One encoded mosaic picture.
#[derive(Clone, Debug)]
pub struct MosaicFrame {
    /// Annex B access unit, SPS/PPS in front of every IDR.
    pub data: Bytes,
    pub keyframe: bool,
    pub seq: u64,
    /// Tiles that show a new station frame since the previous mosaic frame:
    /// (tile index, capture_us of the newest station frame now shown there).
    pub updates: Vec<(u16, u64)>,
    /// Unix-epoch µs when the encoder delivered this frame.
    pub encoded_us: u64,
}

/// Counters for one tile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TileStats {
    pub id: u32,
    /// Access units handed to [`Mosaic::push`].
    pub frames_in: u64,
    /// Decoded pictures put on the canvas.
    pub frames_shown: u64,
    /// Access units dropped because the tile's queue was full (or while resyncing after that).
    pub dropped: u64,
    /// Errors and warnings posted by the tile's pipeline (libav conceals most bitstream
    /// damage without reporting it, so this counts failures, not damaged frames).
    pub decode_errors: u64,
    /// Times the tile's pipeline was restarted after an error.
    pub restarts: u64,
    /// The tile's decoder is running (it stops after [`TILE_RELEASE_AFTER`] without frames).
    pub decoding: bool,
    /// Times the decoder was started (on a keyframe after being idle or new).
    pub decoder_starts: u64,
}

/// Counters for the whole mosaic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MosaicStats {
    /// Encoded mosaic frames broadcast.
    pub frames_out: u64,
    /// Canvas ticks skipped because the encoder was still busy.
    pub ticks_skipped: u64,
    pub tiles: Vec<TileStats>,
    /// Sum of the tiles' decode errors, including tiles since removed.
    pub decode_errors: u64,
}

/// Access units a tile may hold before decode; beyond this the station is ahead of the
/// decoder and frames are dropped until the next keyframe.
const TILE_QUEUE: u64 = 4;
/// A tile waiting for a keyframe asks its station for one at most this often. Stations make
/// keyframes only when asked (a still screen sends nothing for minutes), so a tile that lost
/// its place must ask rather than wait for one.
const TILE_KEYFRAME_GAP: Duration = Duration::from_millis(500);
/// A tile whose station sent nothing for this long stops its decoder (see the module docs).
pub(crate) const TILE_RELEASE_AFTER: Duration = Duration::from_secs(5);

/// What [`Mosaic::push`] needs from the station that sent the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a tile that lost its place stays frozen unless its station is asked for a keyframe"]
pub enum TileFeedback {
    /// Nothing.
    Ok,
    /// The tile cannot decode until a keyframe: ask the station's thumbnail stream for one.
    WantKeyframe,
}
/// Spacing between tiles, even so every tile starts on a 4:2:0 chroma sample.
const GAP: u32 = 4;
/// Offline tiles: dark grey (RGB 48,48,48 in BT.601 limited range).
const OFFLINE_YUV: (u8, u8, u8) = (57, 128, 128);
/// Empty canvas and tiles with no picture yet: black.
const BLACK_YUV: (u8, u8, u8) = (16, 128, 128);

/// Grid for `n` tiles: cols = ceil(sqrt(n)), 16:9 tiles as large as fit, centred.
pub(crate) fn compute_layout(width: u32, height: u32, ids: &[u32]) -> MosaicLayout {
    let n = ids.len() as u32;
    let mut tiles = Vec::with_capacity(ids.len());
    if n > 0 {
        let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n);
        let rows = n.div_ceil(cols);
        let cell_w = width.saturating_sub(GAP * (cols + 1)) / cols;
        let cell_h = height.saturating_sub(GAP * (rows + 1)) / rows;
        let tw = (cell_w.min(cell_h * 16 / 9) & !1).max(2);
        let th = ((tw * 9 / 16) & !1).max(2);
        let grid_w = cols * tw + (cols - 1) * GAP;
        let grid_h = rows * th + (rows - 1) * GAP;
        let x0 = (width.saturating_sub(grid_w) / 2) & !1;
        let y0 = (height.saturating_sub(grid_h) / 2) & !1;
        for (i, &id) in ids.iter().enumerate() {
            let (col, row) = (i as u32 % cols, i as u32 / cols);
            tiles.push(TileRect {
                id,
                x: x0 + col * (tw + GAP),
                y: y0 + row * (th + GAP),
                w: tw,
                h: th,
            });
        }
    }
    MosaicLayout {
        width,
        height,
        tiles,
    }
}

/// Counters shared with the tile's bus sync handler (streaming threads).
#[derive(Default)]
struct TileCounters {
    frames_in: AtomicU64,
    frames_shown: AtomicU64,
    dropped: AtomicU64,
    decode_errors: AtomicU64,
    restarts: AtomicU64,
    decoder_starts: AtomicU64,
    /// Set by the bus handler; the composer restarts the pipeline.
    failed: AtomicBool,
}

/// One station's tile: its decoder pipeline while the station sends, and what outlives it.
struct TileFeed {
    id: u32,
    decoder: DecoderKind,
    need_key: AtomicBool,
    online: AtomicBool,
    counters: Arc<TileCounters>,
    /// When this tile last asked its station for a keyframe.
    key_asked: Mutex<Option<Instant>>,
    /// The decoder pipeline (None while idle), the tile size and when the last frame came;
    /// `push` starts the pipeline and the composer stops it, both under this lock.
    decoding: Mutex<Decoding>,
}

struct Decoding {
    pipe: Option<TilePipeline>,
    size: (u32, u32),
    last_frame: Instant,
}

/// The running part of a tile. Dropping it sets the pipeline to `Null` and frees its
/// elements, the decoder's context with them.
struct TilePipeline {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    size_caps: gst::Element,
    appsink: gst_app::AppSink,
}

impl TilePipeline {
    /// `appsrc is-live format=time caps=video/x-h264,byte-stream,au ! [h264parse] ! <decoder>
    ///  ! videoscale ! videoconvert ! video/x-raw,I420,W×H ! appsink max-buffers=1 drop=true`
    ///
    /// libav takes the stations' Annex B access units as they are (SPS/PPS ride in front of
    /// every IDR), so its tiles have no h264parse: a parser is about 250 kB per tile, 10 MB
    /// for a room of 40 (measured with 40 idle tiles). The other decoders keep one.
    fn start(
        id: u32,
        decoder: DecoderKind,
        (w, h): (u32, u32),
        counters: &Arc<TileCounters>,
    ) -> Result<TilePipeline, MediaError> {
        let pipeline = gst::Pipeline::with_name(&format!("tile-{id}"));
        let appsrc = gst_app::AppSrc::builder()
            .is_live(true)
            .format(gst::Format::Time)
            .caps(&probe::annexb_au_caps())
            .build();
        let parse = match decoder {
            DecoderKind::Avdec => None,
            DecoderKind::V4l2 | DecoderKind::OpenH264 => Some(make("h264parse")?),
        };
        let dec = probe::make_decoder(decoder)?;
        let scale = make("videoscale")?;
        let convert = make("videoconvert")?;
        let size_caps = gst::ElementFactory::make("capsfilter")
            .property("caps", tile_caps(w, h))
            .build()
            .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
        let appsink = gst_app::AppSink::builder()
            .sync(false)
            .async_(false)
            .max_buffers(1)
            .drop(true)
            .enable_last_sample(false)
            .build();
        let mut elems: Vec<&gst::Element> = vec![appsrc.upcast_ref()];
        elems.extend(parse.as_ref());
        elems.extend([&dec, &scale, &convert, &size_caps, appsink.upcast_ref()]);
        let err = |e: gst::glib::BoolError| MediaError::Build {
            what: "mosaic tile",
            detail: e.to_string(),
        };
        pipeline.add_many(&elems).map_err(err)?;
        gst::Element::link_many(&elems).map_err(err)?;

        // A sync handler instead of a watch thread per tile: 32 tiles would mean 32 threads
        // polling. It only flags and counts; the composer restarts a failed tile.
        let c = counters.clone();
        pipeline
            .bus()
            .expect("a pipeline always has a bus")
            .set_sync_handler(move |_, msg| {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        c.decode_errors.fetch_add(1, Ordering::Relaxed);
                        if !c.failed.swap(true, Ordering::SeqCst) {
                            let err = crate::PipelineError::from_message("mosaic tile", e);
                            tracing::warn!(station = id, error = %err, "tile pipeline failed; restarting it");
                        }
                    }
                    gst::MessageView::Warning(_) => {
                        c.decode_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
                gst::BusSyncReply::Drop
            });
        let tile = TilePipeline {
            pipeline,
            appsrc,
            size_caps,
            appsink,
        };
        crate::bus::start_pipeline("mosaic tile", &tile.pipeline)?;
        Ok(tile)
    }
}

impl Drop for TilePipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl TileFeed {
    /// A tile without a decoder yet: it starts at the station's first keyframe.
    fn new(id: u32, decoder: DecoderKind, w: u32, h: u32) -> TileFeed {
        TileFeed {
            id,
            decoder,
            need_key: AtomicBool::new(true),
            online: AtomicBool::new(true),
            counters: Arc::default(),
            key_asked: Mutex::new(None),
            decoding: Mutex::new(Decoding {
                pipe: None,
                size: (w, h),
                last_frame: Instant::now(),
            }),
        }
    }

    fn decoding(&self) -> std::sync::MutexGuard<'_, Decoding> {
        self.decoding.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After an error: the decoder is dropped and starts again at the next keyframe (frames
    /// pushed meanwhile must not reach a decoder without its parameter sets). The restart is
    /// counted last, once the tile is ready again (stats readers rely on that order).
    fn restart(&self) {
        let mut d = self.decoding();
        self.need_key.store(true, Ordering::SeqCst);
        d.pipe = None;
        self.counters.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts the decoder (on a keyframe); false when it would not start (counted as a
    /// decode error; the next keyframe tries again).
    fn start_decoder(&self, d: &mut Decoding) -> bool {
        if d.pipe.is_some() {
            return true;
        }
        match TilePipeline::start(self.id, self.decoder, d.size, &self.counters) {
            Ok(p) => {
                d.pipe = Some(p);
                self.counters.decoder_starts.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(station = self.id, error = %e, "tile decoder did not start");
                self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Drops the decoder of a tile whose station has been silent for [`TILE_RELEASE_AFTER`].
    fn release_if_idle(&self, now: Instant) {
        let mut d = self.decoding();
        if d.pipe.is_some() && now.duration_since(d.last_frame) >= TILE_RELEASE_AFTER {
            self.need_key.store(true, Ordering::SeqCst);
            d.pipe = None;
        }
    }

    /// The newest decoded picture, if one came since the last call.
    fn newest(&self) -> Option<gst::Sample> {
        self.decoding()
            .pipe
            .as_ref()
            .and_then(|p| p.appsink.try_pull_sample(gst::ClockTime::ZERO))
    }

    /// The tile's size changed (relayout); a running decoder scales to it from now on.
    fn resize(&self, w: u32, h: u32) {
        let mut d = self.decoding();
        d.size = (w, h);
        if let Some(p) = &d.pipe {
            p.size_caps.set_property("caps", tile_caps(w, h));
        }
    }

    /// Waiting for a keyframe: ask for one unless asked less than [`TILE_KEYFRAME_GAP`] ago.
    fn want_keyframe(&self) -> TileFeedback {
        let mut asked = self.key_asked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if asked.is_some_and(|t| now.duration_since(t) < TILE_KEYFRAME_GAP) {
            return TileFeedback::Ok;
        }
        *asked = Some(now);
        TileFeedback::WantKeyframe
    }

    fn stats(&self) -> TileStats {
        let c = &self.counters;
        TileStats {
            id: self.id,
            frames_in: c.frames_in.load(Ordering::Relaxed),
            frames_shown: c.frames_shown.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            restarts: c.restarts.load(Ordering::Relaxed),
            decoding: self.decoding().pipe.is_some(),
            decoder_starts: c.decoder_starts.load(Ordering::Relaxed),
        }
    }
}

/// `video/x-raw,format=I420,width=W,height=H,pixel-aspect-ratio=1/1`
fn tile_caps(w: u32, h: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

/// The grid and its feeds, read by the composer each tick and by `push`.
struct Grid {
    layout: MosaicLayout,
    feeds: Vec<Arc<TileFeed>>,
    by_id: HashMap<u32, Arc<TileFeed>>,
    /// Changes on every relayout so the composer repaints the background.
    generation: u64,
    /// Online flags, kept for stations not (yet) in the grid too.
    online: HashMap<u32, bool>,
}

/// A mosaic frame handed to the encoder, waiting for its access unit.
struct Pending {
    running_time: gst::ClockTime,
    seq: u64,
    updates: Vec<(u16, u64)>,
}

struct Inner {
    config: MosaicConfig,
    decoder: DecoderKind,
    grid: Mutex<Grid>,
    /// Serialises `set_tiles` (which builds pipelines outside the grid lock).
    relayout: Mutex<()>,
    tx: broadcast::Sender<Arc<MosaicFrame>>,
    stop: AtomicBool,
    /// Someone may watch: compose and encode (see [`Mosaic::set_active`]).
    active: AtomicBool,
    frames_out: AtomicU64,
    ticks_skipped: AtomicU64,
    /// Decode errors of tiles that were removed.
    retired_errors: AtomicU64,
    enc_src: gst_app::AppSrc,
    enc_sink: gst_app::AppSink,
}

/// The composed class view. Cheap to share (`Arc<Mosaic>`); every method is non-blocking
/// except [`Mosaic::set_tiles`], which builds decoders for new stations.
pub struct Mosaic {
    inner: Arc<Inner>,
    enc_pipeline: gst::Pipeline,
    enc_bus: BusWatch,
    composer: Option<JoinHandle<()>>,
}

impl Mosaic {
    /// Starts the encoder and the composer (an empty, black canvas until tiles are set).
    pub fn start(
        config: MosaicConfig,
        probe: &CodecProbe,
    ) -> Result<(Mosaic, broadcast::Receiver<Arc<MosaicFrame>>), MediaError> {
        let params = StreamParams {
            width: config.width,
            height: config.height,
            fps: config.fps,
            bitrate_kbps: config.bitrate_kbps,
        };
        params.validate()?;
        let (enc_pipeline, enc_src, enc_sink) = build_encoder(probe, &params)?;
        let (tx, rx) = broadcast::channel(16);
        let inner = Arc::new(Inner {
            config,
            decoder: probe.decoder,
            grid: Mutex::new(Grid {
                layout: compute_layout(config.width, config.height, &[]),
                feeds: Vec::new(),
                by_id: HashMap::new(),
                generation: 0,
                online: HashMap::new(),
            }),
            relayout: Mutex::new(()),
            tx,
            stop: AtomicBool::new(false),
            active: AtomicBool::new(true),
            frames_out: AtomicU64::new(0),
            ticks_skipped: AtomicU64::new(0),
            retired_errors: AtomicU64::new(0),
            enc_src,
            enc_sink,
        });
        let pending: Arc<Mutex<VecDeque<Pending>>> = Arc::default();
        install_output(&inner, pending.clone());
        crate::bus::start_pipeline("mosaic encoder", &enc_pipeline)?;
        let enc_bus = BusWatch::spawn("mosaic encoder", &enc_pipeline);
        let composer_inner = inner.clone();
        let composer = std::thread::Builder::new()
            .name("mosaic composer".into())
            .spawn(move || compose_loop(&composer_inner, &pending))
            .map_err(|e| MediaError::Build {
                what: "mosaic",
                detail: format!("spawning the composer: {e}"),
            })?;
        tracing::info!(?config, encoder = ?probe.encoder, decoder = ?probe.decoder, "mosaic started");
        Ok((
            Mosaic {
                inner,
                enc_pipeline,
                enc_bus,
                composer: Some(composer),
            },
            rx,
        ))
    }

    /// Another receiver of the mosaic stream (start it at a keyframe: see `request_keyframe`).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<MosaicFrame>> {
        self.inner.tx.subscribe()
    }

    /// Sets the stations shown, in id order. New stations get a decoder; removed ones lose
    /// theirs; the grid is recomputed at once (see [`Mosaic::layout`]).
    pub fn set_tiles(&self, tiles: Vec<TileInfo>) {
        let _serial = self
            .inner
            .relayout
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<u32> = tiles.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let cfg = self.inner.config;
        let layout = compute_layout(cfg.width, cfg.height, &ids);
        let existing = self.grid().by_id.clone();
        let mut feeds = Vec::with_capacity(ids.len());
        for rect in &layout.tiles {
            let feed = match existing.get(&rect.id) {
                Some(f) => {
                    f.resize(rect.w, rect.h);
                    f.clone()
                }
                None => Arc::new(TileFeed::new(rect.id, self.inner.decoder, rect.w, rect.h)),
            };
            feeds.push(feed);
        }
        let removed: Vec<Arc<TileFeed>> = {
            let mut grid = self.grid();
            for f in &feeds {
                let online = grid.online.get(&f.id).copied().unwrap_or(true);
                f.online.store(online, Ordering::SeqCst);
            }
            let by_id: HashMap<u32, Arc<TileFeed>> =
                feeds.iter().map(|f| (f.id, f.clone())).collect();
            let removed = grid
                .by_id
                .iter()
                .filter(|(id, _)| !by_id.contains_key(id))
                .map(|(_, f)| f.clone())
                .collect();
            grid.layout = layout;
            grid.feeds = feeds;
            grid.by_id = by_id;
            grid.generation += 1;
            removed
        };
        for f in removed {
            self.inner.retired_errors.fetch_add(
                f.counters.decode_errors.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            // Dropping the last Arc sets the pipeline to Null (outside the grid lock).
        }
        tracing::debug!(tiles = ids.len(), "mosaic relayout");
    }

    /// The current grid.
    pub fn layout(&self) -> MosaicLayout {
        self.grid().layout.clone()
    }

    /// Hands one station thumbnail access unit to its tile. Never blocks: when the tile's
    /// queue is full the frame is dropped (counted) and the tile waits for the next keyframe,
    /// which the caller is told to ask the station for ([`TileFeedback::WantKeyframe`],
    /// rate-limited).
    pub fn push(&self, station_id: u32, frame: EncodedFrame) -> TileFeedback {
        let Some(feed) = self.grid().by_id.get(&station_id).cloned() else {
            return TileFeedback::Ok;
        };
        let c = &feed.counters;
        c.frames_in.fetch_add(1, Ordering::Relaxed);
        if !feed.online.load(Ordering::SeqCst) {
            return TileFeedback::Ok;
        }
        if feed.need_key.load(Ordering::SeqCst) && !frame.keyframe {
            return feed.want_keyframe();
        }
        // Held until the frame is queued, so the composer cannot stop the decoder between
        // the check and the push. Starting a stopped decoder takes a millisecond or two.
        let mut decoding = feed.decoding();
        decoding.last_frame = Instant::now();
        if decoding.pipe.is_none() {
            if !frame.keyframe {
                feed.need_key.store(true, Ordering::SeqCst);
                return feed.want_keyframe();
            }
            if !feed.start_decoder(&mut decoding) {
                return TileFeedback::Ok;
            }
        }
        let appsrc = &decoding.pipe.as_ref().expect("started above").appsrc;
        if appsrc.current_level_buffers() >= TILE_QUEUE {
            let n = c.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if !feed.need_key.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    station = station_id,
                    dropped_total = n,
                    "tile decoder behind; dropping until the next keyframe"
                );
            }
            return feed.want_keyframe();
        }
        let mut buf = gst::Buffer::from_slice(frame.data);
        {
            let b = buf.get_mut().expect("fresh buffer");
            // The capture time rides through the decoder as the PTS.
            b.set_pts(gst::ClockTime::from_useconds(frame.capture_us));
            if !frame.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        if frame.keyframe {
            feed.need_key.store(false, Ordering::SeqCst);
        }
        if appsrc.push_buffer(buf).is_err() {
            // Flushing: the tile is being restarted or removed.
            feed.need_key.store(true, Ordering::SeqCst);
            return feed.want_keyframe();
        }
        TileFeedback::Ok
    }

    /// Marks a station online or offline; an offline tile is drawn dark grey.
    pub fn set_online(&self, station_id: u32, online: bool) {
        let mut grid = self.grid();
        grid.online.insert(station_id, online);
        if let Some(f) = grid.by_id.get(&station_id) {
            if !f.online.swap(online, Ordering::SeqCst) && online {
                // Back online: the new connection starts with a keyframe; wait for it.
                f.need_key.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Composes and encodes (`true`, the state at start) or idles (`false`): a box nobody
    /// watches spends nothing on the mosaic. Resuming starts from a clean canvas and a
    /// keyframe.
    pub fn set_active(&self, active: bool) {
        if self.inner.active.swap(active, Ordering::SeqCst) != active {
            tracing::debug!(active, "mosaic composing and encoding");
        }
    }

    /// Whether the mosaic is composed and encoded now.
    pub fn is_active(&self) -> bool {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// Asks for a keyframe in the mosaic stream (a viewer joined).
    pub fn request_keyframe(&self) {
        crate::encoder::send_keyframe_request(&self.inner.enc_sink);
    }

    /// Counters.
    pub fn stats(&self) -> MosaicStats {
        let grid = self.grid();
        let tiles: Vec<TileStats> = grid.feeds.iter().map(|f| f.stats()).collect();
        MosaicStats {
            frames_out: self.inner.frames_out.load(Ordering::Relaxed),
            ticks_skipped: self.inner.ticks_skipped.load(Ordering::Relaxed),
            decode_errors: tiles.iter().map(|t| t.decode_errors).sum::<u64>()
                + self.inner.retired_errors.load(Ordering::Relaxed),
            tiles,
        }
    }

    /// Becomes `Some` if the mosaic encoder failed (it is then stopped).
    pub fn errors(&self) -> tokio::sync::watch::Receiver<Option<crate::PipelineError>> {
        self.enc_bus.errors()
    }

    fn grid(&self) -> std::sync::MutexGuard<'_, Grid> {
        self.inner.grid.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Mosaic {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.composer.take() {
            let _ = t.join();
        }
        let _ = self.enc_pipeline.set_state(gst::State::Null);
        let mut grid = self.grid();
        grid.feeds.clear();
        grid.by_id.clear();
    }
}

impl std::fmt::Debug for Mosaic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mosaic")
            .field("config", &self.inner.config)
            .field("tiles", &self.grid().layout.tiles.len())
            .finish()
    }
}

/// `appsrc is-live format=time caps=video/x-raw,I420,W×H,F/1 ! <encoder> ! <profile caps>
///  ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink`
fn build_encoder(
    probe: &CodecProbe,
    params: &StreamParams,
) -> Result<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSink), MediaError> {
    let pipeline = gst::Pipeline::with_name("mosaic-encoder");
    let src = gst_app::AppSrc::builder()
        .is_live(true)
        .format(gst::Format::Time)
        .caps(&probe::raw_caps(params))
        .build();
    // One thread: x264 keeps buffers per thread, and 1280×720 at 10 fps with its fastest
    // presets is a small load for one core (the Pi encodes in hardware).
    let enc = probe::make_encoder(
        probe.encoder,
        params,
        true,
        probe::Gop::SHORT,
        probe::RateMode::Bitrate,
    )?;
    let enc_caps = gst::ElementFactory::make("capsfilter")
        .property("caps", probe::encoder_output_caps(probe.encoder))
        .build()
        .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
    let parse = gst::ElementFactory::make("h264parse")
        .property("config-interval", -1i32)
        .build()
        .map_err(|_| MediaError::MissingElement("h264parse".into()))?;
    let au_caps = gst::ElementFactory::make("capsfilter")
        .property("caps", probe::annexb_au_caps())
        .build()
        .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        .build();
    let elems: [&gst::Element; 6] = [
        src.upcast_ref(),
        &enc,
        &enc_caps,
        &parse,
        &au_caps,
        sink.upcast_ref(),
    ];
    let err = |e: gst::glib::BoolError| MediaError::Build {
        what: "mosaic encoder",
        detail: e.to_string(),
    };
    pipeline.add_many(elems).map_err(err)?;
    gst::Element::link_many(elems).map_err(err)?;
    Ok((pipeline, src, sink))
}

/// Encoded mosaic access units → broadcast, matched to their composition by running time.
fn install_output(inner: &Arc<Inner>, pending: Arc<Mutex<VecDeque<Pending>>>) {
    let weak = Arc::downgrade(inner);
    inner.enc_sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let Some(inner) = weak.upgrade() else {
                    return Err(gst::FlowError::Flushing);
                };
                let Some(buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let rt = crate::bus::running_time(&sample, buffer.pts());
                let entry = {
                    let mut q = pending.lock().unwrap_or_else(|p| p.into_inner());
                    // Frames the encoder dropped leave stale entries in front: skip them.
                    while q.front().is_some_and(|p| Some(p.running_time) < rt) {
                        q.pop_front();
                    }
                    q.pop_front()
                };
                let Some(entry) = entry else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let Ok(mapped) = buffer.into_mapped_buffer_readable() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let frame = MosaicFrame {
                    data: Bytes::from_owner(mapped),
                    keyframe,
                    seq: entry.seq,
                    updates: entry.updates,
                    encoded_us: crate::now_us(),
                };
                inner.frames_out.fetch_add(1, Ordering::Relaxed);
                // No receivers is fine: nobody is watching right now.
                let _ = inner.tx.send(Arc::new(frame));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// The I420 canvas, owned by the composer thread.
struct Canvas {
    w: usize,
    h: usize,
    data: Vec<u8>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Canvas {
        let (w, h) = (w as usize, h as usize);
        let mut c = Canvas {
            w,
            h,
            data: vec![0; w * h * 3 / 2],
        };
        c.fill(0, 0, w, h, BLACK_YUV);
        c
    }

    fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (y, uv) = self.data.split_at_mut(self.w * self.h);
        let (u, v) = uv.split_at_mut(self.w * self.h / 4);
        (y, u, v)
    }

    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, (cy, cu, cv): (u8, u8, u8)) {
        let cw = self.w;
        let (py, pu, pv) = self.planes_mut();
        for row in y..y + h {
            py[row * cw + x..row * cw + x + w].fill(cy);
        }
        for row in y / 2..(y + h) / 2 {
            let at = row * (cw / 2) + x / 2;
            pu[at..at + w / 2].fill(cu);
            pv[at..at + w / 2].fill(cv);
        }
    }

    /// Copies a decoded I420 picture of exactly the tile's size into place; false when the
    /// picture has another size (decoded just before a relayout).
    fn blit(&mut self, r: &TileRect, sample: &gst::Sample) -> bool {
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            return false;
        };
        let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
            return false;
        };
        if info.width() != r.w
            || info.height() != r.h
            || info.format() != gst_video::VideoFormat::I420
        {
            return false;
        }
        let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info) else {
            return false;
        };
        let cw = self.w;
        let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
        let (py, pu, pv) = self.planes_mut();
        for (plane, dst, dst_stride, px, py0, pw, ph) in [
            (0u32, py, cw, x, y, w, h),
            (1, pu, cw / 2, x / 2, y / 2, w / 2, h / 2),
            (2, pv, cw / 2, x / 2, y / 2, w / 2, h / 2),
        ] {
            let Ok(src) = frame.plane_data(plane) else {
                return false;
            };
            let stride = frame.plane_stride()[plane as usize] as usize;
            for row in 0..ph {
                let s = &src[row * stride..row * stride + pw];
                let d = (py0 + row) * dst_stride + px;
                dst[d..d + pw].copy_from_slice(s);
            }
        }
        true
    }
}

/// Ticks at the configured fps: pull each tile's newest picture, paint, hand to the encoder.
fn compose_loop(inner: &Inner, pending: &Mutex<VecDeque<Pending>>) {
    let cfg = inner.config;
    let period = Duration::from_nanos(1_000_000_000 / cfg.fps as u64);
    let mut canvas = Canvas::new(cfg.width, cfg.height);
    let mut generation = u64::MAX;
    let mut tick: u64 = 0;
    let mut seq: u64 = 0;
    // Updates of a skipped tick ride on the next frame, so no capture time is lost.
    let mut carried: Vec<(u16, u64)> = Vec::new();
    let mut next = Instant::now();
    let mut paused = false;
    while !inner.stop.load(Ordering::SeqCst) {
        if !inner.active.load(Ordering::SeqCst) {
            // Idle: no composing, no encoding; the tick counter stands still so the running
            // time carries on without a gap when a viewer comes.
            paused = true;
            // The stations stop sending when nobody watches: their decoders go idle too.
            let feeds = inner
                .grid
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .feeds
                .clone();
            let now = Instant::now();
            for f in &feeds {
                f.release_if_idle(now);
            }
            std::thread::sleep(period);
            continue;
        }
        let (rects, feeds, gen) = {
            let g = inner.grid.lock().unwrap_or_else(|p| p.into_inner());
            (g.layout.tiles.clone(), g.feeds.clone(), g.generation)
        };
        if paused {
            paused = false;
            // Pictures decoded before the pause are stale: drop them, repaint, and start the
            // stream again at a keyframe.
            for f in &feeds {
                let _ = f.newest();
            }
            generation = u64::MAX;
            next = Instant::now();
            crate::encoder::send_keyframe_request(&inner.enc_sink);
        }
        if gen != generation {
            canvas.fill(0, 0, canvas.w, canvas.h, BLACK_YUV);
            generation = gen;
            carried.clear(); // tile indices changed
        }
        let mut updates = std::mem::take(&mut carried);
        let tick_start = Instant::now();
        let feeds_by_id: HashMap<u32, &Arc<TileFeed>> = feeds.iter().map(|f| (f.id, f)).collect();
        for (index, rect) in rects.iter().enumerate() {
            let Some(feed) = feeds_by_id.get(&rect.id) else {
                continue;
            };
            if feed.counters.failed.swap(false, Ordering::SeqCst) {
                feed.restart();
            }
            feed.release_if_idle(tick_start);
            let newest = feed.newest();
            if !feed.online.load(Ordering::SeqCst) {
                canvas.fill(
                    rect.x as usize,
                    rect.y as usize,
                    rect.w as usize,
                    rect.h as usize,
                    OFFLINE_YUV,
                );
                continue;
            }
            let Some(sample) = newest else {
                continue;
            };
            if canvas.blit(rect, &sample) {
                feed.counters.frames_shown.fetch_add(1, Ordering::Relaxed);
                let capture_us = sample
                    .buffer()
                    .and_then(|b| crate::bus::running_time(&sample, b.pts()))
                    .map(|t| t.useconds())
                    .unwrap_or(0);
                updates.retain(|u| u.0 != index as u16);
                updates.push((index as u16, capture_us));
            }
        }

        // An encoder that has not taken the previous canvases yet is behind: skip this tick
        // instead of queueing latency.
        if inner.enc_src.current_level_buffers() >= 2 {
            inner.ticks_skipped.fetch_add(1, Ordering::Relaxed);
            carried = updates;
        } else {
            let running_time = gst::ClockTime::from_nseconds(tick * period.as_nanos() as u64);
            let mut buf = gst::Buffer::from_mut_slice(canvas.data.clone());
            {
                let b = buf.get_mut().expect("fresh buffer");
                b.set_pts(running_time);
                b.set_duration(gst::ClockTime::from_nseconds(period.as_nanos() as u64));
            }
            pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(Pending {
                    running_time,
                    seq,
                    updates,
                });
            if inner.enc_src.push_buffer(buf).is_err() {
                // The encoder stopped (error or shutdown); its bus watch reported why.
                pending.lock().unwrap_or_else(|p| p.into_inner()).pop_back();
            } else {
                seq += 1;
            }
        }
        tick += 1;
        next += period;
        let now = Instant::now();
        if next < now {
            // Fell behind (CPU starved): keep the cadence from now rather than bursting.
            next = now;
        } else {
            std::thread::sleep(next - now);
        }
    }
}

#[cfg(test)]
mod tests;
