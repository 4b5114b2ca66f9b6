//! Watched means watched (issue 14), with the real box binary and in-process stations:
//! inside a monitoring window, stations send video only while a person looks, and the status
//! LED, each station's "Écran observé" badge and the tablet's view follow exactly that; a
//! station that cannot show its badge sends nothing and the tablet says so; a window's end is
//! acted on at the edge itself (measured on the real clock); and a box without a schedule
//! watches nobody, while its other controls work.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lanterne_media::CaptureSource;
use lanterne_scenarios::{next_item, BoxProcess, Https, WsItem};
use lanterne_station::link::LinkStatus;
use lanterne_station::screen::{NoScreen, Screen, SimulatedScreen};
use lanterne_station::system::SimulatedSystem;
use lanterne_station::{spawn_station, RunningStation, SourceSpec};
use serde_json::Value;

/// The box's linger after the last mosaic viewer closes (`room::MOSAIC_LINGER`).
const LINGER: Duration = lanterne_box::room::MOSAIC_LINGER;

struct Station {
    running: RunningStation,
    screen: Arc<dyn Screen>,
    id: u32,
}

async fn station(
    b: &BoxProcess,
    dir: &std::path::Path,
    name: &str,
    screen: Arc<dyn Screen>,
) -> Station {
    let probe = lanterne_media::init().unwrap();
    let id = b.enrol(dir, name).await.unwrap().station_id;
    let running = spawn_station(
        dir,
        SourceSpec::Live(CaptureSource::Synthetic {
            label: name.into(),
            rgb: [200, 40, 40],
        }),
        screen.clone(),
        Arc::new(SimulatedSystem::default()),
        &probe,
        name.into(),
    )
    .unwrap();
    status_until(&running, "connected", Duration::from_secs(30), |s| {
        s.connected
    })
    .await;
    Station {
        running,
        screen,
        id,
    }
}

async fn status_until(
    st: &RunningStation,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&LinkStatus) -> bool,
) -> LinkStatus {
    let mut rx = st.status.clone();
    let found = tokio::time::timeout(timeout, rx.wait_for(|s| cond(s)))
        .await
        .ok()
        .and_then(|r| r.ok().map(|s| s.clone()));
    match found {
        Some(s) => s,
        None => panic!(
            "{}: timed out waiting for {what}: {:?}",
            st.name,
            *st.status.borrow()
        ),
    }
}

async fn admin(b: &BoxProcess) -> (Https, String) {
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    (https, cookie)
}

async fn get(https: &Https, cookie: &str, path: &str) -> Value {
    https
        .request("GET", path, None, &[("cookie", cookie)])
        .await
        .unwrap()
        .json()
}

fn tile(room: &Value, id: u32) -> Value {
    room["mosaic"]["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no tile for station {id}: {room}"))
}

/// Polls `/api/room` and the simulated panel until `cond(room, status_led)` holds.
async fn box_until(
    https: &Https,
    cookie: &str,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&Value, &str) -> bool,
) -> (Value, Instant) {
    let deadline = Instant::now() + timeout;
    loop {
        let room = get(https, cookie, "/api/room").await;
        let panel = get(https, cookie, "/api/dev/panel").await;
        let led = panel["status_led"].as_str().unwrap_or_default().to_string();
        if cond(&room, &led) {
            return (room, Instant::now());
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}; LED {led}, room {room}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Proves the box asked `st` for no video so far: a lock ordered now reaches the station
/// after any stream order sent before it (one ordered link), so once the lock is shown, no
/// earlier order can still be on its way. Unlocks again.
async fn no_video_asked(https: &Https, cookie: &str, st: &Station) {
    let res = https
        .post_json(
            cookie,
            "/api/room/lock",
            serde_json::json!({ "locked": true, "stations": [st.id] }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !st.screen.shown().locked {
        assert!(
            Instant::now() < deadline,
            "the lock never reached the station"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = st.running.status.borrow().clone();
    assert!(!s.thumb_on && !s.full_on, "video asked: {s:?}");
    assert_eq!(s.frames_sent, 0, "video left the station");
    assert!(!st.screen.shown().watched_indicator, "badge shown");
    let res = https
        .post_json(
            cookie,
            "/api/room/lock",
            serde_json::json!({ "locked": false, "stations": [st.id] }),
        )
        .await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn stations_stream_and_show_their_badge_only_while_the_mosaic_is_open() {
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut stations = Vec::new();
    for name in ["poste-01", "poste-02"] {
        let screen: Arc<dyn Screen> = Arc::new(SimulatedScreen::default());
        stations.push(station(&b, &dirs.path().join(name), name, screen).await);
    }
    let (https, cookie) = admin(&b).await;

    // Monitoring is allowed, nobody looks: no video, no badge, LED off, no tile watched.
    let room = get(&https, &cookie, "/api/room").await;
    assert_eq!(room["monitoring"], true, "{room}");
    for st in &stations {
        no_video_asked(&https, &cookie, st).await;
    }
    let (room, _) = box_until(
        &https,
        &cookie,
        "unlocked",
        Duration::from_secs(10),
        |r, _| stations.iter().all(|s| tile(r, s.id)["locked"] == false),
    )
    .await;
    assert_eq!(room["watched"], false);
    assert!(stations
        .iter()
        .all(|s| tile(&room, s.id)["watched"] == false));
    assert_eq!(
        get(&https, &cookie, "/api/dev/panel").await["status_led"],
        "off"
    );

    // A teacher opens the class: thumbnails, badges and the LED within 2 s.
    let opened = Instant::now();
    let mut ws = https.websocket("/api/mosaic", &cookie).await.unwrap();
    for st in &stations {
        status_until(
            &st.running,
            "thumbnails sent",
            Duration::from_secs(2),
            |s| s.thumb_on && s.frames_sent > 0,
        )
        .await;
    }
    let deadline = opened + Duration::from_secs(2);
    while !stations.iter().all(|s| s.screen.shown().watched_indicator) {
        assert!(Instant::now() < deadline, "badges not shown within 2 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let badges = opened.elapsed();
    let (room, lit) = box_until(
        &https,
        &cookie,
        "LED lit",
        Duration::from_secs(2),
        |r, led| led == "watching" && stations.iter().all(|s| tile(r, s.id)["watched"] == true),
    )
    .await;
    assert_eq!(room["watched"], true);
    println!(
        "mosaic opened: thumbnails and badges after {} ms, LED lit after {} ms",
        badges.as_millis(),
        (lit - opened).as_millis()
    );
    assert!(lit - opened < Duration::from_secs(2));
    // The tablet really gets the class.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let WsItem::Video(v) = next_item(&mut ws, Duration::from_secs(10)).await.unwrap() {
            if !v.updates.is_empty() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no station picture in the mosaic"
        );
    }

    // The tablet closes: everything goes off after the linger, within one more second.
    drop(ws);
    let closed = Instant::now();
    for st in &stations {
        status_until(
            &st.running,
            "thumbnails stopped",
            LINGER + Duration::from_secs(1),
            |s| !s.thumb_on,
        )
        .await;
    }
    let (_, off) = box_until(
        &https,
        &cookie,
        "LED off",
        LINGER + Duration::from_secs(1),
        |r, led| led == "off" && r["watched"] == false,
    )
    .await;
    let deadline = closed + LINGER + Duration::from_secs(1);
    while stations.iter().any(|s| s.screen.shown().watched_indicator) {
        assert!(Instant::now() < deadline, "badges still shown");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_off = closed.elapsed().max(off - closed);
    println!(
        "mosaic closed: video, badges and LED off after {} ms (linger {} ms)",
        all_off.as_millis(),
        LINGER.as_millis()
    );
    assert!(all_off >= LINGER, "stopped before the linger was over");
    for st in stations {
        st.running.shutdown().await;
    }
}

#[tokio::test]
async fn a_station_that_cannot_show_its_badge_sends_no_video_and_the_tablet_says_so() {
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let good = station(
        &b,
        &dirs.path().join("good"),
        "poste-01",
        Arc::new(SimulatedScreen::default()),
    )
    .await;
    // What the agent runs with when its overlay cannot start (see station main.rs).
    let blind = station(
        &b,
        &dirs.path().join("blind"),
        "poste-02",
        Arc::new(NoScreen::new("no X11 display".into())),
    )
    .await;
    let (https, cookie) = admin(&b).await;
    let _ws = https.websocket("/api/mosaic", &cookie).await.unwrap();
    status_until(
        &good.running,
        "thumbnails sent",
        Duration::from_secs(5),
        |s| s.thumb_on && s.frames_sent > 0,
    )
    .await;
    let (room, _) = box_until(
        &https,
        &cookie,
        "the tile says the station cannot be watched",
        Duration::from_secs(5),
        |r, _| tile(r, blind.id)["no_indicator"] == true,
    )
    .await;
    let t = tile(&room, blind.id);
    assert_eq!(t["online"], true, "{t}");
    assert_eq!(t["watched"], false, "{t}");
    assert_eq!(tile(&room, good.id)["no_indicator"], false);
    // Even with the class open, nothing from it.
    let s = blind.running.status.borrow().clone();
    assert!(!s.thumb_on && s.frames_sent == 0, "{s:?}");

    // Opening it is refused, saying why.
    let res = https
        .request(
            "GET",
            &format!("/api/stations/{}/focus", blind.id),
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
    assert!(msg.contains("indicator"), "{msg}");
    let res = https
        .post_json(
            &cookie,
            "/api/demo",
            serde_json::json!({"source": blind.id, "targets": null, "mode": "windowed"}),
        )
        .await;
    assert_eq!(res.status, 403, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(blind.running.status.borrow().frames_sent, 0);
    good.running.shutdown().await;
    blind.running.shutdown().await;
}

/// The first local minute boundary at least `lead` from now, as Unix seconds, with its local
/// (weekday index, minute of the day). Local and UTC minute boundaries coincide (time zones
/// are whole minutes apart).
fn next_minute_edge(lead: Duration) -> (u64, usize, u32) {
    use lanterne_privacy::policy::Clock;
    let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let edge_unix = (now_unix + lead).as_secs().div_ceil(60) * 60;
    let local = lanterne_privacy::policy::SystemClock::new().now()
        + Duration::from_secs_f64(edge_unix as f64 - now_unix.as_secs_f64());
    let day = usize::from(local.weekday().number_days_from_monday());
    (
        edge_unix,
        day,
        u32::from(local.hour()) * 60 + u32::from(local.minute()),
    )
}

/// The window's end on the real clock: a schedule whose window ends at the first minute
/// boundary at least 12 s after the start (so the box, a station and a viewer are up
/// first; the test lasts 12 to 72 s). Video stops, the LED goes off and the focus view ends
/// within 1 s of the edge; the figures are printed.
#[tokio::test]
async fn at_a_window_end_on_the_real_clock_video_stops_and_the_led_goes_off_within_a_second() {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let (mut edge_unix, mut day, mut end) = next_minute_edge(Duration::from_secs(12));
    while end < 3 {
        // Around midnight the window (on the edge's day) would start before today ends:
        // wait for the new day. Wall-clock time is what this test is about; nothing else
        // could be waited on.
        tokio::time::sleep(Duration::from_secs(20)).await;
        (edge_unix, day, end) = next_minute_edge(Duration::from_secs(12));
    }
    let start = end.saturating_sub(60);
    let all = r#"["mon", "tue", "wed", "thu", "fri", "sat", "sun"]"#;
    let config = format!(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n[schedule]\n\
         access = [{{ days = {all}, start = \"00:00\", end = \"24:00\" }}]\n\
         monitoring = [{{ days = [\"{}\"], start = \"{:02}:{:02}\", end = \"{:02}:{:02}\" }}]\n",
        DAYS[day],
        start / 60,
        start % 60,
        end / 60,
        end % 60
    );
    let b = BoxProcess::start_with_config(&config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let st = station(
        &b,
        dir.path(),
        "poste-01",
        Arc::new(SimulatedScreen::default()),
    )
    .await;
    let (https, cookie) = admin(&b).await;
    let _mosaic = https.websocket("/api/mosaic", &cookie).await.unwrap();
    let mut focus = https
        .websocket(&format!("/api/stations/{}/focus", st.id), &cookie)
        .await
        .expect("the focus view opens inside the window");
    status_until(
        &st.running,
        "both streams on",
        Duration::from_secs(10),
        |s| s.thumb_on && s.full_on && s.frames_sent > 0,
    )
    .await;
    box_until(
        &https,
        &cookie,
        "LED lit",
        Duration::from_secs(5),
        |_, led| led == "watching",
    )
    .await;
    let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let to_edge = Duration::from_secs(edge_unix)
        .checked_sub(now_unix)
        .expect("the set-up took longer than the lead before the window's end");
    let edge = Instant::now() + to_edge;

    // The focus view is told, with the reason.
    let focus_ended = tokio::spawn(async move {
        loop {
            match next_item(&mut focus, Duration::from_secs(90)).await {
                Ok(WsItem::Json(j)) if j["type"] == "ended" => return (j, Instant::now()),
                Ok(_) => continue,
                Err(e) => panic!("the focus view closed without saying why: {e}"),
            }
        }
    });
    let s = status_until(
        &st.running,
        "video stopped",
        to_edge + Duration::from_secs(5),
        |s| !s.thumb_on && !s.full_on,
    )
    .await;
    let video = Instant::now().saturating_duration_since(edge);
    let (room, led_off) = box_until(
        &https,
        &cookie,
        "LED off",
        Duration::from_secs(5),
        |r, led| led == "off" && r["watched"] == false,
    )
    .await;
    let led = led_off.saturating_duration_since(edge);
    let (ended, ended_at) = focus_ended.await.unwrap();
    let view = ended_at.saturating_duration_since(edge);
    assert!(Instant::now() >= edge);
    // Nothing more leaves the station (one frame may have been on its way): watched for 1 s.
    let sent = s.frames_sent;
    let mut status = st.running.status.clone();
    let more = tokio::time::timeout(
        Duration::from_secs(1),
        status.wait_for(|s| s.frames_sent > sent + 1),
    )
    .await
    .is_ok();
    assert!(
        !more,
        "frames still sent after the edge: {:?}",
        *status.borrow()
    );
    println!(
        "window end, real clock: video stopped {} ms, LED off {} ms (tablet poll every 20 ms), \
         focus view ended {} ms after the edge",
        video.as_millis(),
        led.as_millis(),
        view.as_millis()
    );
    assert_eq!(ended["reason"], "outside-monitoring-hours", "{ended}");
    assert_eq!(room["monitoring"], false);
    assert!(
        video < Duration::from_secs(1),
        "video stopped {video:?} after the edge"
    );
    assert!(
        led < Duration::from_secs(1),
        "LED off {led:?} after the edge"
    );
    assert!(
        view < Duration::from_secs(1),
        "focus ended {view:?} after the edge"
    );
    assert!(!st.screen.shown().watched_indicator);
    b.wait_log_line(&["monitoring window closes"], Duration::from_secs(1))
        .await
        .unwrap();
    st.running.shutdown().await;
}

/// Fail closed: a room without `[schedule]` watches nobody, and says why everywhere; the
/// controls that watch nobody (lock, the HDMI demo) work.
#[tokio::test]
async fn without_a_schedule_monitoring_is_refused_everywhere_and_other_controls_work() {
    let b = BoxProcess::start_with_config(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n\
         [privacy]\nscreenshots = true\n[hdmi]\ninput = \"test-pattern\"\nbitrate_kbps = 1000\n",
    )
    .await
    .unwrap();
    b.wait_log_line(
        &["no [schedule]", "monitoring is off"],
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let one = station(
        &b,
        &dirs.path().join("one"),
        "poste-01",
        Arc::new(SimulatedScreen::default()),
    )
    .await;
    let two = station(
        &b,
        &dirs.path().join("two"),
        "poste-02",
        Arc::new(SimulatedScreen::default()),
    )
    .await;
    let (https, cookie) = admin(&b).await;
    let room = get(&https, &cookie, "/api/room").await;
    assert_eq!(room["monitoring_configured"], false, "{room}");
    assert_eq!(room["monitoring"], false);
    assert_eq!(room["next_monitoring"], Value::Null);

    // The class open on a tablet: no station streams (and the lock still works).
    let _ws = https.websocket("/api/mosaic", &cookie).await.unwrap();
    no_video_asked(&https, &cookie, &one).await;
    assert_eq!(
        get(&https, &cookie, "/api/dev/panel").await["status_led"],
        "off"
    );

    let focus = https
        .request(
            "GET",
            &format!("/api/stations/{}/focus", one.id),
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
    let shot = https
        .post_json(
            &cookie,
            &format!("/api/stations/{}/screenshot", one.id),
            serde_json::json!({}),
        )
        .await;
    let demo = https
        .post_json(
            &cookie,
            "/api/demo",
            serde_json::json!({"source": one.id, "targets": null, "mode": "windowed"}),
        )
        .await;
    for (what, res) in [("focus", focus), ("screenshot", shot), ("demo", demo)] {
        assert_eq!(
            res.status,
            403,
            "{what}: {}",
            String::from_utf8_lossy(&res.body)
        );
        let msg = res.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            msg.contains("monitoring is not configured") && msg.contains("[schedule]"),
            "{what}: {msg}"
        );
    }

    // Showing the teacher's own screen watches nobody: it works.
    let res = https
        .post_json(
            &cookie,
            "/api/demo",
            serde_json::json!({"source": "hdmi", "targets": null, "mode": "windowed"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    for st in [&one, &two] {
        status_until(
            &st.running,
            "the HDMI demo plays",
            Duration::from_secs(30),
            |s| s.demo.is_some_and(|h| h.playing && h.frames_decoded > 0),
        )
        .await;
        assert_eq!(st.running.status.borrow().frames_sent, 0);
    }
    assert_eq!(
        get(&https, &cookie, "/api/dev/panel").await["status_led"],
        "off"
    );
    one.running.shutdown().await;
    two.running.shutdown().await;
}
