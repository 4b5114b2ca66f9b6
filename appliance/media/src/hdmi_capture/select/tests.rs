use super::*;
use crate::hdmi_capture::description::FrameSize;

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Recorded {
    devices: Vec<DeviceDescription>,
}

const FIXTURES: &[&str] = &[
    "pi4-codec-nodes.toml",
    "pi4-tc358743-1080p60.toml",
    "pi4-tc358743-720p60.toml",
    "pi4-tc358743-no-signal.toml",
    "uvc-ms2109-dongle.toml",
    "no-capture.toml",
];

fn fixture(name: &str) -> Vec<DeviceDescription> {
    let path = format!("{}/tests/fixtures/v4l2/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    toml::from_str::<Recorded>(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .devices
}

/// A Pi 4 box: its codec/ISP nodes plus whatever is on the camera connector.
fn pi4_with(name: &str) -> Vec<DeviceDescription> {
    let mut devices = fixture(name);
    devices.extend(fixture("pi4-codec-nodes.toml"));
    devices
}

fn pi4() -> CapturePreferences {
    CapturePreferences::for_encoder(EncoderKind::V4l2)
}

fn reason_for<'a>(choice_or_list: &'a [Rejection], path: &str) -> &'a RejectReason {
    &choice_or_list
        .iter()
        .find(|r| r.device == Path::new(path) && r.fourcc.is_none())
        .unwrap_or_else(|| panic!("{path} not rejected: {choice_or_list:?}"))
        .reason
}

use std::path::Path;

#[test]
fn every_fixture_parses_and_survives_a_serialisation_round_trip() {
    for name in FIXTURES {
        let devices = fixture(name);
        assert!(!devices.is_empty(), "{name} has no devices");
        // The device layer records real boxes with the same serde shape.
        let text = toml::to_string(&Recorded {
            devices: devices.clone(),
        })
        .unwrap();
        let again: Recorded = toml::from_str(&text).unwrap();
        assert_eq!(again.devices, devices, "{name}");
    }
}

#[test]
fn pi4_tc358743_at_1080p60_captures_native_uyvy_and_halves_the_rate() {
    let choice = select(&pi4_with("pi4-tc358743-1080p60.toml"), &pi4()).unwrap();
    assert_eq!(choice.device, Path::new("/dev/video0"));
    assert_eq!(choice.kind, DeviceKind::HdmiBridge);
    // UYVY goes into v4l2h264enc as is; RGB3 would need a conversion.
    assert_eq!(choice.format, PixelFormat::Uyvy);
    assert_eq!((choice.width, choice.height), (1920, 1080));
    assert_eq!(choice.rate, FrameRate::new(60, 1));
    assert_eq!((choice.output_width, choice.output_height), (1920, 1080));
    assert_eq!(choice.output_rate, FrameRate::new(30, 1));
    assert_eq!(choice.dv_timings.as_ref().map(|t| t.width), Some(1920));
    assert!(
        choice.summary().contains("native input 1920x1080p60.00"),
        "{}",
        choice.summary()
    );

    // Every other node is explained, and the codec/ISP nodes for the right reason.
    let rejected: Vec<_> = choice.rejected.iter().map(|r| r.device.clone()).collect();
    for n in [1, 10, 11, 12, 13, 14, 15, 16, 18, 31] {
        let path = PathBuf::from(format!("/dev/video{n}"));
        assert!(rejected.contains(&path), "{} not explained", path.display());
    }
    assert!(matches!(
        reason_for(&choice.rejected, "/dev/video11"),
        RejectReason::MemoryToMemory { driver } if driver == "bcm2835-codec"
    ));
    // The ISP's output node reports VIDEO_CAPTURE and lists 1080p30: it must still lose.
    assert!(matches!(
        reason_for(&choice.rejected, "/dev/video14"),
        RejectReason::InternalNode { driver } if driver == "bcm2835-isp"
    ));
    assert!(matches!(
        reason_for(&choice.rejected, "/dev/video1"),
        RejectReason::NotCapture { .. }
    ));
}

#[test]
fn software_encoder_still_prefers_the_bridges_yuv_over_rgb() {
    let prefs = CapturePreferences::for_encoder(EncoderKind::X264);
    let choice = select(&pi4_with("pi4-tc358743-1080p60.toml"), &prefs).unwrap();
    assert_eq!(choice.format, PixelFormat::Uyvy);
}

#[test]
fn pi4_tc358743_at_720p60_keeps_the_native_size_without_upscaling() {
    let choice = select(&pi4_with("pi4-tc358743-720p60.toml"), &pi4()).unwrap();
    assert_eq!((choice.width, choice.height), (1280, 720));
    assert_eq!((choice.output_width, choice.output_height), (1280, 720));
    assert_eq!(choice.rate, FrameRate::new(60, 1));
    assert_eq!(choice.output_rate, FrameRate::new(30, 1));
}

#[test]
fn bridge_without_signal_is_a_clear_no_signal_error() {
    let err = select(&pi4_with("pi4-tc358743-no-signal.toml"), &pi4()).unwrap_err();
    assert_eq!(
        err,
        SelectError::NoSignal {
            device: "/dev/video0".into(),
            bridge: "tc358743".into()
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("/dev/video0") && text.contains("no signal"),
        "{text}"
    );
}

#[test]
fn a_dongle_is_used_while_the_bridge_has_no_signal() {
    let mut devices = pi4_with("pi4-tc358743-no-signal.toml");
    // The dongle enumerates after unicam on a real box.
    for (i, mut d) in fixture("uvc-ms2109-dongle.toml").into_iter().enumerate() {
        d.path = format!("/dev/video{}", 2 + i).into();
        devices.push(d);
    }
    let choice = select(&devices, &pi4()).unwrap();
    assert_eq!(choice.device, Path::new("/dev/video2"));
    assert_eq!(choice.kind, DeviceKind::Uvc);
    assert_eq!(
        reason_for(&choice.rejected, "/dev/video0"),
        &RejectReason::NoSignal
    );
}

#[test]
fn uvc_dongle_uses_mjpeg_1080p30_not_yuyv_at_5fps() {
    let choice = select(&fixture("uvc-ms2109-dongle.toml"), &pi4()).unwrap();
    assert_eq!(choice.device, Path::new("/dev/video0"));
    assert_eq!(choice.kind, DeviceKind::Uvc);
    assert_eq!(choice.format, PixelFormat::Mjpeg);
    assert_eq!((choice.width, choice.height), (1920, 1080));
    assert_eq!(choice.rate, FrameRate::new(30, 1));
    assert_eq!(choice.output_rate, FrameRate::new(30, 1));
    assert_eq!(choice.dv_timings, None);
    // The metadata node is explained; 1600x1200 is larger in area but above 1080 lines.
    assert!(matches!(
        reason_for(&choice.rejected, "/dev/video1"),
        RejectReason::NotCapture { .. }
    ));
}

#[test]
fn uvc_dongle_with_a_lower_height_limit_takes_720p_at_30_not_60() {
    let prefs = CapturePreferences {
        limits: CaptureLimits {
            max_width: 1280,
            max_height: 720,
            ..CaptureLimits::default()
        },
        ..pi4()
    };
    let choice = select(&fixture("uvc-ms2109-dongle.toml"), &prefs).unwrap();
    assert_eq!((choice.width, choice.height), (1280, 720));
    // 60 and 30 both deliver 30 fps: the slower capture costs less USB and decoding.
    assert_eq!(choice.rate, FrameRate::new(30, 1));
}

#[test]
fn nothing_capture_capable_lists_every_reason() {
    let err = select(&fixture("no-capture.toml"), &pi4()).unwrap_err();
    let SelectError::NoUsableDevice { rejected } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(
        reason_for(rejected, "/dev/video0"),
        RejectReason::NotCapture { capabilities } if capabilities.contains("VideoOutput")
    ));
    assert!(matches!(
        reason_for(rejected, "/dev/video1"),
        RejectReason::MemoryToMemory { driver } if driver == "vim2m"
    ));
    let text = err.to_string();
    assert!(
        text.contains("/dev/video0") && text.contains("/dev/video1"),
        "{text}"
    );
}

#[test]
fn codec_nodes_alone_are_not_a_capture_device() {
    let err = select(&fixture("pi4-codec-nodes.toml"), &pi4()).unwrap_err();
    let SelectError::NoUsableDevice { rejected } = err else {
        panic!("{err:?}");
    };
    assert_eq!(rejected.len(), fixture("pi4-codec-nodes.toml").len());
}

#[test]
fn no_nodes_and_a_missing_configured_node_are_errors() {
    assert_eq!(select(&[], &pi4()), Err(SelectError::NoDevices));
    let prefs = CapturePreferences {
        device: Some("/dev/video7".into()),
        ..pi4()
    };
    let err = select(&fixture("uvc-ms2109-dongle.toml"), &prefs).unwrap_err();
    assert_eq!(
        err,
        SelectError::DeviceNotFound {
            path: "/dev/video7".into(),
            found: "/dev/video0, /dev/video1".into()
        }
    );
}

fn device(path: &str, driver: &str, formats: Vec<FormatDescription>) -> DeviceDescription {
    DeviceDescription {
        path: path.into(),
        driver: driver.into(),
        card: driver.into(),
        bus_info: String::new(),
        capabilities: vec![Capability::VideoCapture, Capability::Streaming],
        bridge: None,
        formats,
        dv_timings: None,
    }
}

fn format(fourcc: &str, sizes: &[(u32, u32, &[u32])]) -> FormatDescription {
    FormatDescription {
        fourcc: fourcc.into(),
        description: String::new(),
        sizes: sizes
            .iter()
            .map(|&(width, height, rates)| FrameSize {
                width,
                height,
                rates: rates.iter().map(|&r| FrameRate::new(r, 1)).collect(),
            })
            .collect(),
    }
}

fn bridge(timings: DvTimings) -> DeviceDescription {
    DeviceDescription {
        bridge: Some("tc358743".into()),
        dv_timings: Some(DvTimingsStatus::Locked(timings)),
        ..device(
            "/dev/video0",
            "unicam",
            vec![format("UYVY", &[]), format("RGB3", &[])],
        )
    }
}

#[test]
fn a_1920x1200_laptop_is_scaled_to_fit_1080_lines_keeping_its_aspect() {
    // WUXGA at 60 Hz, CVT reduced blanking.
    let dev = bridge(DvTimings {
        width: 1920,
        height: 1200,
        total_width: 2080,
        total_height: 1235,
        pixelclock_hz: 154_000_000,
        interlaced: false,
    });
    let choice = select(&[dev], &pi4()).unwrap();
    assert_eq!((choice.width, choice.height), (1920, 1200));
    assert_eq!((choice.output_width, choice.output_height), (1728, 1080));
    // 59.95 Hz halves to just under 30.
    let out = choice.output_rate.as_f64();
    assert!((29.9..30.0).contains(&out), "{out}");
}

#[test]
fn interlaced_input_is_rejected_with_the_timing() {
    let dev = bridge(DvTimings {
        width: 1920,
        height: 1080,
        total_width: 2200,
        total_height: 1125,
        pixelclock_hz: 74_250_000,
        interlaced: true,
    });
    let err = select(&[dev], &pi4()).unwrap_err();
    let SelectError::NoUsableDevice { rejected } = err else {
        panic!("{err:?}");
    };
    assert!(matches!(
        &rejected[0].reason,
        RejectReason::Interlaced { timings } if timings.starts_with("1920x1080i")
    ));
}

#[test]
fn usb3_dongle_with_raw_1080p30_skips_jpeg_decoding() {
    let dev = device(
        "/dev/video0",
        "uvcvideo",
        vec![
            format("MJPG", &[(1920, 1080, &[60, 30])]),
            format("YUYV", &[(1920, 1080, &[60, 30])]),
            format("H264", &[(1920, 1080, &[30])]),
        ],
    );
    let choice = select(std::slice::from_ref(&dev), &pi4()).unwrap();
    assert_eq!(choice.format, PixelFormat::Yuyv);
    assert_eq!(choice.rate, FrameRate::new(30, 1));
    assert_eq!(
        choice.rejected,
        vec![Rejection {
            device: "/dev/video0".into(),
            fourcc: Some("H264".into()),
            reason: RejectReason::UnsupportedFormat
        }]
    );
}

#[test]
fn a_4k_only_format_is_rejected_with_its_smallest_size() {
    let dev = device(
        "/dev/video0",
        "uvcvideo",
        vec![
            format("YUYV", &[(3840, 2160, &[30]), (2560, 1440, &[30])]),
            format("MJPG", &[(1280, 720, &[30])]),
        ],
    );
    let choice = select(&[dev], &pi4()).unwrap();
    assert_eq!(choice.format, PixelFormat::Mjpeg);
    assert_eq!(
        choice.rejected[0].reason,
        RejectReason::AllTooLarge {
            smallest: "2560x1440".into(),
            max: "1920x1080".into()
        }
    );
}

#[test]
fn other_drivers_only_when_named_and_unicam_cameras_never() {
    let vivid = device(
        "/dev/video3",
        "vivid",
        vec![format("YUYV", &[(1280, 720, &[30])])],
    );
    let camera = device(
        "/dev/video0",
        "unicam",
        vec![format("pRAA", &[(3280, 2464, &[15])])],
    );
    let devices = [camera, vivid];
    let err = select(&devices, &pi4()).unwrap_err();
    let SelectError::NoUsableDevice { rejected } = err else {
        panic!("{err:?}");
    };
    assert_eq!(
        reason_for(&rejected, "/dev/video0"),
        &RejectReason::CameraSensor
    );
    assert!(matches!(
        reason_for(&rejected, "/dev/video3"),
        RejectReason::NotHdmiCandidate { driver } if driver == "vivid"
    ));

    let prefs = CapturePreferences {
        device: Some("/dev/video3".into()),
        ..pi4()
    };
    let choice = select(&devices, &prefs).unwrap();
    assert_eq!(choice.kind, DeviceKind::Other);
    assert_eq!(choice.format, PixelFormat::Yuyv);
}

#[test]
fn rate_reduction_and_fitting() {
    assert_eq!(
        reduce_rate(FrameRate::new(50, 1), 30),
        FrameRate::new(25, 1)
    );
    assert_eq!(
        reduce_rate(FrameRate::new(120, 1), 30),
        FrameRate::new(30, 1)
    );
    assert_eq!(
        reduce_rate(FrameRate::new(24, 1), 30),
        FrameRate::new(24, 1)
    );
    assert_eq!(
        reduce_rate(FrameRate::new(60000, 1001), 30),
        FrameRate::new(30000, 1001)
    );
    assert_eq!(
        reduce_rate(FrameRate::new(30, 1), 30),
        FrameRate::new(30, 1)
    );
    assert_eq!(
        reduce_rate(FrameRate::new(31, 1), 30),
        FrameRate::new(31, 2)
    );
    assert_eq!(fit(3840, 2160, 1920, 1080), (1920, 1080));
    assert_eq!(fit(1280, 1024, 1920, 1080), (1280, 1024));
    assert_eq!(fit(2560, 1600, 1920, 1080), (1728, 1080));
    assert_eq!(fit(1366, 768, 1280, 720), (1280, 718));
}

#[test]
fn a_test_pattern_choice_is_limited_like_a_real_capture() {
    let choice = CaptureChoice::test_pattern(2560, 1440, FrameRate::new(60, 1));
    assert_eq!(choice.format, PixelFormat::I420);
    assert_eq!((choice.width, choice.height), (2560, 1440));
    assert_eq!((choice.output_width, choice.output_height), (1920, 1080));
    assert_eq!(choice.output_rate, FrameRate::new(30, 1));
}

#[test]
fn a_capture_node_without_formats_is_explained() {
    let dev = device("/dev/video0", "uvcvideo", vec![]);
    let err = select(&[dev], &pi4()).unwrap_err();
    assert_eq!(
        err,
        SelectError::NoUsableDevice {
            rejected: vec![Rejection {
                device: "/dev/video0".into(),
                fourcc: None,
                reason: RejectReason::NoFormats
            }]
        }
    );
}

#[test]
fn a_locked_bridge_beats_a_dongle_even_with_a_smaller_picture() {
    // The bridge shows the PC's native 720p; the dongle would rescale it to 1080p anyway.
    let mut devices = pi4_with("pi4-tc358743-720p60.toml");
    for (i, mut d) in fixture("uvc-ms2109-dongle.toml").into_iter().enumerate() {
        d.path = format!("/dev/video{}", 2 + i).into();
        devices.push(d);
    }
    let choice = select(&devices, &pi4()).unwrap();
    assert_eq!(choice.device, Path::new("/dev/video0"));
    assert_eq!(choice.kind, DeviceKind::HdmiBridge);
    assert_eq!((choice.width, choice.height), (1280, 720));
}
