//! Monitoring hours (policy P3) enforced by the box: inside a window stations stream
//! thumbnails to an open mosaic, the focus view opens and the status LED is lit; outside, the
//! station is told to send nothing even with the mosaic open, the focus view is refused with
//! the next allowed time, and the LED is off. (`watched.rs` covers who looks and the edges.)
//!
//! The schedules are built around the real local time of the run (the box reads the system
//! clock), one hour clear of any window edge.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanterne_media::CaptureSource;
use lanterne_scenarios::BoxProcess;
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::system::SimulatedSystem;
use lanterne_station::{spawn_station, RunningStation, SourceSpec};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// (weekday index 0 = Monday, minutes since midnight), local time, as the box sees it.
fn local_now() -> (usize, u32) {
    local_now_in(None)
}

/// The same in another time zone (POSIX `TZ` string).
fn local_now_in(tz: Option<&str>) -> (usize, u32) {
    let mut cmd = Command::new("date");
    if let Some(tz) = tz {
        cmd.env("TZ", tz);
    }
    let out = cmd.arg("+%u %H %M").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<u32> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    ((v[0] - 1) as usize, v[1] * 60 + v[2])
}

fn hhmm(min: u32) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// A room config whose only monitoring window today is `[start, end)` (minutes), with access
/// all day every day.
fn config(day: usize, start: u32, end: u32) -> String {
    format!(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n[schedule]\n\
         access = [{{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"], start = \"00:00\", end = \"24:00\" }}]\n\
         monitoring = [{{ days = [\"{}\"], start = \"{}\", end = \"{}\" }}]\n",
        DAYS[day],
        hhmm(start),
        hhmm(end)
    )
}

async fn station(b: &BoxProcess, dir: &std::path::Path) -> (RunningStation, u32) {
    let (st, id, _) = station_with_screen(b, dir).await;
    (st, id)
}

async fn station_with_screen(
    b: &BoxProcess,
    dir: &std::path::Path,
) -> (RunningStation, u32, Arc<SimulatedScreen>) {
    let probe = lanterne_media::init().unwrap();
    let id = b.enrol(dir, "poste-01").await.unwrap().station_id;
    let screen = Arc::new(SimulatedScreen::default());
    let st = spawn_station(
        dir,
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-01".into(),
            rgb: [200, 40, 40],
        }),
        screen.clone(),
        Arc::new(SimulatedSystem::default()),
        &probe,
        "poste-01".into(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !st.status.borrow().connected {
        assert!(Instant::now() < deadline, "station never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (st, id, screen)
}

async fn get(https: &lanterne_scenarios::Https, cookie: &str, path: &str) -> serde_json::Value {
    https
        .request("GET", path, None, &[("cookie", cookie)])
        .await
        .unwrap()
        .json()
}

#[tokio::test]
async fn inside_a_window_the_class_is_watched() {
    let (day, now) = local_now();
    let b = BoxProcess::start_with_config(&config(
        day,
        now.saturating_sub(60),
        (now + 60).min(24 * 60),
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (st, id, screen) = station_with_screen(&b, dir.path()).await;
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let _mosaic = https.websocket("/api/mosaic", &cookie).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while !(st.status.borrow().thumb_on && st.status.borrow().frames_sent > 0) {
        assert!(Instant::now() < deadline, "no thumbnails inside the window");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The student was told the hours (P2), once.
    let notices: Vec<String> = screen
        .open_messages()
        .into_iter()
        .filter(|(i, _, _)| *i == 0)
        .map(|(_, _, t)| t)
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let start = now.saturating_sub(60);
    assert!(
        notices[0].contains(&format!("{} h", start / 60)),
        "the notice gives the hours: {}",
        notices[0]
    );
    let room = get(&https, &cookie, "/api/room").await;
    assert_eq!(room["monitoring"], true);
    assert_eq!(room["monitoring_configured"], true);
    assert!(
        room["monitoring_until"]
            .as_str()
            .is_some_and(|u| u.ends_with(&hhmm((now + 60).min(24 * 60) % (24 * 60)))),
        "the tablet is told when the window ends: {room}"
    );
    assert_eq!(
        get(&https, &cookie, "/api/dev/panel").await["status_led"],
        "watching"
    );
    https
        .websocket(&format!("/api/stations/{id}/focus"), &cookie)
        .await
        .expect("the focus view opens inside a window");
    st.shutdown().await;
}

#[tokio::test]
async fn outside_the_windows_nothing_is_watched_and_the_next_window_is_named() {
    let (day, now) = local_now();
    let (start, end) = if now + 180 <= 24 * 60 {
        (now + 120, now + 180)
    } else {
        (now - 180, now - 120)
    };
    let b = BoxProcess::start_with_config(&config(day, start, end))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (st, id) = station(&b, dir.path()).await;
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    // Even with the class open on a tablet.
    let _mosaic = https.websocket("/api/mosaic", &cookie).await.unwrap();

    // Give the box time to (wrongly) ask for video; it must not.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !st.status.borrow().thumb_on,
        "the station was asked for thumbnails"
    );
    assert_eq!(st.status.borrow().frames_sent, 0, "video left the station");

    let room = get(&https, &cookie, "/api/room").await;
    assert_eq!(room["monitoring"], false);
    assert_eq!(room["watched"], false);
    let next = room["next_monitoring"].as_str().unwrap().to_string();
    assert!(
        next.ends_with(&hhmm(start)),
        "next window {next}, expected at {}",
        hhmm(start)
    );
    assert_eq!(
        get(&https, &cookie, "/api/dev/panel").await["status_led"],
        "off"
    );

    let res = https
        .request(
            "GET",
            &format!("/api/stations/{id}/focus"),
            None,
            &[
                ("cookie", &cookie),
                ("origin", &https.origin()),
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 403);
    let msg = res.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("outside the monitoring hours"), "{msg}");
    assert!(
        msg.contains(&hhmm(start)),
        "the refusal says when monitoring is next allowed: {msg}"
    );
    st.shutdown().await;
}

/// Defence in depth: a box whose clock (here: its time zone) says "inside the window" while the
/// station's says "outside" gets no video; the station refuses and says why.
#[tokio::test]
async fn a_station_refuses_video_outside_the_hours_by_its_own_clock() {
    // The box lives three hours ahead of the stations.
    let box_tz = "LNT-3";
    let (day, now) = local_now_in(Some(box_tz));
    let b = BoxProcess::start_with(
        &config(day, now.saturating_sub(60), (now + 60).min(24 * 60)),
        &[("TZ", box_tz)],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (st, _id) = station(&b, dir.path()).await;
    // A teacher opens the class, so the box asks for thumbnails.
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let _mosaic = https.websocket("/api/mosaic", &cookie).await.unwrap();
    b.wait_log_line(
        &[
            "station reports",
            "outside the monitoring hours by this station's clock",
        ],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(!st.status.borrow().thumb_on);
    assert_eq!(st.status.borrow().frames_sent, 0, "video left the station");
    st.shutdown().await;
}
