use super::*;
use crate::h264::{idr_with_parameter_sets, nal_types};
use crate::hdmi_capture::{select, CaptureLimits, CapturePreferences, DeviceDescription};
use crate::testutil::{decode, recv_within, tracing};

#[derive(serde::Deserialize)]
struct Recorded {
    devices: Vec<DeviceDescription>,
}

fn recorded(name: &str) -> Vec<DeviceDescription> {
    let path = format!("{}/tests/fixtures/v4l2/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str::<Recorded>(&text).unwrap().devices
}

/// The fan-out relay keeps the source in a task and shares it.
#[test]
fn an_hdmi_capture_can_move_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<HdmiCapture>();
}

/// Receives `n` access units.
async fn frames(rx: &mut mpsc::Receiver<EncodedFrame>, n: usize) -> Vec<EncodedFrame> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(recv_within(rx, 10, "HDMI access unit").await);
    }
    out
}

/// The TC358743 at 720p60, as recorded, selected for this machine's encoder and run with the
/// test pattern in its place: UYVY 1280x720 at 60 fps in, 30 fps H.264 out.
#[tokio::test]
async fn bridge_720p60_stand_in_gives_keyframes_with_parameter_sets_at_30fps() {
    tracing();
    let probe = crate::init().unwrap();
    let choice = select(
        &recorded("pi4-tc358743-720p60.toml"),
        &CapturePreferences::for_encoder(probe.encoder),
    )
    .unwrap();
    assert_eq!(choice.format, PixelFormat::Uyvy);
    let (tx, mut rx) = mpsc::channel(256);
    let mut capture =
        HdmiCapture::start(&choice, CaptureInput::TestPattern, &probe, 2000, tx).unwrap();

    // GOP is two seconds (60 frames at 30 fps): 70 frames hold the first two keyframes.
    let got = frames(&mut rx, 70).await;
    let first = &got[0];
    assert!(first.keyframe, "the first access unit must be a keyframe");
    assert!(
        idr_with_parameter_sets(&first.data),
        "SPS/PPS must precede the first IDR: NAL types {:?}",
        nal_types(&first.data)
    );
    let now = crate::now_us();
    assert!(
        first.capture_us <= now && now - first.capture_us < 5_000_000,
        "capture_us {} is not close to now {now}",
        first.capture_us
    );
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "sequence numbers must count up");
        // 60 fps in, 30 out: consecutive frames are ~33 ms apart in capture time, never the
        // 16.7 ms of the input (a leaky queue may drop more on a loaded machine).
        let gap = w[1].capture_us - w[0].capture_us;
        assert!(gap >= 30_000, "frame gap {gap} µs: the rate was not halved");
    }
    let keys: Vec<&EncodedFrame> = got.iter().filter(|f| f.keyframe).collect();
    assert!(
        keys.len() >= 2,
        "no second keyframe within 70 frames (GOP 60)"
    );
    for k in &keys {
        assert!(
            idr_with_parameter_sets(&k.data),
            "keyframe {} without SPS/PPS: {:?}",
            k.seq,
            nal_types(&k.data)
        );
    }
    assert!(
        got.iter().filter(|f| !f.keyframe).count() > 50,
        "inter frames expected between keyframes"
    );

    // A keyframe on request, long before the GOP would give one.
    capture.request_keyframe();
    let after = frames(&mut rx, 10).await;
    let key = after
        .iter()
        .find(|f| f.keyframe)
        .expect("no keyframe within 10 frames of the request (GOP is 60)");
    assert!(idr_with_parameter_sets(&key.data));

    // The bitrate changes live; nonsense is refused and changes nothing.
    capture.set_bitrate(1000).unwrap();
    assert!(matches!(
        capture.set_bitrate(5),
        Err(MediaError::InvalidParams(_))
    ));
    assert_eq!(capture.params.bitrate_kbps, 1000);
    let after_change = frames(&mut rx, 5).await;
    assert_eq!(after_change[0].seq, after.last().unwrap().seq + 1);

    let pictures = decode(&got[..5].iter().map(|f| f.data.clone()).collect::<Vec<_>>());
    assert_eq!(pictures.len(), 5, "every access unit decodes to a picture");
    let p = &pictures[0];
    assert_eq!((p.width, p.height), (1280, 720));
    // GStreamer's SMPTE bars are full intensity: white, then yellow, left to right.
    let white = p.dominant(20, 100, 100, 200);
    assert!(
        crate::testutil::close(white, [255, 255, 255], 30),
        "leftmost bar {white:?}"
    );
    let yellow = p.dominant(1280 / 7 + 20, 100, 100, 200);
    assert!(
        crate::testutil::close(yellow, [255, 255, 0], 40),
        "second bar {yellow:?}"
    );
    assert!(capture.errors().borrow().is_none());
    assert_eq!(capture.dropped(), 0);
    let last = after_change.last().unwrap().capture_us;
    assert!(
        capture.last_capture_us().is_some_and(|us| us >= last),
        "last_capture_us {:?} is behind the last received unit {last}",
        capture.last_capture_us()
    );
}

/// The recorded USB 2 dongle limited to 720p: Motion-JPEG is the only fluent choice, so the
/// stand-in JPEG-encodes and the pipeline runs jpegdec, as with the real dongle.
#[tokio::test]
async fn dongle_mjpeg_stand_in_decodes_jpeg_and_encodes_h264() {
    tracing();
    let probe = crate::init().unwrap();
    let prefs = CapturePreferences {
        limits: CaptureLimits {
            max_width: 1280,
            max_height: 720,
            ..CaptureLimits::default()
        },
        ..CapturePreferences::for_encoder(probe.encoder)
    };
    let choice = select(&recorded("uvc-ms2109-dongle.toml"), &prefs).unwrap();
    assert_eq!(choice.format, PixelFormat::Mjpeg);
    assert_eq!((choice.width, choice.height), (1280, 720));
    let (tx, mut rx) = mpsc::channel(64);
    let capture = HdmiCapture::start(&choice, CaptureInput::TestPattern, &probe, 1500, tx).unwrap();
    let got = frames(&mut rx, 3).await;
    assert!(got[0].keyframe && idr_with_parameter_sets(&got[0].data));
    let pictures = decode(&got.iter().map(|f| f.data.clone()).collect::<Vec<_>>());
    assert_eq!(pictures.len(), 3);
    assert_eq!((pictures[0].width, pictures[0].height), (1280, 720));
    capture.stop();
}

/// A receiver that stops reading costs frames, counted, and the stream resumes at a keyframe
/// with parameter sets once it reads again.
#[tokio::test]
async fn full_receiver_drops_then_resumes_at_a_keyframe() {
    tracing();
    let probe = crate::init().unwrap();
    // Small pictures: this test is about flow, not pixels.
    let choice = CaptureChoice::test_pattern(320, 180, FrameRate::new(30, 1));
    let (tx, mut rx) = mpsc::channel(4);
    let capture = HdmiCapture::start(&choice, CaptureInput::TestPattern, &probe, 300, tx).unwrap();
    let mut waited = 0;
    while capture.dropped() == 0 {
        assert!(waited < 100, "nothing dropped with a full receiver");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    let queued = frames(&mut rx, 4).await;
    let resumed = recv_within(&mut rx, 10, "access unit after the drop").await;
    assert!(
        resumed.keyframe && idr_with_parameter_sets(&resumed.data),
        "after a drop the stream must resume at an IDR with SPS/PPS"
    );
    assert_eq!(resumed.seq, queued[3].seq + 1, "seq counts delivered units");
}
