//! A real X11 screen (Xvfb) captured by the station agent arrives at the box: the test covers
//! the screen with a window of one colour, opens the station's focus view through the box like a tablet, decodes
//! what the box forwards and finds that colour.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanterne_media::CaptureSource;
use lanterne_scenarios::{close_to, decode_last_rgb, mean_rgb, next_item, BoxProcess, WsItem};
use lanterne_station::{spawn_station, SourceSpec};

struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a free display number and waits for its socket.
fn start_xvfb() -> (Xvfb, String) {
    assert!(
        Command::new("Xvfb")
            .arg("-help")
            .stderr(Stdio::null())
            .status()
            .is_ok(),
        "Xvfb is not installed: run scripts/setup.sh"
    );
    for n in 90..140 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            continue;
        }
        let child = Command::new("Xvfb")
            .args([
                format!(":{n}"),
                "-screen".into(),
                "0".into(),
                "1280x720x24".into(),
                "-nolisten".into(),
                "tcp".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb");
        let mut x = Xvfb(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return (x, format!(":{n}"));
            }
            if x.0.try_wait().unwrap().is_some() {
                break; // lost a race for this display number; try the next
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = x.0.kill();
    }
    panic!("could not start Xvfb on any display :90..:139");
}

#[tokio::test]
async fn x11_screen_content_arrives_at_the_box() {
    let (_xvfb, display) = start_xvfb();
    let painted = [200u8, 50, 20];
    // A full-screen window of one colour (xlogo with the same fore- and background).
    let _window = Xvfb(
        Command::new("xlogo")
            .args(["-display", &display, "-bg", "#C83214", "-fg", "#C83214"])
            .args(["-geometry", "1280x720+0+0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xlogo (x11-apps) must be installed: run scripts/setup.sh"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !Command::new("xwininfo")
        .args(["-display", &display, "-name", "xlogo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("xwininfo (x11-utils) must be installed")
        .success()
    {
        assert!(Instant::now() < deadline, "the xlogo window never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }

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
    // Two seconds of video: the encoder's rate control settles after the first keyframe.
    while aus.len() < 60 {
        match next_item(&mut ws, Duration::from_secs(20)).await.unwrap() {
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
