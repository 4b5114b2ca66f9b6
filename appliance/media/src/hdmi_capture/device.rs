//! The part that touches real V4L2 nodes (feature `v4l2-capture`).
//!
//! Capabilities, formats, sizes and frame intervals come from the `v4l` crate. DV timings do
//! not: the crate has no safe call for `VIDIOC_QUERY_DV_TIMINGS`/`VIDIOC_S_DV_TIMINGS` and this
//! workspace forbids `unsafe`, so they go through `v4l2-ctl` (v4l-utils), whose output
//! [`parse_query_dv_timings`] reads. Everything here is thin: the decisions are in `select`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::sync::mpsc;
use v4l::capability::Flags;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;

use super::description::{
    parse_query_dv_timings, Capability, DeviceDescription, DvTimingsStatus, FormatDescription,
    FrameRate, FrameSize,
};
use super::pipeline::{CaptureInput, HdmiCapture};
use super::select::{select, CaptureChoice, CapturePreferences, DeviceKind, SelectError};
use crate::{CodecProbe, EncodedFrame, MediaError};

/// Failures of the device layer.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("opening {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("querying {what} of {path}: {source}")]
    Query {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("V4L2 nodes exist but none could be read: {detail}")]
    Unreadable { detail: String },
    #[error("applying the HDMI input timing to {path}: {detail}")]
    SetTimings { path: PathBuf, detail: String },
    #[error("after applying the input timing, {path} reports {got} instead of {want}")]
    TimingMismatch {
        path: PathBuf,
        got: String,
        want: String,
    },
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Pipeline(#[from] MediaError),
}

/// Describes every `/dev/videoN`, in index order. A node that cannot be opened (permissions)
/// is logged and skipped; if every node fails, that is an error naming them.
pub fn describe_devices() -> Result<Vec<DeviceDescription>, DeviceError> {
    let mut nodes: Vec<(usize, PathBuf)> = v4l::context::enum_devices()
        .into_iter()
        .map(|n| (n.index(), n.path().to_path_buf()))
        .collect();
    nodes.sort();
    let mut described = Vec::new();
    let mut failures = Vec::new();
    for (_, path) in &nodes {
        match describe_device(path) {
            Ok(d) => described.push(d),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping V4L2 node");
                failures.push(e.to_string());
            }
        }
    }
    if described.is_empty() && !failures.is_empty() {
        return Err(DeviceError::Unreadable {
            detail: failures.join("; "),
        });
    }
    Ok(described)
}

/// Describes one node: capabilities, and for capture nodes formats, sizes, rates and the
/// HDMI input timing.
pub fn describe_device(path: &Path) -> Result<DeviceDescription, DeviceError> {
    let dev = v4l::Device::with_path(path).map_err(|source| DeviceError::Open {
        path: path.into(),
        source,
    })?;
    let caps = dev.query_caps().map_err(|source| DeviceError::Query {
        path: path.into(),
        what: "capabilities",
        source,
    })?;
    let capabilities = capability_list(caps.capabilities);
    let capture = caps.capabilities.contains(Flags::VIDEO_CAPTURE);
    let formats = if capture {
        formats(&dev, path)?
    } else {
        Vec::new()
    };
    let bridge = (caps.driver == "unicam").then(bound_bridge).flatten();
    let dv_timings = if capture {
        query_dv_timings(path, bridge.is_some())
    } else {
        None
    };
    Ok(DeviceDescription {
        path: path.into(),
        driver: caps.driver,
        card: caps.card,
        bus_info: caps.bus,
        capabilities,
        bridge,
        formats,
        dv_timings,
    })
}

fn capability_list(flags: Flags) -> Vec<Capability> {
    let known = [
        (Flags::VIDEO_CAPTURE, Capability::VideoCapture),
        (Flags::VIDEO_CAPTURE_MPLANE, Capability::VideoCaptureMplane),
        (Flags::VIDEO_OUTPUT, Capability::VideoOutput),
        (Flags::VIDEO_OUTPUT_MPLANE, Capability::VideoOutputMplane),
        (Flags::VIDEO_M2M, Capability::VideoM2m),
        (Flags::VIDEO_M2M_MPLANE, Capability::VideoM2mMplane),
        (Flags::META_CAPTURE, Capability::MetaCapture),
        (Flags::META_OUTPUT, Capability::MetaOutput),
        (Flags::READ_WRITE, Capability::ReadWrite),
        (Flags::STREAMING, Capability::Streaming),
        (Flags::EXT_PIX_FORMAT, Capability::ExtPixFormat),
    ];
    known
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, cap)| *cap)
        .collect()
}

fn formats(dev: &v4l::Device, path: &Path) -> Result<Vec<FormatDescription>, DeviceError> {
    let descriptions = dev.enum_formats().map_err(|source| DeviceError::Query {
        path: path.into(),
        what: "formats",
        source,
    })?;
    Ok(descriptions
        .into_iter()
        .map(|d| {
            let fourcc = d.fourcc.str().unwrap_or("????").to_string();
            // unicam with a bridge enumerates no sizes (the HDMI source decides): an error
            // here means "none", not a broken device.
            let sizes = dev
                .enum_framesizes(d.fourcc)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| match s.size {
                    FrameSizeEnum::Discrete(size) => Some(FrameSize {
                        width: size.width,
                        height: size.height,
                        rates: rates(dev, d.fourcc, size.width, size.height),
                    }),
                    FrameSizeEnum::Stepwise(range) => {
                        tracing::debug!(path = %path.display(), %fourcc, %range, "stepwise frame sizes not used");
                        None
                    }
                })
                .collect();
            FormatDescription {
                fourcc,
                description: d.description,
                sizes,
            }
        })
        .collect())
}

/// Frame rates at one size, fastest first. A stepwise range gives its two ends.
fn rates(dev: &v4l::Device, fourcc: v4l::FourCC, width: u32, height: u32) -> Vec<FrameRate> {
    let mut rates: Vec<FrameRate> = dev
        .enum_frameintervals(fourcc, width, height)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| match i.interval {
            FrameIntervalEnum::Discrete(f) => vec![(f.numerator, f.denominator)],
            FrameIntervalEnum::Stepwise(s) => vec![
                (s.min.numerator, s.min.denominator),
                (s.max.numerator, s.max.denominator),
            ],
        })
        .filter_map(|(num, den)| FrameRate::from_interval(num, den))
        .collect();
    rates.sort_by(|a, b| b.cmp_rate(*a));
    rates.dedup();
    rates
}

/// The TC358743 is an I²C device: when its driver is bound, `/sys/bus/i2c/drivers/tc358743`
/// holds a link named after the bus and address (e.g. `10-000f`).
fn bound_bridge() -> Option<String> {
    let entries = std::fs::read_dir("/sys/bus/i2c/drivers/tc358743").ok()?;
    entries
        .flatten()
        .any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.contains('-') && name.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .then(|| "tc358743".to_string())
}

/// Asks v4l2-ctl for the input timing. Without v4l2-ctl, a node known to have a bridge gets
/// a failure that says what to install; any other node is taken as having no DV timings.
fn query_dv_timings(path: &Path, has_bridge: bool) -> Option<DvTimingsStatus> {
    match v4l2_ctl(path, &["--query-dv-timings"]) {
        Ok(text) => parse_query_dv_timings(&text),
        Err(e) if has_bridge => Some(DvTimingsStatus::QueryFailed { message: e }),
        Err(_) => None,
    }
}

/// Runs `v4l2-ctl -d PATH ARGS…` and returns stdout and stderr together (its errors are on
/// stderr, the timings on stdout, and the parser wants both).
fn v4l2_ctl(path: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("v4l2-ctl")
        .arg("-d")
        .arg(path)
        .args(args)
        .output()
        .map_err(|e| format!("running v4l2-ctl (install v4l-utils): {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

/// Gets the device ready for `choice`. A bridge keeps the timing it was last set to until
/// told otherwise, so the detected timing is applied (`--set-dv-bt-timings query`) and the
/// node's format is checked to have followed.
pub fn prepare_device(choice: &CaptureChoice) -> Result<(), DeviceError> {
    if choice.kind != DeviceKind::HdmiBridge {
        return Ok(());
    }
    let path = &choice.device;
    let set = |detail: String| DeviceError::SetTimings {
        path: path.clone(),
        detail,
    };
    let out = Command::new("v4l2-ctl")
        .arg("-d")
        .arg(path)
        .args(["--set-dv-bt-timings", "query"])
        .output()
        .map_err(|e| set(format!("running v4l2-ctl (install v4l-utils): {e}")))?;
    if !out.status.success() {
        return Err(set(format!(
            "v4l2-ctl exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let dev = v4l::Device::with_path(path).map_err(|source| DeviceError::Open {
        path: path.clone(),
        source,
    })?;
    let format = dev.format().map_err(|source| DeviceError::Query {
        path: path.clone(),
        what: "the current format",
        source,
    })?;
    if (format.width, format.height) != (choice.width, choice.height) {
        return Err(DeviceError::TimingMismatch {
            path: path.clone(),
            got: format!("{}x{}", format.width, format.height),
            want: format!("{}x{}", choice.width, choice.height),
        });
    }
    Ok(())
}

/// Describes the nodes, selects, prepares the device and starts the pipeline: the box's
/// HDMI demo source in one call.
pub fn start_hdmi_capture(
    prefs: &CapturePreferences,
    probe: &CodecProbe,
    bitrate_kbps: u32,
    out: mpsc::Sender<EncodedFrame>,
) -> Result<HdmiCapture, DeviceError> {
    let devices = describe_devices()?;
    let choice = select(&devices, prefs)?;
    for r in &choice.rejected {
        tracing::info!(rejected = %r, "HDMI capture: not used");
    }
    tracing::info!(choice = %choice.summary(), "HDMI capture: selected");
    prepare_device(&choice)?;
    Ok(HdmiCapture::start(
        &choice,
        CaptureInput::Device,
        probe,
        bitrate_kbps,
        out,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::idr_with_parameter_sets;
    use crate::testutil::{decode, recv_within, tracing};

    #[derive(serde::Serialize)]
    struct Recorded<'a> {
        devices: &'a [DeviceDescription],
    }

    /// Prints what this machine's nodes look like in the fixture format (to record new
    /// fixtures: `-- --ignored --nocapture describes_this_machine`) and checks a selection.
    #[test]
    #[ignore = "needs V4L2 capture device"]
    fn describes_this_machine_and_selects_a_capture_device() {
        tracing();
        let devices = describe_devices().unwrap();
        println!(
            "{}",
            toml::to_string(&Recorded { devices: &devices }).unwrap()
        );
        let probe = crate::init().unwrap();
        let choice = select(&devices, &CapturePreferences::for_encoder(probe.encoder))
            .unwrap_or_else(|e| panic!("{e}"));
        println!("selected: {}", choice.summary());
        for r in &choice.rejected {
            println!("not used: {r}");
        }
        assert!(devices.iter().any(|d| d.path == choice.device));
    }

    /// Runs the real device end to end: the first access unit is an IDR with SPS/PPS and it
    /// decodes to the selected output size.
    #[tokio::test]
    #[ignore = "needs V4L2 capture device"]
    async fn captures_the_hdmi_input_and_encodes_it() {
        tracing();
        let probe = crate::init().unwrap();
        let (tx, mut rx) = mpsc::channel(256);
        let capture = start_hdmi_capture(
            &CapturePreferences::for_encoder(probe.encoder),
            &probe,
            4000,
            tx,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut got = Vec::new();
        while got.len() < 90 {
            got.push(recv_within(&mut rx, 10, "HDMI access unit").await);
        }
        assert!(got[0].keyframe && idr_with_parameter_sets(&got[0].data));
        assert!(
            got.iter().skip(1).any(|f| f.keyframe),
            "no second keyframe within 90 frames"
        );
        let pictures = decode(&got[..3].iter().map(|f| f.data.clone()).collect::<Vec<_>>());
        let choice = capture.choice();
        assert_eq!(
            (pictures[0].width, pictures[0].height),
            (choice.output_width as usize, choice.output_height as usize)
        );
        println!("{} — dropped {}", choice.summary(), capture.dropped());
    }
}
