//! Pre-encoded stream files, so a simulated classroom of 30+ stations costs file reads, not
//! 30 live encoders.
//!
//! # File format, version 2 (all integers little-endian)
//!
//! ```text
//! header (34 bytes):
//!   magic         8 bytes  "LNTRPLAY"
//!   version       u16      2 (1 is read too: the same, with loop_ms always 0)
//!   width         u32      1..=7680
//!   height        u32      1..=4320
//!   fps           u32      1..=240
//!   bitrate_kbps  u32      what the recorder asked for (informative)
//!   frame_count   u32      1..=1_000_000
//!   loop_ms       u32      length of one pass; 0 = last pts + one frame interval; otherwise
//!                          more than the last pts (version 1: reserved, 0)
//! then frame_count records:
//!   length        u32      1..=4 MiB, bytes of the access unit
//!   pts_us        u64      presentation time from the first frame, non-decreasing
//!   flags         u8       bit 0 = keyframe; other bits must be 0
//!   access unit   length bytes, H.264 Annex B (starts with a start code)
//! ```
//!
//! The first frame must be a keyframe (so playback and every loop start decodable), and
//! nothing may follow the last frame. Files are bounded to 1 GiB.
//!
//! `loop_ms` exists for screens under rate control: a still screen sends nothing, so a
//! recording of one is a keyframe and a few small frames, and only the recorded length says
//! how long the stillness lasted.

#[cfg(feature = "gstreamer")]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

#[cfg(feature = "gstreamer")]
use crate::{CaptureSource, CodecProbe, ScreenEncoder};
use crate::{EncodedFrame, MediaError, StreamKind, StreamParams};

pub const MAGIC: &[u8; 8] = b"LNTRPLAY";
pub const VERSION: u16 = 2;
pub const HEADER_LEN: usize = 34;
pub const FRAME_HEADER_LEN: usize = 13;
pub const MAX_AU_BYTES: u32 = 4 << 20;
pub const MAX_FRAMES: u32 = 1_000_000;
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why a replay file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("file is {0} bytes, more than the 1 GiB limit")]
    FileTooLarge(u64),
    #[error("truncated header: {0} bytes, need {HEADER_LEN}")]
    ShortHeader(usize),
    #[error("not a Lanterne replay file (bad magic)")]
    BadMagic,
    #[error("unsupported version {0} (this build reads versions 1 and {VERSION})")]
    UnsupportedVersion(u16),
    #[error("header field '{field}' is {value}, allowed {allowed}")]
    BadHeader {
        field: &'static str,
        value: u64,
        allowed: &'static str,
    },
    #[error("frame {index}: truncated ({needed} bytes needed, {left} left)")]
    Truncated {
        index: u32,
        needed: usize,
        left: usize,
    },
    #[error("frame {index}: access unit of {len} bytes is outside 1..={MAX_AU_BYTES}")]
    BadLength { index: u32, len: u32 },
    #[error("frame {index}: unknown flag bits {flags:#04x}")]
    BadFlags { index: u32, flags: u8 },
    #[error("frame {index}: pts {pts_us} µs goes back from {previous_us} µs")]
    PtsBackwards {
        index: u32,
        pts_us: u64,
        previous_us: u64,
    },
    #[error("frame {index}: not an Annex B access unit (no start code)")]
    NotAnnexB { index: u32 },
    #[error("the first frame is not a keyframe")]
    FirstNotKeyframe,
    #[error("{0} bytes after the last frame")]
    TrailingBytes(usize),
}

/// One recorded access unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayFrame {
    pub pts_us: u64,
    pub keyframe: bool,
    pub data: Bytes,
}

/// A whole replay file, parsed and validated.
#[derive(Debug)]
pub struct ReplayFile {
    pub params: StreamParams,
    frames: Vec<ReplayFrame>,
    /// Length of one pass as recorded (µs); 0 when the file does not say.
    loop_us: u64,
}

impl ReplayFile {
    /// Reads and validates a file.
    pub fn open(path: &Path) -> Result<ReplayFile, MediaError> {
        let io = |source| MediaError::Io {
            path: path.display().to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            return Err(ReplayError::FileTooLarge(len).into());
        }
        let data = std::fs::read(path).map_err(io)?;
        Ok(ReplayFile::parse(Bytes::from(data))?)
    }

    /// Parses a file's bytes; the frames share `data` (no copies).
    pub fn parse(data: Bytes) -> Result<ReplayFile, ReplayError> {
        if data.len() as u64 > MAX_FILE_BYTES {
            return Err(ReplayError::FileTooLarge(data.len() as u64));
        }
        if data.len() < HEADER_LEN {
            if data.len() >= MAGIC.len() && &data[..MAGIC.len()] != MAGIC {
                return Err(ReplayError::BadMagic);
            }
            return Err(ReplayError::ShortHeader(data.len()));
        }
        let mut h = &data[..HEADER_LEN];
        if &h[..8] != MAGIC {
            return Err(ReplayError::BadMagic);
        }
        h.advance(8);
        let version = h.get_u16_le();
        if version != 1 && version != VERSION {
            return Err(ReplayError::UnsupportedVersion(version));
        }
        let width = h.get_u32_le();
        let height = h.get_u32_le();
        let fps = h.get_u32_le();
        let bitrate_kbps = h.get_u32_le();
        let frame_count = h.get_u32_le();
        let loop_ms = h.get_u32_le();
        let check = |field, value: u32, ok: bool, allowed| {
            if ok {
                Ok(())
            } else {
                Err(ReplayError::BadHeader {
                    field,
                    value: value as u64,
                    allowed,
                })
            }
        };
        check("width", width, (1..=7680).contains(&width), "1..=7680")?;
        check("height", height, (1..=4320).contains(&height), "1..=4320")?;
        check("fps", fps, (1..=240).contains(&fps), "1..=240")?;
        check(
            "frame_count",
            frame_count,
            (1..=MAX_FRAMES).contains(&frame_count),
            "1..=1000000",
        )?;
        if version == 1 {
            check("reserved", loop_ms, loop_ms == 0, "0")?;
        }

        let mut pos = HEADER_LEN;
        // Never trust frame_count for the allocation: each frame needs at least 14 bytes.
        let mut frames = Vec::with_capacity(
            (frame_count as usize).min((data.len() - pos) / (FRAME_HEADER_LEN + 1)),
        );
        let mut previous_us = 0u64;
        for index in 0..frame_count {
            let left = data.len() - pos;
            if left < FRAME_HEADER_LEN {
                return Err(ReplayError::Truncated {
                    index,
                    needed: FRAME_HEADER_LEN,
                    left,
                });
            }
            let mut fh = &data[pos..pos + FRAME_HEADER_LEN];
            let len = fh.get_u32_le();
            let pts_us = fh.get_u64_le();
            let flags = fh.get_u8();
            if len == 0 || len > MAX_AU_BYTES {
                return Err(ReplayError::BadLength { index, len });
            }
            if flags & !1 != 0 {
                return Err(ReplayError::BadFlags { index, flags });
            }
            if pts_us < previous_us {
                return Err(ReplayError::PtsBackwards {
                    index,
                    pts_us,
                    previous_us,
                });
            }
            pos += FRAME_HEADER_LEN;
            let left = data.len() - pos;
            if left < len as usize {
                return Err(ReplayError::Truncated {
                    index,
                    needed: len as usize,
                    left,
                });
            }
            let au = data.slice(pos..pos + len as usize);
            pos += len as usize;
            if !(au.starts_with(&[0, 0, 1]) || au.starts_with(&[0, 0, 0, 1])) {
                return Err(ReplayError::NotAnnexB { index });
            }
            let keyframe = flags & 1 != 0;
            if index == 0 && !keyframe {
                return Err(ReplayError::FirstNotKeyframe);
            }
            previous_us = pts_us;
            frames.push(ReplayFrame {
                pts_us,
                keyframe,
                data: au,
            });
        }
        if pos != data.len() {
            return Err(ReplayError::TrailingBytes(data.len() - pos));
        }
        let loop_us = u64::from(loop_ms) * 1000;
        check(
            "loop_ms",
            loop_ms,
            loop_ms == 0 || loop_us > previous_us,
            "0 or more than the last frame's pts",
        )?;
        Ok(ReplayFile {
            params: StreamParams {
                width,
                height,
                fps,
                bitrate_kbps,
            },
            frames,
            loop_us,
        })
    }

    /// The recorded frames in order.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = &ReplayFrame> {
        self.frames.iter()
    }

    /// How long one pass lasts: the recorded length, or else last pts plus one frame
    /// interval.
    pub fn duration(&self) -> Duration {
        if self.loop_us > 0 {
            return Duration::from_micros(self.loop_us);
        }
        let last = self.frames.last().map_or(0, |f| f.pts_us);
        Duration::from_micros(last + 1_000_000 / self.params.fps as u64)
    }

    /// Bytes of access units in one pass.
    pub fn payload_bytes(&self) -> u64 {
        self.frames.iter().map(|f| f.data.len() as u64).sum()
    }
}

/// Serialises frames into the current format, one pass lasting last pts + one frame interval
/// (used by [`record`] and tests).
pub fn encode(params: StreamParams, frames: &[ReplayFrame]) -> Vec<u8> {
    encode_looped(params, frames, 0)
}

/// Serialises frames with an explicit pass length in ms (`loop_ms`, see the format).
pub fn encode_looped(params: StreamParams, frames: &[ReplayFrame], loop_ms: u32) -> Vec<u8> {
    let body: usize = frames.iter().map(|f| FRAME_HEADER_LEN + f.data.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + body);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for v in [
        params.width,
        params.height,
        params.fps,
        params.bitrate_kbps,
        frames.len() as u32,
        loop_ms,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for f in frames {
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.pts_us.to_le_bytes());
        out.push(f.keyframe as u8);
        out.extend_from_slice(&f.data);
    }
    out
}

/// What [`record`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSummary {
    pub frames: u32,
    pub keyframes: u32,
    pub bytes: u64,
}

#[cfg(feature = "gstreamer")]
/// Captures `source`, encodes `frames` thumbnail-stream frames with `params` (starting at a
/// keyframe) and writes them to `path` (atomically: a temporary file is renamed over it).
///
/// Blocking; runs the capture on its own thread so it may be called from async code too.
pub fn record(
    source: CaptureSource,
    probe: &CodecProbe,
    params: StreamParams,
    frames: u32,
    path: &Path,
) -> Result<RecordSummary, MediaError> {
    params.validate()?;
    if !(1..=MAX_FRAMES).contains(&frames) {
        return Err(MediaError::InvalidParams(format!(
            "frame count {frames} outside 1..={MAX_FRAMES}"
        )));
    }
    let probe = *probe;
    let recorded = std::thread::Builder::new()
        .name("replay record".into())
        .spawn(move || capture_frames(source, &probe, params, frames))
        .map_err(|e| MediaError::Io {
            path: "record thread".into(),
            source: e,
        })?
        .join()
        .map_err(|_| MediaError::Build {
            what: "replay recorder",
            detail: "recording thread panicked".into(),
        })??;
    let bytes = encode(params, &recorded);
    let io = |source| MediaError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    let summary = RecordSummary {
        frames,
        keyframes: recorded.iter().filter(|f| f.keyframe).count() as u32,
        bytes: bytes.len() as u64,
    };
    tracing::info!(path = %path.display(), ?summary, "replay file recorded");
    Ok(summary)
}

#[cfg(feature = "gstreamer")]
fn capture_frames(
    source: CaptureSource,
    probe: &CodecProbe,
    params: StreamParams,
    frames: u32,
) -> Result<Vec<ReplayFrame>, MediaError> {
    // Large enough that a slow disk or CPU hiccup never drops a frame from the recording.
    let (tx, mut rx) = mpsc::channel(256);
    let enc = ScreenEncoder::start(source, probe, tx)?;
    let errors = enc.errors();
    enc.set_stream(StreamKind::Thumb, Some(params));
    let mut out: Vec<ReplayFrame> = Vec::with_capacity(frames as usize);
    let mut first_us = None;
    // The whole recording must finish within its duration plus a generous margin.
    let deadline =
        std::time::Instant::now() + Duration::from_secs(10 + 2 * frames as u64 / params.fps as u64);
    while out.len() < frames as usize {
        if let Some(e) = errors.borrow().clone() {
            return Err(e.into());
        }
        if std::time::Instant::now() > deadline {
            return Err(MediaError::Timeout(format!(
                "recorded only {} of {frames} frames",
                out.len()
            )));
        }
        let Some((_, f)) = blocking_recv_timeout(&mut rx, Duration::from_millis(500)) else {
            continue;
        };
        let start = *first_us.get_or_insert(f.capture_us);
        out.push(ReplayFrame {
            pts_us: f
                .capture_us
                .saturating_sub(start)
                .max(out.last().map_or(0, |p| p.pts_us)),
            keyframe: f.keyframe,
            data: f.data,
        });
    }
    if enc.dropped(StreamKind::Thumb) > 0 {
        return Err(MediaError::Timeout(
            "the recorder fell behind the encoder and lost frames".into(),
        ));
    }
    Ok(out)
}

/// One stream of a [`record_for`] recording.
#[derive(Clone, Debug)]
pub struct RecordTarget {
    pub kind: StreamKind,
    pub params: StreamParams,
    pub path: PathBuf,
}

/// Longest recording [`record_for`] makes (`loop_ms` is a u32, and a benchmark needs less).
pub const MAX_RECORD: Duration = Duration::from_secs(600);

#[cfg(feature = "gstreamer")]
/// Captures `source` for `length` through the station's own encoder, rate control included
/// (a still screen records as a keyframe and nothing more), every target stream at once, and
/// writes each stream to its file with `length` as the pass length. Blocking, on its own
/// thread.
pub fn record_for(
    source: CaptureSource,
    probe: &CodecProbe,
    targets: &[RecordTarget],
    length: Duration,
) -> Result<Vec<RecordSummary>, MediaError> {
    if length.is_zero() || length > MAX_RECORD {
        return Err(MediaError::InvalidParams(format!(
            "recording length {length:?} outside (0, {MAX_RECORD:?}]"
        )));
    }
    if targets.is_empty()
        || (targets.len() == 2 && targets[0].kind == targets[1].kind)
        || targets.len() > 2
    {
        return Err(MediaError::InvalidParams(
            "record one thumbnail and/or one full stream".into(),
        ));
    }
    for t in targets {
        t.params.validate()?;
    }
    let probe = *probe;
    let owned = targets.to_vec();
    let recorded = std::thread::Builder::new()
        .name("replay record".into())
        .spawn(move || capture_for(source, &probe, &owned, length))
        .map_err(|e| MediaError::Io {
            path: "record thread".into(),
            source: e,
        })?
        .join()
        .map_err(|_| MediaError::Build {
            what: "replay recorder",
            detail: "recording thread panicked".into(),
        })??;
    let loop_ms = length.as_millis() as u32;
    let mut summaries = Vec::new();
    for (t, frames) in targets.iter().zip(recorded) {
        let bytes = encode_looped(t.params, &frames, loop_ms);
        write_atomically(&t.path, &bytes)?;
        let summary = RecordSummary {
            frames: frames.len() as u32,
            keyframes: frames.iter().filter(|f| f.keyframe).count() as u32,
            bytes: bytes.len() as u64,
        };
        tracing::info!(path = %t.path.display(), ?summary, "replay file recorded");
        summaries.push(summary);
    }
    Ok(summaries)
}

#[cfg(feature = "gstreamer")]
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let io = |source| MediaError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(feature = "gstreamer")]
/// Frames of each target (in order) whose capture falls within `length` of the first one.
fn capture_for(
    source: CaptureSource,
    probe: &CodecProbe,
    targets: &[RecordTarget],
    length: Duration,
) -> Result<Vec<Vec<ReplayFrame>>, MediaError> {
    let (tx, mut rx) = mpsc::channel(256);
    let enc = ScreenEncoder::start(source, probe, tx)?;
    let errors = enc.errors();
    for t in targets {
        enc.set_stream(t.kind, Some(t.params));
    }
    let mut out: Vec<Vec<ReplayFrame>> = vec![Vec::new(); targets.len()];
    // Capture time of each stream's first keyframe: its file's pts 0.
    let mut base_us: Vec<Option<u64>> = vec![None; targets.len()];
    let length_us = length.as_micros() as u64;
    // Every stream starts with a keyframe within a few seconds; then the length runs.
    let deadline = std::time::Instant::now() + length + Duration::from_secs(15);
    loop {
        if let Some(e) = errors.borrow().clone() {
            return Err(e.into());
        }
        if std::time::Instant::now() > deadline {
            return Err(MediaError::Timeout(format!(
                "no complete recording of {length:?} (frames per stream: {:?})",
                out.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        // Done when every stream has had its whole length (and a margin for the pipeline).
        let started: Option<Vec<u64>> = base_us.iter().copied().collect();
        if let Some(latest) = started.and_then(|b| b.into_iter().max()) {
            if crate::now_us().saturating_sub(latest) > length_us + 500_000 {
                break;
            }
        }
        let Some((kind, f)) = blocking_recv_timeout(&mut rx, Duration::from_millis(100)) else {
            continue;
        };
        let Some(i) = targets.iter().position(|t| t.kind == kind) else {
            continue;
        };
        let base = match base_us[i] {
            Some(b) => b,
            // Each file starts at its own first keyframe.
            None if f.keyframe => *base_us[i].insert(f.capture_us),
            None => continue,
        };
        let pts_us = f
            .capture_us
            .saturating_sub(base)
            .max(out[i].last().map_or(0, |p| p.pts_us));
        if pts_us >= length_us {
            continue;
        }
        out[i].push(ReplayFrame {
            pts_us,
            keyframe: f.keyframe,
            data: f.data,
        });
    }
    for t in targets {
        if enc.dropped(t.kind) > 0 {
            return Err(MediaError::Timeout(
                "the recorder fell behind the encoder and lost frames".into(),
            ));
        }
    }
    if let Some(i) = out.iter().position(Vec::is_empty) {
        return Err(MediaError::Timeout(format!(
            "the {:?} stream produced no keyframe",
            targets[i].kind
        )));
    }
    Ok(out)
}

#[cfg(feature = "gstreamer")]
/// `blocking_recv` with a timeout, for a thread outside any runtime.
fn blocking_recv_timeout<T>(rx: &mut mpsc::Receiver<T>, timeout: Duration) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => {
                if std::time::Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// [`play`], after waiting `delay`: stations of a simulated room that replay the same file
/// would otherwise all show the same picture at the same instant, and all send the file's
/// keyframe together at every pass.
pub async fn play_delayed(
    file: Arc<ReplayFile>,
    out: mpsc::Sender<EncodedFrame>,
    looped: bool,
    delay: Duration,
) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => play(file, out, looped).await,
        _ = out.closed() => {}
    }
}

/// Sends the file's frames to `out` at their recorded pace, each stamped with a fresh
/// `capture_us` (now) and an increasing `seq`, as a live station would. With `looped` it
/// starts over at the first frame (a keyframe) after the last one, keeping the pace; without,
/// it returns after one pass. Returns when `out` is closed.
///
/// A receiver that makes `send` wait does not cause a burst afterwards: if playback falls more
/// than a second behind, the schedule restarts from now.
pub async fn play(file: Arc<ReplayFile>, out: mpsc::Sender<EncodedFrame>, looped: bool) {
    let period = file.duration();
    let mut start = tokio::time::Instant::now();
    let mut seq = 0u64;
    loop {
        for f in file.frames() {
            let due = start + Duration::from_micros(f.pts_us);
            let now = tokio::time::Instant::now();
            if now > due + Duration::from_secs(1) {
                start = now - Duration::from_micros(f.pts_us);
            } else {
                tokio::time::sleep_until(due).await;
            }
            let frame = EncodedFrame {
                data: f.data.clone(),
                keyframe: f.keyframe,
                capture_us: crate::now_us(),
                seq,
            };
            if out.send(frame).await.is_err() {
                return;
            }
            seq += 1;
        }
        if !looped {
            return;
        }
        start += period;
    }
}

#[cfg(all(test, feature = "gstreamer"))]
mod tests;
