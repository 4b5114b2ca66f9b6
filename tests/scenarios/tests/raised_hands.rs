//! Who sits where and raised hands, end to end through the real box, in a room with no
//! monitoring schedule (nobody may be watched: asking for help must work anyway). Simulated
//! stations' students log in and out and raise or withdraw their hand; the room view (what
//! the tablet draws) shows the name on the station's tile and the hands in the order raised,
//! each within a second; a teacher clearing a hand takes it down on the station.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanterne_media::CaptureSource;
use lanterne_scenarios::{BoxProcess, Https};
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::{spawn_station, RunningStation, SourceSpec};

const NO_SCHEDULE: &str = r#"[room]
name = "Salle 21"
school = "Collège de test"
[panel]
backend = "simulated"
"#;

struct Station {
    screen: Arc<SimulatedScreen>,
    running: RunningStation,
}

async fn tile(https: &Https, cookie: &str, id: u32) -> serde_json::Value {
    let room = https
        .request("GET", "/api/room", None, &[("cookie", cookie)])
        .await
        .unwrap()
        .json();
    room["mosaic"]["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station_id"] == id)
        .cloned()
        .expect("a tile")
}

/// Polls the station's tile until `cond` holds; returns how long it took.
async fn wait_tile(
    https: &Https,
    cookie: &str,
    id: u32,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let t = tile(https, cookie, id).await;
        if cond(&t) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for: {what}; tile: {t}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn names_show_for_the_session_and_hands_in_the_order_raised_at_any_hour() {
    let b = BoxProcess::start_with_config(NO_SCHEDULE).await.unwrap();
    let password = b.ready.admin_password.clone().unwrap();
    let probe = lanterne_media::init().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut stations = Vec::new();
    for (i, rgb) in [[200, 40, 40], [40, 160, 60]].into_iter().enumerate() {
        let name = format!("poste-{:02}", i + 1);
        let dir = dirs.path().join(&name);
        b.enrol(&dir, &name).await.unwrap();
        let screen = Arc::new(SimulatedScreen::default());
        let running = spawn_station(
            &dir,
            SourceSpec::Live(CaptureSource::Synthetic {
                label: name.clone(),
                rgb,
            }),
            screen.clone(),
            Arc::new(lanterne_station::system::SimulatedSystem::default()),
            &probe,
            name,
        )
        .unwrap();
        stations.push(Station { screen, running });
    }
    let https = b.https().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    let ids: Vec<u32> = stations.iter().map(|s| s.running.station_id).collect();
    for id in &ids {
        wait_tile(&https, &cookie, *id, "online", |t| t["online"] == true).await;
    }
    let room = https
        .request("GET", "/api/room", None, &[("cookie", &cookie)])
        .await
        .unwrap()
        .json();
    assert_eq!(
        room["monitoring_configured"], false,
        "nobody may be watched"
    );

    // A student logs in at poste-01: her name on its tile; nobody at poste-02.
    stations[0].screen.set_user(Some("Élise Martin".into()));
    wait_tile(&https, &cookie, ids[0], "the name on the tile", |t| {
        t["user_name"] == "Élise Martin"
    })
    .await;
    assert_eq!(
        tile(&https, &cookie, ids[1]).await["user_name"],
        serde_json::Value::Null
    );
    // She logs out: the name goes.
    stations[0].screen.set_user(None);
    wait_tile(&https, &cookie, ids[0], "no name after logging out", |t| {
        t["user_name"].is_null()
    })
    .await;

    // Hands: poste-02 first, then poste-01; each shown within a second, in that order.
    stations[1].screen.raise_hand(true);
    let first = wait_tile(&https, &cookie, ids[1], "poste-02's hand", |t| {
        t["hand"] == 1
    })
    .await;
    stations[0].screen.raise_hand(true);
    let second = wait_tile(&https, &cookie, ids[0], "poste-01's hand", |t| {
        t["hand"] == 2
    })
    .await;
    assert!(
        first < Duration::from_secs(1) && second < Duration::from_secs(1),
        "hands shown after {first:?} and {second:?}"
    );
    assert_eq!(tile(&https, &cookie, ids[1]).await["hand"], 1);

    // The teacher clears poste-02's hand: down on the station, poste-01 moves up.
    let res = https
        .post_json(
            &cookie,
            &format!("/api/stations/{}/hand/clear", ids[1]),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["cleared"], true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stations[1].screen.student().1 {
        assert!(
            Instant::now() < deadline,
            "the station never took its hand down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_tile(&https, &cookie, ids[1], "poste-02 cleared", |t| {
        t["hand"].is_null()
    })
    .await;
    wait_tile(&https, &cookie, ids[0], "poste-01 first now", |t| {
        t["hand"] == 1
    })
    .await;

    // The student of poste-01 withdraws; logging out also lowers a raised hand.
    stations[0].screen.raise_hand(false);
    wait_tile(&https, &cookie, ids[0], "withdrawn", |t| {
        t["hand"].is_null()
    })
    .await;
    stations[1].screen.set_user(Some("Hugo Petit".into()));
    stations[1].screen.raise_hand(true);
    wait_tile(&https, &cookie, ids[1], "Hugo's hand", |t| {
        t["hand"] == 1 && t["user_name"] == "Hugo Petit"
    })
    .await;
    stations[1].screen.set_user(None);
    wait_tile(&https, &cookie, ids[1], "logged out, hand down", |t| {
        t["hand"].is_null() && t["user_name"].is_null()
    })
    .await;

    // A station that is not in the room: 404.
    let res = https
        .post_json(
            &cookie,
            "/api/stations/999/hand/clear",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 404);
    for s in stations {
        s.running.shutdown().await;
    }
}
