//! Picking the capture device, pixel format, size and rate from device descriptions.
//!
//! Pure logic over [`DeviceDescription`]s. The order of preference, most important first:
//!
//! 1. the kind of device: an HDMI bridge with DV timings (TC358743 behind unicam) over a UVC
//!    dongle; any other capture driver only when named in the configuration, so the box never
//!    shows a webcam or a test driver to the class by accident;
//! 2. a fluent rate (at least [`CaptureLimits::min_fluent_fps`] after rate reduction): a
//!    dongle's 1080p at 5 fps is useless for a demo;
//! 3. the largest picture within the limits (text on the teacher's screen must stay legible);
//!    a bridge always captures its native input timing, since it cannot scale;
//! 4. the highest delivered rate, up to [`CaptureLimits::max_fps`];
//! 5. the cheapest path into the encoder: a raw format it takes as is (UYVY into the Pi's
//!    `v4l2h264enc`), then raw YUV that needs converting, then RGB, then Motion-JPEG (jpegdec);
//! 6. the lowest capture rate giving the same delivered rate (less USB and CPU).
//!
//! Every device and format that cannot be used is listed with the reason, for the log and the
//! admin page (usable modes that merely lost are not).

use std::cmp::Reverse;
use std::fmt;
use std::path::PathBuf;

use super::description::{
    Capability, DeviceDescription, DvTimings, DvTimingsStatus, FormatDescription, FrameRate,
};
use crate::EncoderKind;

/// The pixel formats this pipeline knows how to feed to an encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 4:2:2, Cb Y Cr Y: the TC358743's YUV output.
    Uyvy,
    /// Packed 4:2:2, Y Cb Y Cr: what uncompressed UVC dongles send.
    Yuyv,
    Yvyu,
    Nv12,
    /// Planar 4:2:0 (`YU12`).
    I420,
    /// 24-bit RGB (`RGB3`), the TC358743's other output.
    Rgb24,
    Bgr24,
    /// Motion-JPEG (`MJPG`): how USB 2 dongles fit 1080p30 through the bus.
    Mjpeg,
}

impl PixelFormat {
    pub fn from_fourcc(fourcc: &str) -> Option<PixelFormat> {
        Some(match fourcc {
            "UYVY" => PixelFormat::Uyvy,
            "YUYV" => PixelFormat::Yuyv,
            "YVYU" => PixelFormat::Yvyu,
            "NV12" => PixelFormat::Nv12,
            "YU12" => PixelFormat::I420,
            "RGB3" => PixelFormat::Rgb24,
            "BGR3" => PixelFormat::Bgr24,
            "MJPG" => PixelFormat::Mjpeg,
            _ => return None,
        })
    }

    pub fn fourcc(self) -> &'static str {
        match self {
            PixelFormat::Uyvy => "UYVY",
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Yvyu => "YVYU",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::I420 => "YU12",
            PixelFormat::Rgb24 => "RGB3",
            PixelFormat::Bgr24 => "BGR3",
            PixelFormat::Mjpeg => "MJPG",
        }
    }

    /// The GStreamer `video/x-raw` format name; `None` for Motion-JPEG (`image/jpeg`).
    pub fn gst_raw_format(self) -> Option<&'static str> {
        Some(match self {
            PixelFormat::Uyvy => "UYVY",
            PixelFormat::Yuyv => "YUY2",
            PixelFormat::Yvyu => "YVYU",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::I420 => "I420",
            PixelFormat::Rgb24 => "RGB",
            PixelFormat::Bgr24 => "BGR",
            PixelFormat::Mjpeg => return None,
        })
    }

    /// True when `encoder` takes this format without a conversion in front of it.
    pub fn encoder_accepts(self, encoder: EncoderKind) -> bool {
        match encoder {
            // bcm2835-codec's encoder input list includes the packed 4:2:2 layouts, so the
            // HDMI bridge's UYVY goes straight in with no CPU pass over 1080p frames.
            EncoderKind::V4l2 => matches!(
                self,
                PixelFormat::Uyvy
                    | PixelFormat::Yuyv
                    | PixelFormat::Yvyu
                    | PixelFormat::Nv12
                    | PixelFormat::I420
            ),
            EncoderKind::Vaapi | EncoderKind::X264 | EncoderKind::OpenH264 => {
                matches!(self, PixelFormat::Nv12 | PixelFormat::I420)
            }
        }
    }

    /// Relative cost of getting this format into `encoder` (0 = as is).
    fn cost(self, encoder: EncoderKind) -> u8 {
        if self.encoder_accepts(encoder) {
            return 0;
        }
        match self {
            PixelFormat::Uyvy
            | PixelFormat::Yuyv
            | PixelFormat::Yvyu
            | PixelFormat::Nv12
            | PixelFormat::I420 => 1,
            // RGB → YUV is a matrix per pixel on 1.5× the bytes.
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => 2,
            PixelFormat::Mjpeg => 3,
        }
    }
}

/// What kind of source a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceKind {
    /// Any other capture driver; only used when named in the configuration.
    Other,
    /// A USB Video Class device (`uvcvideo`): HDMI dongles, but also webcams.
    Uvc,
    /// A receiver that reports DV timings: TC358743 behind unicam, other HDMI bridges.
    HdmiBridge,
}

/// Upper bounds of what the demo stream carries, and what counts as fluent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_fps: u32,
    /// Modes slower than this (after reduction to `max_fps`) lose against any fluent mode.
    pub min_fluent_fps: u32,
}

impl Default for CaptureLimits {
    /// 1080p30: what the Pi 4's encoder does in real time (level 4) and what 60 stations can
    /// take at ~4 Mbit/s each.
    fn default() -> Self {
        CaptureLimits {
            max_width: 1920,
            max_height: 1080,
            max_fps: 30,
            min_fluent_fps: 15,
        }
    }
}

/// What to select for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturePreferences {
    /// Use only this node (from the configuration); `None` = the best one found.
    pub device: Option<PathBuf>,
    pub limits: CaptureLimits,
    /// The encoder the pipeline will use ([`crate::init`]): decides which formats go in as is.
    pub encoder: EncoderKind,
}

impl CapturePreferences {
    /// Any device, default limits.
    pub fn for_encoder(encoder: EncoderKind) -> CapturePreferences {
        CapturePreferences {
            device: None,
            limits: CaptureLimits::default(),
            encoder,
        }
    }
}

/// The selected device and mode, and what the pipeline turns it into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureChoice {
    pub device: PathBuf,
    pub driver: String,
    pub card: String,
    pub kind: DeviceKind,
    pub format: PixelFormat,
    /// What the device delivers.
    pub width: u32,
    pub height: u32,
    pub rate: FrameRate,
    /// What is encoded: the capture scaled to fit the limits, and its rate divided by the
    /// smallest whole number that brings it within `max_fps` (60 → 30, 50 → 25), so the
    /// cadence stays even.
    pub output_width: u32,
    pub output_height: u32,
    pub output_rate: FrameRate,
    /// For a bridge: the detected timings, which must be applied (`VIDIOC_S_DV_TIMINGS`)
    /// before streaming, or the bridge keeps its previous mode.
    pub dv_timings: Option<DvTimings>,
    /// Everything left out, with the reason.
    pub rejected: Vec<Rejection>,
}

impl CaptureChoice {
    /// A choice without hardware, to run with [`super::CaptureInput::TestPattern`]: an I420
    /// picture of this size and rate (development machines, relay tests and benchmarks).
    /// Like a real capture, it is scaled and thinned to the default [`CaptureLimits`].
    pub fn test_pattern(width: u32, height: u32, rate: FrameRate) -> CaptureChoice {
        let limits = CaptureLimits::default();
        let (output_width, output_height) = fit(width, height, limits.max_width, limits.max_height);
        CaptureChoice {
            device: PathBuf::from("videotestsrc"),
            driver: "videotestsrc".into(),
            card: "test pattern".into(),
            kind: DeviceKind::Other,
            format: PixelFormat::I420,
            width,
            height,
            rate,
            output_width,
            output_height,
            output_rate: reduce_rate(rate, limits.max_fps),
            dv_timings: None,
            rejected: Vec::new(),
        }
    }

    /// One line for the log: what was chosen and what it becomes.
    pub fn summary(&self) -> String {
        let input = match &self.dv_timings {
            Some(t) => format!(", native input {t}"),
            None => String::new(),
        };
        format!(
            "{} ({}, {}): {} {}x{} at {:.2} fps{input} → encoded {}x{} at {:.2} fps",
            self.device.display(),
            self.driver,
            self.card,
            self.format.fourcc(),
            self.width,
            self.height,
            self.rate.as_f64(),
            self.output_width,
            self.output_height,
            self.output_rate.as_f64()
        )
    }
}

/// A device, or one format of it, that was not chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub device: PathBuf,
    /// `None` when the whole device was left out.
    pub fourcc: Option<String>,
    pub reason: RejectReason,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fourcc {
            Some(fourcc) => write!(f, "{} {fourcc}: {}", self.device.display(), self.reason),
            None => write!(f, "{}: {}", self.device.display(), self.reason),
        }
    }
}

/// Why a device or format was left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("memory-to-memory device of {driver} (a codec or converter, not an input)")]
    MemoryToMemory { driver: String },
    #[error("{driver} is an internal node of the Raspberry Pi camera/codec stack, not an input")]
    InternalNode { driver: String },
    #[error("only multi-planar capture, which this capture path does not drive")]
    MultiPlanarOnly,
    #[error("no video capture capability (capabilities: {capabilities})")]
    NotCapture { capabilities: String },
    #[error("unicam without DV timings: a camera sensor is attached, not an HDMI bridge")]
    CameraSensor,
    #[error(
        "driver {driver} is neither an HDMI bridge nor a UVC device; \
         name this device in the configuration to use it anyway"
    )]
    NotHdmiCandidate { driver: String },
    #[error("HDMI input has no signal (cable, or the PC is asleep or sends to another output)")]
    NoSignal,
    #[error("HDMI signal present but the bridge cannot lock onto it; try a standard mode such as 1920x1080 at 30 or 60 Hz")]
    NoSync,
    #[error("HDMI input timing is outside what the bridge supports; load an EDID that offers at most 1080p30 (docs/hardware.md)")]
    OutOfRange,
    #[error("querying the HDMI input timing failed: {message}")]
    DvQueryFailed { message: String },
    #[error("interlaced input {timings}; set the PC to a progressive mode")]
    Interlaced { timings: String },
    #[error("input timing {timings} gives no frame rate (zero pixel clock or blanking)")]
    NoFrameRate { timings: String },
    #[error("pixel format not handled (raw YUV 4:2:2/4:2:0, RGB24 and Motion-JPEG are)")]
    UnsupportedFormat,
    #[error("the device lists no pixel formats")]
    NoFormats,
    #[error("the driver lists no discrete frame sizes with a frame rate for it")]
    NoFrameSizes,
    #[error("every size is above {max} (smallest {smallest})")]
    AllTooLarge { smallest: String, max: String },
}

/// Why nothing could be selected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no V4L2 video nodes found (is the capture device plugged in and its driver loaded?)")]
    NoDevices,
    #[error("the configured capture device {path} is not among the V4L2 nodes found ({found})")]
    DeviceNotFound { path: PathBuf, found: String },
    #[error(
        "the HDMI input {device} ({bridge}) has no signal: connect the teacher PC and make \
         sure it sends a picture to this output"
    )]
    NoSignal { device: PathBuf, bridge: String },
    #[error("no usable capture device: {}", list(.rejected))]
    NoUsableDevice { rejected: Vec<Rejection> },
}

fn list(rejected: &[Rejection]) -> String {
    rejected
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Drivers with capture-capable nodes that are steps inside the Pi's own processing, not
/// inputs: bcm2835-isp's output nodes report VIDEO_CAPTURE and would otherwise look like one.
const INTERNAL_DRIVERS: &[&str] = &["bcm2835-isp", "bcm2835-codec", "rpivid", "pispbe"];

/// Picks the device and mode, or says why none fits.
pub fn select(
    devices: &[DeviceDescription],
    prefs: &CapturePreferences,
) -> Result<CaptureChoice, SelectError> {
    if devices.is_empty() {
        return Err(SelectError::NoDevices);
    }
    let considered: Vec<&DeviceDescription> = match &prefs.device {
        Some(path) => {
            let found: Vec<_> = devices.iter().filter(|d| &d.path == path).collect();
            if found.is_empty() {
                return Err(SelectError::DeviceNotFound {
                    path: path.clone(),
                    found: devices
                        .iter()
                        .map(|d| d.path.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            found
        }
        None => devices.iter().collect(),
    };
    let mut rejected = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut no_signal: Option<&DeviceDescription> = None;
    for dev in considered {
        let reject = |reason| Rejection {
            device: dev.path.clone(),
            fourcc: None,
            reason,
        };
        let kind = match classify(dev, prefs.device.is_some()) {
            Ok(kind) => kind,
            Err(reason) => {
                rejected.push(reject(reason));
                continue;
            }
        };
        let modes = match (&dev.dv_timings, kind) {
            (Some(status), DeviceKind::HdmiBridge) => match bridge_timing(status) {
                Ok((timings, rate)) => Modes::Bridge(timings, rate),
                Err(reason) => {
                    if reason == RejectReason::NoSignal {
                        no_signal.get_or_insert(dev);
                    }
                    rejected.push(reject(reason));
                    continue;
                }
            },
            _ => Modes::Enumerated,
        };
        if dev.formats.is_empty() {
            rejected.push(reject(RejectReason::NoFormats));
            continue;
        }
        for fmt in &dev.formats {
            let reject_fmt = |reason| Rejection {
                device: dev.path.clone(),
                fourcc: Some(fmt.fourcc.clone()),
                reason,
            };
            let Some(format) = PixelFormat::from_fourcc(&fmt.fourcc) else {
                rejected.push(reject_fmt(RejectReason::UnsupportedFormat));
                continue;
            };
            let found = match &modes {
                Modes::Bridge(timings, rate) => {
                    vec![candidate(
                        dev,
                        kind,
                        format,
                        (timings.width, timings.height),
                        *rate,
                        Some(timings),
                        prefs,
                    )]
                }
                Modes::Enumerated => match enumerated(dev, kind, format, fmt, prefs) {
                    Ok(found) => found,
                    Err(reason) => {
                        rejected.push(reject_fmt(reason));
                        continue;
                    }
                },
            };
            candidates.extend(found);
        }
    }
    let Some(best) = candidates.into_iter().max_by_key(|c| c.key) else {
        if let Some(dev) = no_signal {
            return Err(SelectError::NoSignal {
                device: dev.path.clone(),
                bridge: dev.bridge.clone().unwrap_or_else(|| dev.driver.clone()),
            });
        }
        return Err(SelectError::NoUsableDevice { rejected });
    };
    Ok(CaptureChoice {
        rejected,
        ..best.choice
    })
}

enum Modes<'a> {
    Bridge(&'a DvTimings, FrameRate),
    Enumerated,
}

struct Candidate {
    choice: CaptureChoice,
    /// See the module comment for the order.
    key: (
        DeviceKind,
        bool,
        u64,
        RateKey,
        Reverse<u8>,
        Reverse<RateKey>,
    ),
}

/// A frame rate ordered exactly (u64 cross-multiplication in `cmp_rate`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct RateKey(FrameRate);

impl PartialOrd for RateKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RateKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp_rate(other.0)
    }
}

fn classify(dev: &DeviceDescription, named: bool) -> Result<DeviceKind, RejectReason> {
    if dev.has(Capability::VideoM2m) || dev.has(Capability::VideoM2mMplane) {
        return Err(RejectReason::MemoryToMemory {
            driver: dev.driver.clone(),
        });
    }
    if INTERNAL_DRIVERS.contains(&dev.driver.as_str()) {
        return Err(RejectReason::InternalNode {
            driver: dev.driver.clone(),
        });
    }
    if !dev.has(Capability::VideoCapture) {
        if dev.has(Capability::VideoCaptureMplane) {
            return Err(RejectReason::MultiPlanarOnly);
        }
        return Err(RejectReason::NotCapture {
            capabilities: capability_names(dev),
        });
    }
    if dev.dv_timings.is_some() {
        return Ok(DeviceKind::HdmiBridge);
    }
    match dev.driver.as_str() {
        "unicam" => Err(RejectReason::CameraSensor),
        "uvcvideo" => Ok(DeviceKind::Uvc),
        _ if named => Ok(DeviceKind::Other),
        _ => Err(RejectReason::NotHdmiCandidate {
            driver: dev.driver.clone(),
        }),
    }
}

fn capability_names(dev: &DeviceDescription) -> String {
    if dev.capabilities.is_empty() {
        return "none".into();
    }
    dev.capabilities
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bridge_timing(status: &DvTimingsStatus) -> Result<(&DvTimings, FrameRate), RejectReason> {
    match status {
        DvTimingsStatus::Locked(t) => {
            if t.interlaced {
                return Err(RejectReason::Interlaced {
                    timings: t.to_string(),
                });
            }
            let rate = t.frame_rate().ok_or_else(|| RejectReason::NoFrameRate {
                timings: t.to_string(),
            })?;
            Ok((t, rate))
        }
        DvTimingsStatus::NoSignal => Err(RejectReason::NoSignal),
        DvTimingsStatus::NoSync => Err(RejectReason::NoSync),
        DvTimingsStatus::OutOfRange => Err(RejectReason::OutOfRange),
        DvTimingsStatus::QueryFailed { message } => Err(RejectReason::DvQueryFailed {
            message: message.clone(),
        }),
    }
}

/// Every (size, rate) of one enumerated format that fits the limits.
fn enumerated(
    dev: &DeviceDescription,
    kind: DeviceKind,
    format: PixelFormat,
    fmt: &FormatDescription,
    prefs: &CapturePreferences,
) -> Result<Vec<Candidate>, RejectReason> {
    let limits = &prefs.limits;
    let sizes: Vec<_> = fmt.sizes.iter().filter(|s| !s.rates.is_empty()).collect();
    if sizes.is_empty() {
        return Err(RejectReason::NoFrameSizes);
    }
    let fitting: Vec<_> = sizes
        .iter()
        .filter(|s| s.width <= limits.max_width && s.height <= limits.max_height)
        .collect();
    if fitting.is_empty() {
        let smallest = sizes
            .iter()
            .min_by_key(|s| s.width as u64 * s.height as u64)
            .expect("sizes is not empty");
        return Err(RejectReason::AllTooLarge {
            smallest: format!("{}x{}", smallest.width, smallest.height),
            max: format!("{}x{}", limits.max_width, limits.max_height),
        });
    }
    Ok(fitting
        .iter()
        .flat_map(|size| {
            size.rates.iter().map(|&rate| {
                candidate(
                    dev,
                    kind,
                    format,
                    (size.width, size.height),
                    rate,
                    None,
                    prefs,
                )
            })
        })
        .collect())
}

fn candidate(
    dev: &DeviceDescription,
    kind: DeviceKind,
    format: PixelFormat,
    (width, height): (u32, u32),
    rate: FrameRate,
    dv_timings: Option<&DvTimings>,
    prefs: &CapturePreferences,
) -> Candidate {
    let limits = &prefs.limits;
    let output_rate = reduce_rate(rate, limits.max_fps);
    let (output_width, output_height) = fit(width, height, limits.max_width, limits.max_height);
    let fluent = output_rate.cmp_rate(FrameRate::new(limits.min_fluent_fps.max(1), 1))
        != std::cmp::Ordering::Less;
    let area = output_width as u64 * output_height as u64;
    Candidate {
        key: (
            kind,
            fluent,
            area,
            RateKey(output_rate),
            Reverse(format.cost(prefs.encoder)),
            Reverse(RateKey(rate)),
        ),
        choice: CaptureChoice {
            device: dev.path.clone(),
            driver: dev.driver.clone(),
            card: dev.card.clone(),
            kind,
            format,
            width,
            height,
            rate,
            output_width,
            output_height,
            output_rate,
            dv_timings: dv_timings.cloned(),
            rejected: Vec::new(),
        },
    }
}

/// `rate / n` for the smallest whole `n` that brings it to at most `max_fps`.
fn reduce_rate(rate: FrameRate, max_fps: u32) -> FrameRate {
    // n = ceil(rate / max_fps), at least 1.
    let per_max = rate.den as u64 * max_fps.max(1) as u64;
    let n = (rate.num as u64).div_ceil(per_max).max(1);
    rate.divided(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Scales (never up) to fit within `max_w`×`max_h`, keeping the aspect ratio, even sizes.
fn fit(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let even = |v: u64| ((v / 2) * 2).max(2) as u32;
    if width <= max_w && height <= max_h {
        return (even(width as u64), even(height as u64));
    }
    let (w, h) = (width as u64, height as u64);
    // Compare max_w/w with max_h/h without floats.
    if max_w as u64 * h <= max_h as u64 * w {
        (even(max_w as u64), even(h * max_w as u64 / w))
    } else {
        (even(w * max_h as u64 / h), even(max_h as u64))
    }
}

#[cfg(test)]
mod tests;
