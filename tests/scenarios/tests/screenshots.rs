//! Screenshots (policy P4): off by default and refused with a clear message; when the
//! configuration turns them on, a teacher's screenshot is a PNG of the station's screen kept
//! in the box's data directory, listed, audited, and still refused outside the monitoring
//! hours (P3).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use lanterne_media::CaptureSource;
use lanterne_scenarios::{close_to, mean_rgb, BoxProcess, Https};
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::system::SimulatedSystem;
use lanterne_station::{spawn_station, RunningStation, SourceSpec};

const RED: [u8; 3] = [200, 40, 40];

/// Enrols one station showing a plain red synthetic screen and waits until it is connected.
async fn red_station(b: &BoxProcess, dir: &std::path::Path) -> (RunningStation, u32) {
    let probe = lanterne_media::init().unwrap();
    let id = b.enrol(dir, "poste-01").await.unwrap().station_id;
    let st = spawn_station(
        dir,
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-01".into(),
            rgb: RED,
        }),
        Arc::new(SimulatedScreen::default()),
        Arc::new(SimulatedSystem::default()),
        &probe,
        "poste-01".into(),
    )
    .unwrap();
    let mut status = st.status.clone();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !status.borrow_and_update().connected {
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("station never connected");
    (st, id)
}

async fn admin(b: &BoxProcess) -> (Https, String) {
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    (https, cookie)
}

async fn audit(https: &Https, cookie: &str) -> Vec<serde_json::Value> {
    https
        .request(
            "GET",
            "/api/audit?action=screenshot",
            None,
            &[("cookie", cookie)],
        )
        .await
        .unwrap()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// Decodes a PNG to (width, height, RGB) with GStreamer's decoder, independent of the box.
fn decode_png(png: &[u8]) -> (u32, u32, Vec<u8>) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(
        "appsrc name=src caps=image/png ! pngdec ! videoconvert ! video/x-raw,format=RGB \
         ! appsink name=sink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gstreamer_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(gst::Buffer::from_slice(png.to_vec()))
        .unwrap();
    src.end_of_stream().unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .expect("a decoded PNG");
    let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
    let (w, h) = (
        s.get::<i32>("width").unwrap() as u32,
        s.get::<i32>("height").unwrap() as u32,
    );
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = (w * 3).div_ceil(4) * 4;
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for row in 0..h {
        let at = (row * stride) as usize;
        rgb.extend_from_slice(&map[at..at + (w * 3) as usize]);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (w, h, rgb)
}

#[tokio::test]
async fn screenshots_are_refused_while_the_configuration_keeps_them_off() {
    let b = BoxProcess::start_with_config("[room]\nname = \"Salle 12\"\n")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_st, id) = red_station(&b, dir.path()).await;
    let (https, cookie) = admin(&b).await;
    let res = https
        .post_json(
            &cookie,
            &format!("/api/stations/{id}/screenshot"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 403);
    let body = res.json();
    assert_eq!(body["screenshots_disabled"], true);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("privacy.screenshots"),
        "{body}"
    );
    let list = https
        .request("GET", "/api/screenshots", None, &[("cookie", &cookie)])
        .await
        .unwrap();
    assert_eq!(list.status, 403);
    let rows = audit(&https, &cookie).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["result"], "refused");
    assert!(!b.box_dir().join("screenshots").exists(), "nothing stored");
}

#[tokio::test]
async fn a_screenshot_is_a_png_of_the_station_kept_on_the_box_and_audited() {
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Salle 12\"\n[privacy]\nscreenshots = true\nscreenshot_retention_days = 3\n{}",
        lanterne_scenarios::schedule_including_now()
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_st, id) = red_station(&b, dir.path()).await;
    let (https, cookie) = admin(&b).await;
    let started = Instant::now();
    let res = https
        .post_json(
            &cookie,
            &format!("/api/stations/{id}/screenshot"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    assert!(started.elapsed() < Duration::from_secs(10));
    let row = res.json();
    assert_eq!(row["station_name"], "poste-01");
    assert_eq!(row["taken_by"], "admin");
    // The full-resolution focus stream, not the thumbnail.
    assert_eq!(
        (row["width"].as_u64(), row["height"].as_u64()),
        (Some(1280), Some(720))
    );
    let shot = row["id"].as_i64().unwrap();

    let file = b.box_dir().join("screenshots").join(format!("{shot}.png"));
    assert!(file.exists(), "kept in the box's data directory");
    let png = https
        .request(
            "GET",
            &format!("/api/screenshots/{shot}.png"),
            None,
            &[("cookie", &cookie)],
        )
        .await
        .unwrap();
    assert_eq!(png.status, 200);
    assert_eq!(png.headers["content-type"], "image/png");
    assert_eq!(png.body.as_ref(), std::fs::read(&file).unwrap().as_slice());
    let img = decode_png(&png.body);
    assert_eq!((img.0, img.1), (1280, 720));
    // The synthetic screen is red with a label; its corner is the plain background.
    let corner = mean_rgb(&img, 40, 680, 8);
    assert!(close_to(corner, RED, 40), "corner colour {corner:?}");

    let list = https
        .request("GET", "/api/screenshots", None, &[("cookie", &cookie)])
        .await
        .unwrap()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], shot);
    let rows = audit(&https, &cookie).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["result"], "ok");
    assert_eq!(rows[0]["target"], "poste-01");
    assert_eq!(
        https
            .request(
                "GET",
                "/api/screenshots/999.png",
                None,
                &[("cookie", &cookie)]
            )
            .await
            .unwrap()
            .status,
        404
    );
}

/// (weekday 0 = Monday, minutes since midnight) in the box's local time.
fn local_now() -> (usize, u32) {
    let out = Command::new("date").arg("+%u %H %M").output().unwrap();
    let v: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    ((v[0] - 1) as usize, v[1] * 60 + v[2])
}

#[tokio::test]
async fn screenshots_follow_the_monitoring_hours() {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let (day, now) = local_now();
    // Today's only monitoring window is a minute wide and at least an hour away.
    let start = if now < 12 * 60 { now + 120 } else { now - 120 };
    let cfg = format!(
        "[room]\nname = \"Salle 12\"\n[privacy]\nscreenshots = true\n[schedule]\n\
         access = [{{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"], start = \"00:00\", end = \"24:00\" }}]\n\
         monitoring = [{{ days = [\"{}\"], start = \"{:02}:{:02}\", end = \"{:02}:{:02}\" }}]\n",
        DAYS[day],
        start / 60,
        start % 60,
        (start + 1) / 60,
        (start + 1) % 60,
    );
    let b = BoxProcess::start_with_config(&cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_st, id) = red_station(&b, dir.path()).await;
    let (https, cookie) = admin(&b).await;
    let res = https
        .post_json(
            &cookie,
            &format!("/api/stations/{id}/screenshot"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 403, "{}", String::from_utf8_lossy(&res.body));
    let msg = res.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("outside the monitoring hours"), "{msg}");
    assert!(msg.contains("next allowed"), "{msg}");
    assert!(!b.box_dir().join("screenshots").exists(), "nothing stored");
}

/// The GDPR record is made from the live configuration: it says whether screenshots are
/// taken and how long they are kept.
#[tokio::test]
async fn the_gdpr_record_states_the_screenshot_setting() {
    let schedule = "[schedule]\n\
        access = [{ days = [\"mon\", \"tue\", \"thu\", \"fri\"], start = \"08:00\", end = \"18:00\" }]\n\
        monitoring = [{ days = [\"mon\", \"tue\", \"thu\", \"fri\"], start = \"09:15\", end = \"11:45\" }]\n";
    for (privacy, expected) in [
        ("", None),
        (
            "[privacy]\nscreenshots = true\nscreenshot_retention_days = 12\n",
            Some(12),
        ),
    ] {
        let b = BoxProcess::start_with_config(&format!(
            "[room]\nname = \"Salle 12\"\nschool = \"Collège Jean Moulin\"\n{privacy}{schedule}"
        ))
        .await
        .unwrap();
        let (https, cookie) = admin(&b).await;
        let record = https
            .request(
                "GET",
                "/api/documents/gdpr.json",
                None,
                &[("cookie", &cookie)],
            )
            .await
            .unwrap()
            .json();
        let categories = record["data_categories"].as_array().unwrap();
        let shots = categories
            .iter()
            .find(|c| c["category"] == "Captures d'écran")
            .unwrap_or_else(|| panic!("no screenshot category in {record}"));
        assert_eq!(shots["retention_days"].as_u64(), expected, "{shots}");
    }
}
