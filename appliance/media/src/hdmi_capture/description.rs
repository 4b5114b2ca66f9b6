//! What a V4L2 capture node says about itself, as plain data.
//!
//! The device layer (`device.rs`, behind the `v4l2-capture` feature) fills these structs from
//! ioctls; the selector only ever sees the structs. That split is what lets the selection be
//! tested against device descriptions (`tests/fixtures/v4l2/*.toml`) on a machine that has
//! no capture hardware at all. The fixtures are hand-written from the drivers' documented
//! behaviour until they can be replaced by recordings from real boxes (docs/hardware.md).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One `/dev/videoN` node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDescription {
    pub path: PathBuf,
    /// `VIDIOC_QUERYCAP` driver name: `unicam`, `uvcvideo`, `bcm2835-codec`…
    pub driver: String,
    /// `VIDIOC_QUERYCAP` card name, e.g. `USB3.0 Capture` for a dongle.
    pub card: String,
    #[serde(default)]
    pub bus_info: String,
    /// The node's own capabilities (`device_caps`, not the whole driver's).
    pub capabilities: Vec<Capability>,
    /// The HDMI bridge chip behind a CSI receiver (`tc358743`), when the kernel has one bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    #[serde(default)]
    pub formats: Vec<FormatDescription>,
    /// `None` when the node does not implement DV timings (UVC dongles, camera sensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dv_timings: Option<DvTimingsStatus>,
}

impl DeviceDescription {
    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }
}

/// The `V4L2_CAP_*` flags the selector looks at, named without the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    VideoCapture,
    VideoCaptureMplane,
    VideoOutput,
    VideoOutputMplane,
    VideoM2m,
    VideoM2mMplane,
    MetaCapture,
    MetaOutput,
    ReadWrite,
    Streaming,
    ExtPixFormat,
    /// Any flag the selector has no use for (tuner, radio, VBI…).
    #[serde(other)]
    Other,
}

/// One pixel format (`VIDIOC_ENUM_FMT`) with its discrete sizes and rates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatDescription {
    /// The V4L2 FourCC as text: `UYVY`, `YUYV`, `MJPG`, `NV12`, `RGB3`…
    pub fourcc: String,
    #[serde(default)]
    pub description: String,
    /// Empty when the driver enumerates no sizes (unicam with an HDMI bridge: the size is
    /// whatever the DV timings say) or only a stepwise range.
    #[serde(default)]
    pub sizes: Vec<FrameSize>,
}

/// One discrete frame size and the frame rates offered at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameSize {
    pub width: u32,
    pub height: u32,
    /// Frame rates (the inverse of V4L2's frame intervals), fastest first as drivers list them.
    #[serde(default)]
    pub rates: Vec<FrameRate>,
}

/// A frame rate as an exact fraction (`30/1`, `30000/1001`), written as text in fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    /// A reduced fraction; `den` must not be zero.
    pub fn new(num: u32, den: u32) -> FrameRate {
        assert!(den != 0, "frame rate {num}/0");
        let g = gcd(num, den).max(1);
        FrameRate {
            num: num / g,
            den: den / g,
        }
    }

    /// The rate of one V4L2 frame interval (`numerator/denominator` seconds).
    pub fn from_interval(num: u32, den: u32) -> Option<FrameRate> {
        (num != 0 && den != 0).then(|| FrameRate::new(den, num))
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// This rate divided by `n` (every n-th frame kept).
    pub fn divided(self, n: u32) -> FrameRate {
        FrameRate::new(self.num, self.den.saturating_mul(n.max(1)))
    }

    /// Compares exactly, by cross-multiplication.
    pub fn cmp_rate(self, other: FrameRate) -> std::cmp::Ordering {
        (self.num as u64 * other.den as u64).cmp(&(other.num as u64 * self.den as u64))
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

impl FromStr for FrameRate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (num, den) = s.split_once('/').unwrap_or((s, "1"));
        let parse = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|e| format!("frame rate '{s}': {e}"))
        };
        let (num, den) = (parse(num)?, parse(den)?);
        if num == 0 || den == 0 {
            return Err(format!("frame rate '{s}' must be positive"));
        }
        Ok(FrameRate::new(num, den))
    }
}

impl TryFrom<String> for FrameRate {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<FrameRate> for String {
    fn from(r: FrameRate) -> String {
        r.to_string()
    }
}

/// What `VIDIOC_QUERY_DV_TIMINGS` answered: the bridge's view of the HDMI input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum DvTimingsStatus {
    /// A stable signal with these timings.
    Locked(DvTimings),
    /// `ENOLINK`: nothing connected, or the source sends nothing (PC asleep, cable out).
    NoSignal,
    /// `ENOLCK`: a signal the bridge cannot lock onto (yet).
    NoSync,
    /// `ERANGE`: timings outside what the bridge supports (e.g. 4K into a TC358743).
    OutOfRange,
    /// Any other failure, with the text the query gave.
    QueryFailed { message: String },
}

/// The detected input timing (BT.656/1120 timings as the kernel reports them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvTimings {
    pub width: u32,
    pub height: u32,
    /// Active plus blanking: the pixel clock divided by these is the frame rate.
    pub total_width: u32,
    pub total_height: u32,
    pub pixelclock_hz: u64,
    #[serde(default)]
    pub interlaced: bool,
}

impl DvTimings {
    /// Frames per second as an exact fraction; `None` for a nonsensical zero total.
    pub fn frame_rate(&self) -> Option<FrameRate> {
        let total = self.total_width as u64 * self.total_height as u64;
        if total == 0 || self.pixelclock_hz == 0 {
            return None;
        }
        // Reduce in u64 first: a 148.5 MHz clock does not fit the u32 fraction unreduced.
        let g = gcd64(self.pixelclock_hz, total);
        let (mut num, mut den) = (self.pixelclock_hz / g, total / g);
        // Pathological clocks (not multiples of anything): keep three decimals of precision.
        while num > u32::MAX as u64 || den > u32::MAX as u64 {
            num /= 10;
            den /= 10;
        }
        (den != 0 && num != 0).then(|| FrameRate::new(num as u32, den as u32))
    }
}

fn gcd64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl fmt::Display for DvTimings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.interlaced { "i" } else { "p" };
        match self.frame_rate() {
            Some(r) => write!(f, "{}x{}{kind}{:.2}", self.width, self.height, r.as_f64()),
            None => write!(f, "{}x{}{kind}?", self.width, self.height),
        }
    }
}

/// Reads the output of `v4l2-ctl -d DEV --query-dv-timings` (stdout and stderr together).
///
/// The `v4l` crate has no safe call for the DV-timings ioctls and this workspace forbids
/// `unsafe`, so the device layer asks `v4l2-ctl` (v4l-utils, on every Raspberry Pi OS image)
/// and this parser turns its text into a status. Errors are recognised by the errno text
/// that v4l2-ctl prints after `VIDIOC_QUERY_DV_TIMINGS: failed:`. `None` means the node does
/// not implement DV timings at all (`ENOTTY`), i.e. it is not an HDMI receiver.
pub fn parse_query_dv_timings(output: &str) -> Option<DvTimingsStatus> {
    let field = |name: &str| {
        output.lines().find_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let number = |name: &str| -> Option<u64> {
        let v = field(name)?;
        v.split_whitespace().next()?.parse().ok()
    };
    if let (Some(w), Some(h)) = (number("Active width"), number("Active height")) {
        let timings = DvTimings {
            width: w as u32,
            height: h as u32,
            total_width: number("Total width").unwrap_or(0) as u32,
            total_height: number("Total height").unwrap_or(0) as u32,
            pixelclock_hz: number("Pixelclock").unwrap_or(0),
            interlaced: field("Frame format").is_some_and(|f| f.starts_with("interlaced")),
        };
        // A bridge that reports 0x0 "locked" timings has not really locked.
        if w == 0 || h == 0 {
            return Some(DvTimingsStatus::NoSync);
        }
        return Some(DvTimingsStatus::Locked(timings));
    }
    let lower = output.to_ascii_lowercase();
    if lower.contains("inappropriate ioctl") {
        return None;
    }
    if lower.contains("no link") {
        return Some(DvTimingsStatus::NoSignal);
    }
    if lower.contains("no locks available") {
        return Some(DvTimingsStatus::NoSync);
    }
    if lower.contains("out of range") {
        return Some(DvTimingsStatus::OutOfRange);
    }
    let message = output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string();
    Some(DvTimingsStatus::QueryFailed { message })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout v4l2-ctl (v4l-utils 1.22) prints for a 1080p60 input.
    const LOCKED_1080P60: &str = "\tActive width: 1920
\tActive height: 1080
\tTotal width: 2200
\tTotal height: 1125
\tFrame format: progressive
\tPolarities: +vsync +hsync
\tPixelclock: 148500000 Hz (60.00 frames per second)
\tHorizontal frontporch: 88
\tHorizontal sync: 44
\tHorizontal backporch: 148
\tVertical frontporch: 4
\tVertical sync: 5
\tVertical backporch: 36
\tStandards: CTA-861, DMT
\tFlags: can reduce fps, CE-video, has CTA-861 VIC
";

    #[test]
    fn locked_1080p60_gives_exact_timings_and_rate() {
        let Some(DvTimingsStatus::Locked(t)) = parse_query_dv_timings(LOCKED_1080P60) else {
            panic!("not locked");
        };
        assert_eq!((t.width, t.height), (1920, 1080));
        assert_eq!((t.total_width, t.total_height), (2200, 1125));
        assert!(!t.interlaced);
        assert_eq!(t.frame_rate(), Some(FrameRate::new(60, 1)));
        assert_eq!(t.to_string(), "1920x1080p60.00");
    }

    #[test]
    fn ntsc_style_clock_gives_the_1001_fraction() {
        // 1080p59.94: 148.5 MHz / 1.001.
        let t = DvTimings {
            width: 1920,
            height: 1080,
            total_width: 2200,
            total_height: 1125,
            pixelclock_hz: 148_351_648,
            interlaced: false,
        };
        let r = t.frame_rate().unwrap();
        assert!((r.as_f64() - 59.94).abs() < 0.01, "{r}");
        // 720p30 (74.25 MHz over 3300x750).
        let t = DvTimings {
            width: 1280,
            height: 720,
            total_width: 3300,
            total_height: 750,
            pixelclock_hz: 74_250_000,
            interlaced: false,
        };
        assert_eq!(t.frame_rate(), Some(FrameRate::new(30, 1)));
    }

    #[test]
    fn query_failures_map_to_the_errno_they_print() {
        let cases = [
            (
                "VIDIOC_QUERY_DV_TIMINGS: failed: No link has been detected",
                Some(DvTimingsStatus::NoSignal),
            ),
            (
                "VIDIOC_QUERY_DV_TIMINGS: failed: No locks available",
                Some(DvTimingsStatus::NoSync),
            ),
            (
                "VIDIOC_QUERY_DV_TIMINGS: failed: Numerical result out of range",
                Some(DvTimingsStatus::OutOfRange),
            ),
            (
                "VIDIOC_QUERY_DV_TIMINGS: failed: Inappropriate ioctl for device",
                None,
            ),
            (
                "Failed to open /dev/video0: Permission denied",
                Some(DvTimingsStatus::QueryFailed {
                    message: "Failed to open /dev/video0: Permission denied".into(),
                }),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_query_dv_timings(text), want, "{text}");
        }
    }

    #[test]
    fn frame_rates_parse_reduce_and_compare() {
        assert_eq!("30".parse::<FrameRate>().unwrap(), FrameRate::new(30, 1));
        assert_eq!("60/2".parse::<FrameRate>().unwrap(), FrameRate::new(30, 1));
        assert_eq!(
            "30000/1001".parse::<FrameRate>().unwrap().to_string(),
            "30000/1001"
        );
        assert!("0/1".parse::<FrameRate>().is_err());
        assert!("30/x".parse::<FrameRate>().is_err());
        assert_eq!(FrameRate::from_interval(1, 30), Some(FrameRate::new(30, 1)));
        assert_eq!(FrameRate::from_interval(0, 30), None);
        assert_eq!(FrameRate::new(60, 1).divided(2), FrameRate::new(30, 1));
        assert_eq!(
            FrameRate::new(30000, 1001).cmp_rate(FrameRate::new(30, 1)),
            std::cmp::Ordering::Less
        );
    }
}
