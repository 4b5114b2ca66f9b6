//! The room lock: from the (simulated) front panel button and from the API, reaching every
//! station, shown on the panel's lock LED, and surviving a box restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanterne_media::CaptureSource;
use lanterne_scenarios::{BoxProcess, Https};
use lanterne_station::screen::{Screen, SimulatedScreen};
use lanterne_station::{spawn_station, RunningStation, SourceSpec};

struct Station {
    screen: Arc<SimulatedScreen>,
    running: RunningStation,
}

fn start(dir: &std::path::Path, name: &str, probe: &lanterne_media::CodecProbe) -> Station {
    let screen = Arc::new(SimulatedScreen::default());
    let running = spawn_station(
        dir,
        SourceSpec::Live(CaptureSource::Synthetic {
            label: name.into(),
            rgb: [40, 70, 200],
        }),
        screen.clone(),
        Arc::new(lanterne_station::system::SimulatedSystem::default()),
        probe,
        name.into(),
    )
    .unwrap();
    Station { screen, running }
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn panel(https: &Https, cookie: &str) -> serde_json::Value {
    let res = https
        .request("GET", "/api/dev/panel", None, &[("cookie", cookie)])
        .await
        .unwrap();
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()
}

async fn press(https: &Https, cookie: &str) {
    let origin = https.origin();
    let res = https
        .request(
            "POST",
            "/api/dev/panel/press",
            None,
            &[("cookie", cookie), ("origin", &origin)],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 202, "{}", String::from_utf8_lossy(&res.body));
}

#[tokio::test]
async fn button_and_api_lock_every_station_and_the_lock_survives_a_box_restart() {
    let b = BoxProcess::start().await.unwrap();
    let password = b.ready.admin_password.clone().unwrap();
    let probe = lanterne_media::init().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut stations = Vec::new();
    for i in 1..=3 {
        let name = format!("poste-{i:02}");
        let dir = dirs.path().join(&name);
        b.enrol(&dir, &name).await.unwrap();
        stations.push(start(&dir, &name, &probe));
    }
    wait_until("all stations connected", Duration::from_secs(30), || {
        stations.iter().all(|s| s.running.status.borrow().connected)
    })
    .await;

    let https = b.https().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    let p = panel(&https, &cookie).await;
    assert_eq!(p["lock_led"], false);
    assert_eq!(
        p["status_led"], "off",
        "nobody has the class open: nobody is watched"
    );

    // Press: every station locks, with the configured message, and the lock LED lights.
    press(&https, &cookie).await;
    wait_until(
        "every station locked by the button",
        Duration::from_secs(10),
        || stations.iter().all(|s| s.screen.shown().locked),
    )
    .await;
    assert_eq!(
        stations[0].screen.lock_message().as_deref(),
        Some("Écrans verrouillés — regardez le tableau")
    );
    assert_eq!(panel(&https, &cookie).await["lock_led"], true);
    // The tablet's view shows what the stations report.
    let room = https
        .request("GET", "/api/room", None, &[("cookie", &cookie)])
        .await
        .unwrap()
        .json();
    assert_eq!(room["locked"], true);

    // Press again: unlocked.
    press(&https, &cookie).await;
    wait_until(
        "every station unlocked by the button",
        Duration::from_secs(10),
        || stations.iter().all(|s| !s.screen.shown().locked),
    )
    .await;
    assert_eq!(panel(&https, &cookie).await["lock_led"], false);

    // Lock from the API, then restart the box and bring the stations back with fresh screens:
    // the lock is re-applied from the box's database.
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
    assert_eq!(res.json()["sent_to"].as_array().unwrap().len(), 3);
    wait_until(
        "every station locked by the API",
        Duration::from_secs(10),
        || stations.iter().all(|s| s.screen.shown().locked),
    )
    .await;

    for s in &stations {
        s.running.task.abort();
    }
    let dir = b.stop();
    let b = BoxProcess::start_in(dir).await.unwrap();
    let mut fresh = Vec::new();
    for i in 1..=3 {
        let name = format!("poste-{i:02}");
        fresh.push(start(&dirs.path().join(&name), &name, &probe));
    }
    wait_until(
        "stations locked again after the box restart",
        Duration::from_secs(60),
        || fresh.iter().all(|s| s.screen.shown().locked),
    )
    .await;
    let https = b.https().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    assert_eq!(panel(&https, &cookie).await["lock_led"], true);
}

#[tokio::test]
async fn lock_requests_are_validated() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let origin = https.origin();

    let res = https
        .request(
            "POST",
            "/api/room/lock",
            Some(serde_json::json!({ "locked": true })),
            &[("origin", &origin)],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 401, "no session, no lock");

    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .request(
            "POST",
            "/api/room/lock",
            Some(serde_json::json!({ "locked": "yes" })),
            &[("cookie", &cookie), ("origin", &origin)],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 400);
    let msg = res.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("locked"), "the error names the field: {msg}");

    let res = https
        .request(
            "POST",
            "/api/room/lock",
            Some(serde_json::json!({ "locked": true })),
            &[("cookie", &cookie), ("origin", "https://evil.example")],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 403, "cross-site requests are refused");
}

async fn lock(https: &Https, cookie: &str, body: serde_json::Value) -> serde_json::Value {
    let res = https.post_json(cookie, "/api/room/lock", body).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()
}

#[tokio::test]
async fn a_selection_locks_alone_and_unlocking_part_of_a_locked_room_keeps_the_rest_locked() {
    let b = BoxProcess::start().await.unwrap();
    let password = b.ready.admin_password.clone().unwrap();
    let probe = lanterne_media::init().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut stations = Vec::new();
    let mut ids = Vec::new();
    for i in 1..=3 {
        let name = format!("poste-{i:02}");
        let dir = dirs.path().join(&name);
        ids.push(b.enrol(&dir, &name).await.unwrap().station_id);
        stations.push(start(&dir, &name, &probe));
    }
    wait_until("all stations connected", Duration::from_secs(30), || {
        stations.iter().all(|s| s.running.status.borrow().connected)
    })
    .await;
    let https = b.https().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    let locked = |s: &[Station]| {
        s.iter()
            .map(|s| s.screen.shown().locked)
            .collect::<Vec<_>>()
    };

    // Lock poste-02 only: the others stay usable, the button's LED says something is locked.
    let report = lock(
        &https,
        &cookie,
        serde_json::json!({ "locked": true, "stations": [ids[1]] }),
    )
    .await;
    assert_eq!(report["sent_to"], serde_json::json!(["poste-02"]));
    wait_until("poste-02 locked", Duration::from_secs(10), || {
        stations[1].screen.shown().locked
    })
    .await;
    assert_eq!(locked(&stations), [false, true, false]);
    assert_eq!(panel(&https, &cookie).await["lock_led"], true);
    let room = https
        .request("GET", "/api/room", None, &[("cookie", &cookie)])
        .await
        .unwrap()
        .json();
    assert_eq!(room["locked"], false, "the room as a whole is not locked");
    let ordered: Vec<bool> = room["mosaic"]["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["lock_ordered"].as_bool().unwrap())
        .collect();
    assert_eq!(ordered, [false, true, false]);

    // The button with something locked unlocks everything (its LED goes dark).
    press(&https, &cookie).await;
    wait_until(
        "all unlocked by the button",
        Duration::from_secs(10),
        || locked(&stations) == [false, false, false],
    )
    .await;

    // Lock the room, then let poste-01 go: poste-02 and poste-03 stay locked.
    lock(&https, &cookie, serde_json::json!({ "locked": true })).await;
    wait_until("room locked", Duration::from_secs(10), || {
        locked(&stations) == [true, true, true]
    })
    .await;
    let report = lock(
        &https,
        &cookie,
        serde_json::json!({ "locked": false, "stations": [ids[0]] }),
    )
    .await;
    assert_eq!(report["sent_to"], serde_json::json!(["poste-01"]));
    wait_until("poste-01 unlocked", Duration::from_secs(10), || {
        locked(&stations) == [false, true, true]
    })
    .await;

    // The partial lock outlives a restart of the box.
    for s in &stations {
        s.running.task.abort();
    }
    let dir = b.stop();
    let b = BoxProcess::start_in(dir).await.unwrap();
    let fresh: Vec<Station> = (1..=3)
        .map(|i| {
            let name = format!("poste-{i:02}");
            start(&dirs.path().join(&name), &name, &probe)
        })
        .collect();
    wait_until("all back", Duration::from_secs(60), || {
        fresh.iter().all(|s| s.running.status.borrow().connected)
    })
    .await;
    wait_until("the same two locked again", Duration::from_secs(10), || {
        locked(&fresh) == [false, true, true]
    })
    .await;

    // An unknown station is a clear 400, and nothing changes.
    let https = b.https().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    let res = https
        .post_json(
            &cookie,
            "/api/room/lock",
            serde_json::json!({ "locked": true, "stations": [9999] }),
        )
        .await;
    assert_eq!(res.status, 400);
    let msg = res.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("9999"), "the error names the station: {msg}");
    assert_eq!(locked(&fresh), [false, true, true]);
}
