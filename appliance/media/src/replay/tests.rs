use super::*;
use crate::testutil::{close, decode, tracing};

const TEAL: [u8; 3] = [20, 160, 150];

fn small_params() -> StreamParams {
    StreamParams {
        width: 320,
        height: 180,
        fps: 10,
        bitrate_kbps: 200,
    }
}

/// A valid file with fake (but Annex B shaped) access units, keyframes every 4 frames.
fn fake_file(n: u32) -> Vec<u8> {
    let frames: Vec<ReplayFrame> = (0..n)
        .map(|i| ReplayFrame {
            pts_us: i as u64 * 100_000,
            keyframe: i % 4 == 0,
            data: Bytes::from(vec![0, 0, 0, 1, 0x65, i as u8, 0xaa, 0xbb]),
        })
        .collect();
    encode(small_params(), &frames)
}

fn parse(bytes: &[u8]) -> Result<ReplayFile, ReplayError> {
    ReplayFile::parse(Bytes::copy_from_slice(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_open_play_round_trip_is_paced_and_loops_from_a_keyframe() {
    tracing();
    let probe = crate::init().unwrap();
    let dir = std::env::temp_dir().join(format!("lanterne-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("teal.lrp");
    let summary = tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            record(
                CaptureSource::Synthetic {
                    label: "replay".into(),
                    rgb: TEAL,
                },
                &probe,
                small_params(),
                20,
                &path,
            )
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.frames, 20);
    assert!(summary.keyframes >= 1);

    let file = Arc::new(ReplayFile::open(&path).unwrap());
    assert_eq!(file.params, small_params());
    assert_eq!(file.frames().len(), 20);
    let first = file.frames().next().unwrap();
    assert!(first.keyframe && first.pts_us == 0);
    assert!(crate::h264::idr_with_parameter_sets(&first.data));
    // Recorded at 10 fps: 20 frames span about 1.9 s.
    let last_pts = file.frames().last().unwrap().pts_us;
    assert!(
        (1_500_000..=2_400_000).contains(&last_pts),
        "last pts {last_pts}"
    );

    // What was recorded decodes to the station colour.
    let aus: Vec<Bytes> = file.frames().map(|f| f.data.clone()).collect();
    let pics = decode(&aus);
    assert_eq!(pics.len(), 20);
    let c = pics[19].dominant(80, 60, 160, 60);
    assert!(
        close(c, TEAL, 24),
        "replayed picture shows {c:?}, want {TEAL:?}"
    );

    // One pass: paced like the recording, fresh capture times, increasing seq.
    let (tx, mut rx) = mpsc::channel(4);
    let t0 = std::time::Instant::now();
    let player = tokio::spawn(play(file.clone(), tx, false));
    let mut got = Vec::new();
    while let Some(f) = rx.recv().await {
        let now = crate::now_us();
        assert!(now.abs_diff(f.capture_us) < 500_000, "stale capture_us");
        got.push(f);
    }
    let took = t0.elapsed();
    player.await.unwrap();
    assert_eq!(got.len(), 20);
    assert!(
        took.as_micros() as u64 >= last_pts * 8 / 10,
        "20 frames played in {took:?}, faster than real time ({last_pts} µs)"
    );
    assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(got.windows(2).all(|w| w[1].capture_us >= w[0].capture_us));

    // Looped: after the last frame comes the first (a keyframe) again, one frame interval
    // later, and seq keeps counting.
    let (tx, mut rx) = mpsc::channel(4);
    let player = tokio::spawn(play(file.clone(), tx, true));
    let mut got = Vec::new();
    while got.len() < 24 {
        got.push(rx.recv().await.expect("looping player stopped"));
    }
    drop(rx);
    player.await.unwrap();
    assert!(got[20].keyframe);
    assert_eq!(got[20].data, first.data);
    assert_eq!(got[20].seq, 20);
    assert_eq!(got[23].data, file.frames().nth(3).unwrap().data);
    let wrap_gap = got[20].capture_us - got[19].capture_us;
    assert!(
        (50_000..=250_000).contains(&wrap_gap),
        "seamless loop expected one frame interval, got {wrap_gap} µs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rejects_bad_files_with_precise_errors() {
    let good = fake_file(6);
    assert_eq!(parse(&good).unwrap().frames().len(), 6);

    assert_eq!(
        parse(&good[..10]).unwrap_err(),
        ReplayError::ShortHeader(10)
    );
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(parse(&bad).unwrap_err(), ReplayError::BadMagic);
    let mut bad = good.clone();
    bad[8] = 3;
    assert_eq!(parse(&bad).unwrap_err(), ReplayError::UnsupportedVersion(3));
    // Version 1 files still read, and their last header field must be 0.
    let mut v1 = good.clone();
    v1[8] = 1;
    assert_eq!(
        parse(&v1).unwrap().duration(),
        parse(&good).unwrap().duration()
    );
    v1[30..34].copy_from_slice(&5000u32.to_le_bytes());
    assert!(matches!(
        parse(&v1).unwrap_err(),
        ReplayError::BadHeader {
            field: "reserved",
            ..
        }
    ));
    let mut bad = good.clone();
    bad[10..14].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        parse(&bad).unwrap_err(),
        ReplayError::BadHeader {
            field: "width",
            value: 0,
            ..
        }
    ));
    let mut bad = good.clone();
    bad[26..30].copy_from_slice(&(MAX_FRAMES + 1).to_le_bytes());
    assert!(matches!(
        parse(&bad).unwrap_err(),
        ReplayError::BadHeader {
            field: "frame_count",
            ..
        }
    ));

    // Truncated in the middle of frame 3's access unit, and of frame 4's header.
    let frame_len = FRAME_HEADER_LEN + 8;
    let cut = HEADER_LEN + 3 * frame_len + FRAME_HEADER_LEN + 2;
    assert_eq!(
        parse(&good[..cut]).unwrap_err(),
        ReplayError::Truncated {
            index: 3,
            needed: 8,
            left: 2
        }
    );
    let cut = HEADER_LEN + 4 * frame_len + 5;
    assert_eq!(
        parse(&good[..cut]).unwrap_err(),
        ReplayError::Truncated {
            index: 4,
            needed: FRAME_HEADER_LEN,
            left: 5
        }
    );

    // Oversized access unit: rejected from the length field, before any allocation.
    let mut bad = good.clone();
    let at = HEADER_LEN + frame_len;
    bad[at..at + 4].copy_from_slice(&(MAX_AU_BYTES + 1).to_le_bytes());
    assert_eq!(
        parse(&bad).unwrap_err(),
        ReplayError::BadLength {
            index: 1,
            len: MAX_AU_BYTES + 1
        }
    );
    let mut bad = good.clone();
    bad[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        parse(&bad).unwrap_err(),
        ReplayError::BadLength { index: 1, len: 0 }
    );

    let mut bad = good.clone();
    bad[at + 12] = 0x81;
    assert_eq!(
        parse(&bad).unwrap_err(),
        ReplayError::BadFlags {
            index: 1,
            flags: 0x81
        }
    );
    let mut bad = good.clone();
    bad[HEADER_LEN + 12] = 0;
    assert_eq!(parse(&bad).unwrap_err(), ReplayError::FirstNotKeyframe);
    let mut bad = good.clone();
    bad[at + 4..at + 12].copy_from_slice(&0u64.to_le_bytes());
    bad[HEADER_LEN + 4..HEADER_LEN + 12].copy_from_slice(&5u64.to_le_bytes());
    assert_eq!(
        parse(&bad).unwrap_err(),
        ReplayError::PtsBackwards {
            index: 1,
            pts_us: 0,
            previous_us: 5
        }
    );
    let mut bad = good.clone();
    bad[at + FRAME_HEADER_LEN + 3] = 7;
    assert_eq!(
        parse(&bad).unwrap_err(),
        ReplayError::NotAnnexB { index: 1 }
    );
    let mut bad = good.clone();
    bad.extend_from_slice(&[1, 2, 3]);
    assert_eq!(parse(&bad).unwrap_err(), ReplayError::TrailingBytes(3));

    // Through the file API: a missing file is an I/O error naming the path.
    match ReplayFile::open(Path::new("/nonexistent/lanterne.lrp")) {
        Err(MediaError::Io { path, .. }) => assert!(path.contains("lanterne.lrp")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// Deterministic mutation fuzzing on stable: thousands of corrupted variants of a valid file
/// must give an error or a file whose invariants hold, never a panic.
#[test]
fn survives_thousands_of_mutations() {
    let good = fake_file(12);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut rejected) = (0, 0);
    for _ in 0..5000 {
        let mut m = good.clone();
        for _ in 0..1 + next() % 4 {
            if m.is_empty() {
                break;
            }
            let r = next();
            let at = (r >> 8) as usize % m.len();
            match r % 6 {
                0 => m[at] ^= 1 << ((r >> 40) % 8),
                1 => m[at] = (r >> 32) as u8,
                2 => m.truncate(at),
                3 => m.insert(at, (r >> 24) as u8),
                4 if at + 4 <= m.len() => {
                    m[at..at + 4].copy_from_slice(&((r >> 16) as u32).to_le_bytes())
                }
                _ => {
                    m.remove(at);
                }
            }
        }
        match parse(&m) {
            Ok(f) => {
                ok += 1;
                assert!(f.frames().len() <= MAX_FRAMES as usize);
                assert!(f.frames().next().unwrap().keyframe);
                for fr in f.frames() {
                    assert!(fr.data.len() as u32 <= MAX_AU_BYTES);
                    assert!(fr.data.starts_with(&[0, 0, 1]) || fr.data.starts_with(&[0, 0, 0, 1]));
                }
            }
            Err(_) => rejected += 1,
        }
    }
    // Both outcomes must occur, or the mutations are not exercising the parser.
    assert!(ok > 50 && rejected > 1000, "ok {ok}, rejected {rejected}");
}

#[test]
fn the_recorded_pass_length_is_kept_and_checked() {
    let frames: Vec<ReplayFrame> = (0..6)
        .map(|i| ReplayFrame {
            pts_us: i as u64 * 100_000,
            keyframe: i == 0,
            data: Bytes::from(vec![0, 0, 0, 1, 0x65, i as u8]),
        })
        .collect();
    // A still screen: six frames in the first half second, then 2.5 s of nothing.
    let f = parse(&encode_looped(small_params(), &frames, 3000)).unwrap();
    assert_eq!(f.duration(), Duration::from_secs(3));
    assert_eq!(f.payload_bytes(), 36);
    // Without a length: last pts + one frame interval (10 fps).
    let f = parse(&encode(small_params(), &frames)).unwrap();
    assert_eq!(f.duration(), Duration::from_millis(600));
    // A pass shorter than the recording is refused.
    assert!(matches!(
        parse(&encode_looped(small_params(), &frames, 500)).unwrap_err(),
        ReplayError::BadHeader {
            field: "loop_ms",
            ..
        }
    ));
}

/// A real recording of both streams at once keeps its length, starts each file at a
/// keyframe and keeps every frame inside the pass.
#[test]
fn record_for_writes_both_streams_with_the_recorded_length() {
    tracing();
    let probe = crate::init().unwrap();
    let dir = std::env::temp_dir().join(format!("lanterne-record-for-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = [
        RecordTarget {
            kind: StreamKind::Thumb,
            params: small_params(),
            path: dir.join("thumb.lrp"),
        },
        RecordTarget {
            kind: StreamKind::Full,
            params: StreamParams {
                width: 640,
                height: 360,
                fps: 15,
                bitrate_kbps: 500,
            },
            path: dir.join("full.lrp"),
        },
    ];
    let source = CaptureSource::Synthetic {
        label: "record".into(),
        rgb: TEAL,
    };
    let summaries = record_for(source, &probe, &targets, Duration::from_millis(1500)).unwrap();
    assert_eq!(summaries.len(), 2);
    for (t, s) in targets.iter().zip(&summaries) {
        let f = ReplayFile::open(&t.path).unwrap();
        assert_eq!(f.duration(), Duration::from_millis(1500));
        assert_eq!(f.frames().len() as u32, s.frames);
        assert_eq!(
            (f.params.width, f.params.height),
            (t.params.width, t.params.height)
        );
        assert!(f.frames().next().unwrap().keyframe);
        assert!(f.frames().all(|fr| fr.pts_us < 1_500_000));
        // The synthetic picture moves: more than the keyframe was recorded.
        assert!(s.frames > 3, "{:?}: {s:?}", t.kind);
    }
    assert!(matches!(
        record_for(
            CaptureSource::Synthetic {
                label: "x".into(),
                rgb: TEAL
            },
            &probe,
            &targets,
            Duration::ZERO
        ),
        Err(MediaError::InvalidParams(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
