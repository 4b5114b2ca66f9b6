use super::*;
use crate::testutil::{close, decode, recv_within, tracing};
use crate::{CaptureSource, ScreenEncoder, StreamKind};
use tokio::sync::mpsc;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn mosaic_is_shareable_between_tasks() {
    assert_send_sync::<Mosaic>();
}

#[test]
fn layout_is_a_centred_grid_of_even_16_9_tiles_in_id_order() {
    assert!(compute_layout(1280, 720, &[]).tiles.is_empty());
    for n in [1u32, 2, 3, 4, 5, 9, 10, 32, 40] {
        let ids: Vec<u32> = (100..100 + n).collect();
        let l = compute_layout(1280, 720, &ids);
        assert_eq!(l.tiles.len(), n as usize);
        assert_eq!(l.tiles.iter().map(|t| t.id).collect::<Vec<_>>(), ids);
        let cols = (n as f64).sqrt().ceil() as usize;
        for (i, t) in l.tiles.iter().enumerate() {
            assert!(
                t.x % 2 == 0 && t.y % 2 == 0 && t.w % 2 == 0 && t.h % 2 == 0,
                "{t:?}"
            );
            assert!(
                t.x + t.w <= 1280 && t.y + t.h <= 720,
                "{t:?} outside the canvas"
            );
            assert!(
                (t.w as i64 * 9 - t.h as i64 * 16).abs() <= 32,
                "{t:?} is not 16:9"
            );
            assert_eq!((t.w, t.h), (l.tiles[0].w, l.tiles[0].h));
            // Row-major: same row ⇒ same y, next column to the right.
            if i % cols != 0 {
                let left = &l.tiles[i - 1];
                assert_eq!(t.y, left.y);
                assert_eq!(t.x, left.x + left.w + GAP);
            }
            for u in &l.tiles[..i] {
                let apart =
                    t.x >= u.x + u.w || u.x >= t.x + t.w || t.y >= u.y + u.h || u.y >= t.y + t.h;
                assert!(apart, "{t:?} overlaps {u:?}");
            }
        }
        // Centred: equal margins left/right and top/bottom (±2 for even rounding).
        let right = l.tiles.iter().map(|t| t.x + t.w).max().unwrap();
        let bottom = l.tiles.iter().map(|t| t.y + t.h).max().unwrap();
        assert!((l.tiles[0].x as i64 - (1280 - right) as i64).abs() <= 2);
        assert!((l.tiles[0].y as i64 - (720 - bottom) as i64).abs() <= 2);
    }
    // 4 stations: a 2×2 grid of 628×352 tiles.
    let l = compute_layout(1280, 720, &[1, 2, 3, 4]);
    assert_eq!((l.tiles[0].w, l.tiles[0].h), (628, 352));
    assert_eq!(l.tiles[2].y, l.tiles[0].y + 352 + GAP);
    // 32 stations: 6 columns.
    let l = compute_layout(1280, 720, &(0..32).collect::<Vec<_>>());
    assert_eq!(l.tiles[6].y, l.tiles[0].y + l.tiles[0].h + GAP);
}

const COLOURS: [[u8; 3]; 4] = [[200, 40, 40], [40, 170, 60], [40, 60, 200], [220, 200, 40]];

fn thumb() -> StreamParams {
    StreamParams {
        width: 320,
        height: 180,
        fps: 5,
        bitrate_kbps: 200,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_show_their_station_colour_offline_is_dark_grey_and_updates_carry_capture_times() {
    tracing();
    let probe = crate::init().unwrap();
    let (mosaic, _rx) = Mosaic::start(
        MosaicConfig {
            width: 640,
            height: 360,
            fps: 10,
            bitrate_kbps: 800,
        },
        &probe,
    )
    .unwrap();
    let mosaic = Arc::new(mosaic);
    // Given out of order on purpose: tiles come back in id order.
    mosaic.set_tiles([5, 3, 1, 4, 2].map(|id| TileInfo { id }).to_vec());
    mosaic.set_online(5, false);
    let layout = mosaic.layout();
    assert_eq!(
        layout.tiles.iter().map(|t| t.id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        layout.tiles[3].y,
        layout.tiles[0].y + layout.tiles[0].h + GAP,
        "3 columns"
    );

    // Every (station, capture_us) pushed, to check the updates report real station frames.
    let pushed: Arc<Mutex<std::collections::HashSet<(u32, u64)>>> = Arc::default();
    let mut encoders = Vec::new();
    for (i, rgb) in COLOURS.iter().enumerate() {
        let id = i as u32 + 1;
        let (tx, mut rx) = mpsc::channel(16);
        let enc = ScreenEncoder::start(
            CaptureSource::Synthetic {
                label: format!("S{id}"),
                rgb: *rgb,
            },
            &probe,
            tx,
        )
        .unwrap();
        enc.set_stream(StreamKind::Thumb, Some(thumb()));
        let m = mosaic.clone();
        let sent = pushed.clone();
        tokio::spawn(async move {
            while let Some((_, f)) = rx.recv().await {
                sent.lock().unwrap().insert((id, f.capture_us));
                let _ = m.push(id, f);
            }
        });
        encoders.push(enc);
    }

    // Wait until every online tile has shown a few station frames.
    let mut frames = mosaic.subscribe();
    let mut seen = [0u32; 5];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen[..4].iter().any(|&n| n < 3) {
        let f = tokio::time::timeout_at(deadline, frames.recv())
            .await
            .unwrap_or_else(|_| panic!("tiles not all updated: {seen:?}"))
            .unwrap();
        for &(index, capture_us) in &f.updates {
            seen[index as usize] += 1;
            let station = layout.tiles[index as usize].id;
            assert!(
                pushed.lock().unwrap().contains(&(station, capture_us)),
                "tile {index} reports capture_us {capture_us}, which station {station} never sent"
            );
            assert!(capture_us <= f.encoded_us, "shown before captured");
            assert!(
                f.encoded_us - capture_us < 3_000_000,
                "station frame {} µs old when encoded into the mosaic",
                f.encoded_us - capture_us
            );
        }
    }
    assert_eq!(seen[4], 0, "an offline tile got updates");

    // A viewer joins: decode from the next keyframe.
    mosaic.request_keyframe();
    let mut aus = Vec::new();
    while aus.len() < 3 {
        let f = tokio::time::timeout(Duration::from_secs(5), frames.recv())
            .await
            .expect("mosaic frames stopped")
            .unwrap();
        if aus.is_empty() && !f.keyframe {
            continue;
        }
        if aus.is_empty() {
            assert!(crate::h264::idr_with_parameter_sets(&f.data));
            let codec = crate::codec_string(&f.data).unwrap();
            assert!(
                codec.starts_with("avc1.42"),
                "{codec}: constrained baseline expected"
            );
        }
        aus.push(f.data.clone());
    }
    let pics = decode(&aus);
    let pic = pics.last().unwrap();
    assert_eq!((pic.width, pic.height), (640, 360));
    for (i, t) in layout.tiles.iter().enumerate() {
        let (x, y, w, h) = (t.x as usize, t.y as usize, t.w as usize, t.h as usize);
        // The middle band of the tile: the label and clock sit in its corners.
        let c = pic.dominant(x + w / 4, y + h / 3, w / 2, h / 3);
        let want = if i < 4 { COLOURS[i] } else { [48, 48, 48] };
        assert!(
            close(c, want, 30),
            "tile {i} (station {}) shows {c:?}, want {want:?}",
            t.id
        );
    }
    // Between tiles: the black background.
    assert!(
        close(pic.pixel(1, 1), [0, 0, 0], 20),
        "background {:?}",
        pic.pixel(1, 1)
    );

    let stats = mosaic.stats();
    assert!(stats.frames_out >= 3);
    for t in &stats.tiles[..4] {
        assert!(t.frames_in > 0 && t.frames_shown > 0, "{t:?}");
    }
    assert_eq!(stats.tiles[4].frames_shown, 0);
    assert!(mosaic.errors().borrow().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_never_waits_for_the_decoder_and_drops_until_a_keyframe_when_behind() {
    tracing();
    let probe = crate::init().unwrap();
    // A short real stream to feed: one keyframe then inter frames.
    let (tx, mut rx) = mpsc::channel(64);
    let enc = ScreenEncoder::start(
        CaptureSource::Synthetic {
            label: "burst".into(),
            rgb: COLOURS[0],
        },
        &probe,
        tx,
    )
    .unwrap();
    enc.set_stream(StreamKind::Thumb, Some(StreamParams { fps: 15, ..thumb() }));
    let mut gop = Vec::new();
    while gop.len() < 8 {
        let (_, f) = recv_within(&mut rx, 10, "encoded frame").await;
        gop.push(f);
    }
    drop(enc);
    assert!(gop[0].keyframe);

    let (mosaic, _rx) = Mosaic::start(MosaicConfig::default(), &probe).unwrap();
    mosaic.set_tiles(vec![TileInfo { id: 7 }]);
    let t0 = Instant::now();
    let mut asked = 0u32;
    for _ in 0..50 {
        for f in &gop {
            if mosaic.push(7, f.clone()) == TileFeedback::WantKeyframe {
                asked += 1;
            }
        }
    }
    let took = t0.elapsed();
    // 400 pushes are far faster than 400 decodes: the queue must have overflowed.
    let s = mosaic.stats().tiles[0];
    assert_eq!(s.frames_in, 400);
    assert!(s.dropped > 0, "no drops counted: {s:?}");
    assert!(
        took < Duration::from_millis(300),
        "push waited: {took:?} for 400 frames"
    );
    // Stations make keyframes only when asked: the tile that lost its place asks, and asks
    // at most once per TILE_KEYFRAME_GAP however many frames it throws away.
    assert!(
        asked >= 1,
        "the tile dropped frames but never asked for a keyframe"
    );
    let allowed = 1 + (took.as_millis() / TILE_KEYFRAME_GAP.as_millis()) as u32;
    assert!(asked <= allowed, "{asked} keyframe requests in {took:?}");
    // Unknown stations are ignored, not panics.
    assert_eq!(mosaic.push(99, gop[0].clone()), TileFeedback::Ok);
}

/// Regression for still screens: stations send no periodic keyframes any more, so a tile
/// whose first frame is not a keyframe (it joined a stream already running) must ask for one
/// instead of waiting for the encoder's own GOP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_joining_a_running_stream_asks_for_a_keyframe_and_stops_asking_once_it_has_one() {
    tracing();
    let probe = crate::init().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let enc = ScreenEncoder::start(
        CaptureSource::Synthetic {
            label: "join".into(),
            rgb: COLOURS[1],
        },
        &probe,
        tx,
    )
    .unwrap();
    enc.set_stream(StreamKind::Thumb, Some(thumb()));
    let mut gop = Vec::new();
    while gop.len() < 3 {
        let (_, f) = recv_within(&mut rx, 10, "encoded frame").await;
        gop.push(f);
    }
    drop(enc);
    assert!(gop[0].keyframe && !gop[1].keyframe && !gop[2].keyframe);

    let (mosaic, _rx) = Mosaic::start(MosaicConfig::default(), &probe).unwrap();
    mosaic.set_tiles(vec![TileInfo { id: 4 }]);
    let t0 = Instant::now();
    assert_eq!(mosaic.push(4, gop[1].clone()), TileFeedback::WantKeyframe);
    let mut again = 0u32;
    for _ in 0..20 {
        if mosaic.push(4, gop[2].clone()) == TileFeedback::WantKeyframe {
            again += 1;
        }
    }
    let allowed = (t0.elapsed().as_millis() / TILE_KEYFRAME_GAP.as_millis()) as u32;
    assert!(
        again <= allowed,
        "asked {again} more times in {:?}",
        t0.elapsed()
    );
    assert_eq!(mosaic.stats().tiles[0].frames_shown, 0);
    // The keyframe arrives: the tile decodes and asks for nothing more.
    assert_eq!(mosaic.push(4, gop[0].clone()), TileFeedback::Ok);
    for f in &gop[1..] {
        assert_eq!(mosaic.push(4, f.clone()), TileFeedback::Ok);
    }
}

/// The design target: 32 stations' 480×270 thumbnails composed into 1280×720 at ≥ 5 fps on
/// a 2-core machine. Ignored by default (it is a load measurement, and a shared CI machine
/// would make its timing meaningless); run with
/// `cargo test -p lanterne-media --release -- --ignored --nocapture mosaic_32`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load measurement; run on an otherwise idle machine"]
async fn mosaic_32_replayed_stations_sustain_the_configured_rate() {
    tracing();
    let probe = crate::init().unwrap();
    let dir = std::env::temp_dir().join(format!("lanterne-mosaic32-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("thumb.lrp");
    let params = StreamParams {
        width: 480,
        height: 270,
        fps: 5,
        bitrate_kbps: 250,
    };
    tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            crate::replay::record(
                CaptureSource::Synthetic {
                    label: "load".into(),
                    rgb: [90, 120, 200],
                },
                &probe,
                params,
                50,
                &path,
            )
        }
    })
    .await
    .unwrap()
    .unwrap();
    let file = Arc::new(crate::replay::ReplayFile::open(&path).unwrap());

    let config = MosaicConfig::default();
    let (mosaic, mut rx) = Mosaic::start(config, &probe).unwrap();
    let mosaic = Arc::new(mosaic);
    mosaic.set_tiles((1..=32).map(|id| TileInfo { id }).collect());
    for id in 1..=32u32 {
        let (tx, mut frames) = mpsc::channel(4);
        tokio::spawn(crate::replay::play(file.clone(), tx, true));
        let m = mosaic.clone();
        tokio::spawn(async move {
            while let Some(f) = frames.recv().await {
                let _ = m.push(id, f);
            }
        });
    }
    // Warm up (decoders start, every tile gets its first keyframe), then measure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu0, t0, out0) = (
        crate::testutil::process_cpu(),
        Instant::now(),
        mosaic.stats().frames_out,
    );
    let mut latency_us = Vec::new();
    let measure = Duration::from_secs(15);
    while t0.elapsed() < measure {
        match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            Ok(Ok(f)) => {
                latency_us.extend(f.updates.iter().map(|u| f.encoded_us.saturating_sub(u.1)))
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("mosaic stream stopped: {other:?}"),
        }
    }
    let wall = t0.elapsed();
    let cpu = crate::testutil::process_cpu() - cpu0;
    let stats = mosaic.stats();
    let fps = (stats.frames_out - out0) as f64 / wall.as_secs_f64();
    latency_us.sort_unstable();
    let pct = |p: usize| {
        latency_us
            .get(latency_us.len() * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "32 tiles: {fps:.1} mosaic fps (target {}), CPU {:.0}% of one core, ticks skipped {}, \
         station→mosaic-encoded latency p50 {} ms p99 {} ms, dropped {}, decode errors {}",
        config.fps,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        stats.ticks_skipped,
        pct(50) / 1000,
        pct(99) / 1000,
        stats.tiles.iter().map(|t| t.dropped).sum::<u64>(),
        stats.decode_errors,
    );
    assert!(fps >= 5.0, "only {fps:.1} fps");
    for t in &stats.tiles {
        assert!(t.frames_shown > 0, "tile {} never shown: {t:?}", t.id);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tile_decoder_is_counted_restarted_and_recovers_at_the_next_keyframe() {
    tracing();
    let probe = crate::init().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let enc = ScreenEncoder::start(
        CaptureSource::Synthetic {
            label: "restart".into(),
            rgb: COLOURS[2],
        },
        &probe,
        tx,
    )
    .unwrap();
    enc.set_stream(StreamKind::Thumb, Some(thumb()));
    let mut gop = Vec::new();
    while gop.len() < 4 {
        let (_, f) = recv_within(&mut rx, 10, "encoded frame").await;
        gop.push(f);
    }
    drop(enc);

    let (mosaic, _rx) = Mosaic::start(MosaicConfig::default(), &probe).unwrap();
    mosaic.set_tiles(vec![TileInfo { id: 3 }]);
    let shown_after = |m: &Mosaic, before: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for f in &gop {
                let _ = m.push(3, f.clone());
            }
            let s = m.stats().tiles[0];
            if s.frames_shown > before {
                return s.frames_shown;
            }
            assert!(Instant::now() < deadline, "tile shows nothing: {s:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let shown = shown_after(&mosaic, 0);

    // libav conceals damaged slices silently, so a real decoder failure cannot be provoked
    // reliably from bitstream garbage; post the error a failing decoder would post.
    let feed = mosaic.grid().by_id[&3].clone();
    let pipeline = feed.decoding().pipe.as_ref().unwrap().pipeline.clone();
    let dec = pipeline
        .iterate_elements()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.factory().is_some_and(|f| f.name().contains("dec")))
        .expect("a decoder in the tile");
    dec.post_message(
        gst::message::Error::builder(gst::StreamError::Decode, "injected decoder failure")
            .src(&dec)
            .build(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while mosaic.stats().tiles[0].restarts == 0 {
        assert!(
            Instant::now() < deadline,
            "tile not restarted: {:?}",
            mosaic.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nothing is pushed meanwhile, so the restarted tile must be waiting for a keyframe.
    assert!(feed.need_key.load(Ordering::SeqCst));
    // The composer restarts the tile; it waits for a keyframe and shows pictures again.
    shown_after(&mosaic, shown);
    let s = mosaic.stats();
    assert_eq!(
        (
            s.tiles[0].decode_errors,
            s.tiles[0].restarts,
            s.decode_errors
        ),
        (1, 1, 1)
    );
}

/// Nobody watching, nothing done: an inactive mosaic encodes nothing; made active again it
/// starts with a keyframe carrying its parameter sets, so a viewer decodes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_mosaic_encodes_nothing_and_resumes_at_a_keyframe() {
    tracing();
    let probe = crate::init().unwrap();
    let (mosaic, mut frames) = Mosaic::start(
        MosaicConfig {
            width: 320,
            height: 180,
            fps: 10,
            bitrate_kbps: 300,
        },
        &probe,
    )
    .unwrap();
    mosaic.set_tiles(vec![TileInfo { id: 1 }]);
    // Running: frames come.
    tokio::time::timeout(Duration::from_secs(10), frames.recv())
        .await
        .expect("an active mosaic encodes")
        .unwrap();
    mosaic.set_active(false);
    assert!(!mosaic.is_active());
    // Whatever was in flight drains; then nothing for a second (ten ticks at 10 fps).
    while tokio::time::timeout(Duration::from_millis(500), frames.recv())
        .await
        .is_ok()
    {}
    let idle_from = mosaic.stats().frames_out;
    assert!(
        tokio::time::timeout(Duration::from_secs(1), frames.recv())
            .await
            .is_err(),
        "an idle mosaic still encodes"
    );
    assert_eq!(mosaic.stats().frames_out, idle_from);

    mosaic.set_active(true);
    let first = tokio::time::timeout(Duration::from_secs(5), frames.recv())
        .await
        .expect("the mosaic resumes")
        .unwrap();
    assert!(
        first.keyframe && crate::h264::idr_with_parameter_sets(&first.data),
        "the first frame after a pause is a keyframe with SPS/PPS"
    );
}

/// Memory at scale: a tile decodes only while its station sends. A new tile holds no decoder,
/// the first keyframe starts it, a silent station's decoder is stopped (its picture stays on
/// the canvas), and the next change comes back through a keyframe the tile asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_station_s_tile_stops_its_decoder_and_restarts_it_on_a_keyframe() {
    tracing();
    let probe = crate::init().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let enc = ScreenEncoder::start(
        CaptureSource::Synthetic {
            label: "idle".into(),
            rgb: COLOURS[2],
        },
        &probe,
        tx,
    )
    .unwrap();
    enc.set_stream(StreamKind::Thumb, Some(thumb()));
    let mut gop = Vec::new();
    while gop.len() < 3 {
        let (_, f) = recv_within(&mut rx, 10, "encoded frame").await;
        gop.push(f);
    }
    drop(enc);

    let (mosaic, _rx) = Mosaic::start(MosaicConfig::default(), &probe).unwrap();
    mosaic.set_tiles(vec![TileInfo { id: 5 }]);
    let tile = |m: &Mosaic| m.stats().tiles[0];
    assert!(
        !tile(&mosaic).decoding,
        "a tile that got nothing holds a decoder"
    );

    for f in &gop {
        assert_eq!(mosaic.push(5, f.clone()), TileFeedback::Ok);
    }
    assert!(tile(&mosaic).decoding);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tile(&mosaic).frames_shown == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing shown: {:?}",
            tile(&mosaic)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Silence: the composer stops the decoder once TILE_RELEASE_AFTER has passed.
    let deadline = Instant::now() + TILE_RELEASE_AFTER + Duration::from_secs(10);
    while tile(&mosaic).decoding {
        assert!(
            Instant::now() < deadline,
            "the silent tile kept its decoder"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = tile(&mosaic).frames_shown;

    // The station sends a change (an inter frame): the tile cannot decode it and asks.
    assert_eq!(mosaic.push(5, gop[1].clone()), TileFeedback::WantKeyframe);
    assert!(!tile(&mosaic).decoding);
    // The keyframe comes: the decoder starts again and pictures show again.
    assert_eq!(mosaic.push(5, gop[0].clone()), TileFeedback::Ok);
    let s = tile(&mosaic);
    assert!(s.decoding && s.decoder_starts == 2, "{s:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tile(&mosaic).frames_shown == shown {
        assert!(Instant::now() < deadline, "nothing shown after the restart");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        tile(&mosaic).restarts,
        0,
        "stopping an idle decoder is not a failure"
    );
}
