//! A real X11 screen (Xvfb) captured by the station agent arrives at the box: the test covers
//! the screen with a window of one colour, opens the station's focus view through the box like a tablet, decodes
//! what the box forwards and finds that colour.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanterne_media::CaptureSource;
use lanterne_scenarios::xvfb::{start_xvfb, Xvfb};
use lanterne_scenarios::{close_to, decode_last_rgb, mean_rgb, next_item, BoxProcess, WsItem};
use lanterne_station::{spawn_station, SourceSpec};

/// Covers the screen with a window of one colour (xlogo with equal fore- and background) and
/// waits until it is mapped.
/// One X11 capture at a time in this process. Two `ximagesrc` elements capturing two
/// displays from two threads can deadlock inside libXext's process-wide display list (seen
/// in a clean-clone run: one capture thread waited for that lock for good, and the station
/// being shut down waited for that thread), so these tests take turns.
static ONE_CAPTURE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn colour_window(display: &str, hex: &str) -> Xvfb {
    let window = Xvfb(
        Command::new("xlogo")
            .args(["-display", display, "-bg", hex, "-fg", hex])
            .args(["-geometry", "1280x720+0+0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xlogo (x11-apps) must be installed: run scripts/setup.sh"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !Command::new("xwininfo")
        .args(["-display", display, "-name", "xlogo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("xwininfo (x11-utils) must be installed")
        .success()
    {
        assert!(Instant::now() < deadline, "the xlogo window never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    window
}

/// Opens the station's focus view (retrying until the station is online) and returns the
/// last picture of `frames` forwarded frames.
async fn focus_picture(
    https: &lanterne_scenarios::Https,
    cookie: &str,
    station_id: u32,
    frames: usize,
) -> (u32, u32, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ws = loop {
        match https
            .websocket(&format!("/api/stations/{station_id}/focus"), cookie)
            .await
        {
            Ok(ws) => break ws,
            Err(e) => {
                assert!(Instant::now() < deadline, "focus view never opened: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let mut aus: Vec<Bytes> = Vec::new();
    while aus.len() < frames {
        // A still screen sends its keyframe and then nothing until it changes (rate
        // control): two quiet seconds after the first frame mean the picture is complete.
        let wait = Duration::from_secs(if aus.is_empty() { 20 } else { 2 });
        match next_item(&mut ws, wait).await {
            Ok(WsItem::Video(v)) => aus.push(v.au),
            Ok(WsItem::Json(j)) => assert_ne!(j["type"], "ended", "focus ended early: {j}"),
            Err(_) if !aus.is_empty() => break,
            Err(e) => panic!("no video: {e}"),
        }
    }
    decode_last_rgb(&aus).unwrap()
}

#[tokio::test]
async fn a_real_x11_station_shows_the_lock_overlay_when_the_room_is_locked() {
    let _turn = ONE_CAPTURE.lock().await;
    let (_xvfb, display) = start_xvfb();
    let _window = colour_window(&display, "#28A03C");
    let b = BoxProcess::start().await.unwrap();
    let probe = lanterne_media::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let enrolment = b.enrol(dir.path(), "poste-x11").await.unwrap();
    let screen =
        std::sync::Arc::new(lanterne_station::screen::X11Screen::connect(Some(&display)).unwrap());
    let station = spawn_station(
        dir.path(),
        SourceSpec::Live(CaptureSource::X11 {
            display: Some(display.clone()),
        }),
        screen.clone(),
        std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-x11".into(),
    )
    .unwrap();
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();

    // Unlocked: the student's green window is what the teacher sees.
    let img = focus_picture(&https, &cookie, enrolment.station_id, 45).await;
    let seen = mean_rgb(&img, img.0 / 4, img.1 / 4, 8);
    assert!(
        close_to(seen, [40, 160, 60], 30),
        "before the lock: {seen:?}"
    );

    let origin = https.origin();
    let res = https
        .request(
            "POST",
            "/api/room/lock",
            Some(serde_json::json!({ "locked": true })),
            &[("cookie", &cookie), ("origin", &origin)],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    // The station reports the overlay up, and the box shows it on the tablet's view.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let room = https
            .request("GET", "/api/room", None, &[("cookie", &cookie)])
            .await
            .unwrap()
            .json();
        if room["mosaic"]["tiles"][0]["locked"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the station never reported the lock: {room}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    use lanterne_station::screen::Screen;
    assert!(screen.shown().locked);

    // And the screen itself now shows the lock overlay, seen through the station's own stream.
    let img = focus_picture(&https, &cookie, enrolment.station_id, 45).await;
    let seen = mean_rgb(&img, img.0 / 4, img.1 / 4, 8);
    let bg = lanterne_overlay_background();
    assert!(
        close_to(seen, bg, 30),
        "locked screen shows {seen:?}, expected the overlay {bg:?}"
    );

    station.shutdown().await;
}

fn lanterne_overlay_background() -> [u8; 3] {
    let c = lanterne_overlay::theme::LOCK_BACKGROUND;
    [c.0, c.1, c.2]
}

#[tokio::test]
async fn x11_screen_content_arrives_at_the_box() {
    let _turn = ONE_CAPTURE.lock().await;
    let (_xvfb, display) = start_xvfb();
    let painted = [200u8, 50, 20];
    let _window = colour_window(&display, "#C83214");
    let b = BoxProcess::start().await.unwrap();
    let probe = lanterne_media::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let enrolment = b.enrol(dir.path(), "poste-x11").await.unwrap();
    let station = spawn_station(
        dir.path(),
        SourceSpec::Live(CaptureSource::X11 {
            display: Some(display.clone()),
        }),
        std::sync::Arc::new(lanterne_station::screen::SimulatedScreen::default()),
        std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-x11".into(),
    )
    .unwrap();

    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    // The station needs a moment to connect; the focus view is refused (409) until then.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ws = loop {
        match https
            .websocket(
                &format!("/api/stations/{}/focus", enrolment.station_id),
                &cookie,
            )
            .await
        {
            Ok(ws) => break ws,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("focus view never opened: {e}"),
        }
    };

    let mut aus: Vec<Bytes> = Vec::new();
    let mut codec = None;
    // Up to two seconds of video; a still screen sends its keyframe and then nothing until
    // it changes (rate control), so two quiet seconds after a frame end the wait too.
    while aus.len() < 60 {
        let wait = Duration::from_secs(if aus.is_empty() { 20 } else { 2 });
        let item = match next_item(&mut ws, wait).await {
            Ok(item) => item,
            Err(_) if !aus.is_empty() => break,
            Err(e) => panic!("no video: {e}"),
        };
        match item {
            WsItem::Json(j) if j["type"] == "config" => {
                codec = j["codec"].as_str().map(String::from)
            }
            WsItem::Json(j) => assert_ne!(j["type"], "ended", "focus ended early: {j}"),
            WsItem::Video(v) => {
                assert!(
                    !aus.is_empty() || v.keyframe,
                    "the box must start a viewer at a keyframe"
                );
                let age_ms = (lanterne_wire::now_us().saturating_sub(v.capture_us)) / 1000;
                assert!(
                    age_ms < 10_000,
                    "capture timestamp is wall-clock time ({age_ms} ms old)"
                );
                aus.push(v.au);
            }
        }
    }
    let codec = codec.expect("a config message precedes the video");
    assert!(codec.starts_with("avc1."), "{codec}");

    let img = decode_last_rgb(&aus).unwrap();
    let (w, h, _) = img;
    if let Ok(path) = std::env::var("LANTERNE_DUMP_PPM") {
        let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
        ppm.extend_from_slice(&img.2);
        std::fs::write(path, ppm).unwrap();
    }
    // Away from the centre, where the captured mouse pointer sits.
    let seen = mean_rgb(&img, w / 4, h / 4, 8);
    assert!(
        close_to(seen, painted, 30),
        "the forwarded screen is {seen:?}, expected about {painted:?}"
    );
    b.wait_log_line(
        &["station online", "poste-x11", "capture=x11"],
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    // Stop capturing before Xvfb goes away: Xlib ends the process when its display dies.
    drop(ws);
    station.shutdown().await;
}

/// A full-screen demo on a real X11 station: the demo fills the screen (seen through the
/// station's own screen capture, as the teacher's focus view shows it) and the student's
/// keyboard and pointer are taken (another client cannot grab them); after the demo the
/// student's window and input are back. In a window, the rest of the screen stays the
/// student's.
#[tokio::test]
async fn a_full_screen_demo_fills_a_real_x11_screen_and_blocks_its_input() {
    let _turn = ONE_CAPTURE.lock().await;
    let (_xvfb, display) = start_xvfb();
    let _window = colour_window(&display, "#28A03C");
    // A source smaller than the screen, so full screen and windowed look different.
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n\
         [focus]\nwidth = 640\nheight = 360\nfps = 15\nbitrate_kbps = 800\n{}",
        lanterne_scenarios::schedule_including_now()
    ))
    .await
    .unwrap();
    let probe = lanterne_media::init().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let x11 = b
        .enrol(&dirs.path().join("x11"), "poste-x11")
        .await
        .unwrap();
    let src = b
        .enrol(&dirs.path().join("src"), "poste-src")
        .await
        .unwrap();
    let screen =
        std::sync::Arc::new(lanterne_station::screen::X11Screen::connect(Some(&display)).unwrap());
    let receiver = spawn_station(
        &dirs.path().join("x11"),
        SourceSpec::Live(CaptureSource::X11 {
            display: Some(display.clone()),
        }),
        screen,
        std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-x11".into(),
    )
    .unwrap();
    let source = spawn_station(
        &dirs.path().join("src"),
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-src".into(),
            rgb: [200, 50, 50],
        }),
        std::sync::Arc::new(lanterne_station::screen::SimulatedScreen::default()),
        std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-src".into(),
    )
    .unwrap();
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(receiver.status.borrow().connected && source.status.borrow().connected) {
        assert!(Instant::now() < deadline, "stations did not connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Left and right of the middle row: outside a 640×360 window, inside a full screen.
    let sample = |img: &(u32, u32, Vec<u8>)| {
        [
            mean_rgb(img, img.0 / 8, img.1 / 2, 8),
            mean_rgb(img, img.0 * 7 / 8, img.1 * 3 / 4, 8),
        ]
    };
    let student = [40, 160, 60];
    let shown = [200, 50, 50];

    for (mode, fills) in [("windowed", false), ("fullscreen", true)] {
        let res = https
            .post_json(
                &cookie,
                "/api/demo",
                serde_json::json!({ "source": src.station_id, "targets": null, "mode": mode }),
            )
            .await;
        assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
        // The receiver's own screen, as its capture sees it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let img = focus_picture(&https, &cookie, x11.station_id, 20).await;
            let [left, right] = sample(&img);
            let expected_right = if fills { shown } else { student };
            if close_to(right, expected_right, 40) && (!fills || close_to(left, shown, 40)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{mode}: the screen shows {left:?} / {right:?}"
            );
        }
        // Another client tries to take the keyboard: refused while input is blocked.
        let probe_overlay = lanterne_overlay::Overlay::connect(Some(&display)).unwrap();
        let lock = probe_overlay.lock("");
        if fills {
            assert!(
                matches!(lock, Err(lanterne_overlay::OverlayError::GrabFailed { .. })),
                "{mode}: the keyboard was free: {lock:?}"
            );
        } else {
            assert!(lock.is_ok(), "{mode}: input should stay free: {lock:?}");
        }
        drop(probe_overlay);

        let res = https
            .post_json(&cookie, "/api/demo/stop", serde_json::json!({}))
            .await;
        assert_eq!(res.status, 200);
        // The student's window and input are back.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let img = focus_picture(&https, &cookie, x11.station_id, 20).await;
            let [left, right] = sample(&img);
            if close_to(left, student, 40) && close_to(right, student, 40) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "after {mode}: {left:?} / {right:?}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = lanterne_overlay::Overlay::connect(Some(&display)).unwrap();
            if o.lock("").is_ok() {
                o.unlock().unwrap();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "after {mode}: input still blocked"
            );
        }
    }
    receiver.shutdown().await;
    source.shutdown().await;
}
