//! The health check and the Prometheus metrics through the real box: `/healthz` answers "ok"
//! to anyone and says nothing else; metrics are off unless configured (404 everywhere); when
//! on, `/metrics` answers the box's own loopback without a sign-in and `/api/metrics` an
//! admin's session, with the counts of this room: an enrolled station online, failed sign-ins,
//! the process's CPU time and memory. (A peer other than loopback is refused: unit test
//! `only_a_loopback_peer_reads_metrics_and_only_when_they_are_on`; teachers and technicians
//! are refused `/api/metrics`: `route_matrix.rs`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanterne_media::CaptureSource;
use lanterne_scenarios::{development_config, BoxProcess, Https};
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::{spawn_station, SourceSpec};

/// Parses the text format: every sample must follow its own HELP and TYPE lines.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut described = None;
    let mut typed = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described = rest.split_once(' ').map(|(n, _)| n.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(matches!(kind, "gauge" | "counter"), "{line}");
            assert!(
                kind != "counter" || name.ends_with("_total"),
                "a counter's name ends in _total: {line}"
            );
            typed = Some(name.to_string());
        } else {
            let (name, value) = line.split_once(' ').expect("name value");
            assert_eq!(described.as_deref(), Some(name), "HELP before {line}");
            assert_eq!(typed.as_deref(), Some(name), "TYPE before {line}");
            samples.insert(name.to_string(), value.parse().expect("a number"));
        }
    }
    samples
}

async fn get(https: &Https, path: &str, cookie: Option<&str>) -> lanterne_scenarios::Response {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    https.request("GET", path, None, &headers).await.unwrap()
}

#[tokio::test]
async fn health_is_public_and_metrics_are_off_unless_configured() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let res = get(&https, "/healthz", None).await;
    assert_eq!(res.status, 200);
    assert_eq!(&res.body[..], b"ok\n", "nothing but ok");
    assert_eq!(res.headers["cache-control"], "no-store");

    assert_eq!(get(&https, "/metrics", None).await.status, 404);
    assert_eq!(get(&https, "/api/metrics", None).await.status, 401);
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = get(&https, "/api/metrics", Some(&cookie)).await;
    assert_eq!(res.status, 404, "{}", String::from_utf8_lossy(&res.body));
}

#[tokio::test]
async fn metrics_count_the_room_for_the_box_itself_and_for_admins() {
    let b = BoxProcess::start_with_config(&format!(
        "{}\n[metrics]\nenabled = true\n",
        development_config()
    ))
    .await
    .unwrap();
    let https = b.https().unwrap();

    // Two failed sign-ins, then the admin's own.
    for _ in 0..2 {
        assert!(https.login("admin", "not-the-password").await.is_err());
    }
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();

    let probe = lanterne_media::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    b.enrol(dir.path(), "poste-01").await.unwrap();
    let _station = spawn_station(
        dir.path(),
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-01".into(),
            rgb: [40, 160, 60],
        }),
        Arc::new(SimulatedScreen::default()),
        Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-01".into(),
    )
    .unwrap();

    // From the box itself (this test is on its loopback), without a session.
    let start = Instant::now();
    let samples = loop {
        let res = get(&https, "/metrics", None).await;
        assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
        assert_eq!(
            res.headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let samples = parse(std::str::from_utf8(&res.body).unwrap());
        if samples["lanterne_stations_online"] == 1.0 {
            break samples;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the station never showed online: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(samples["lanterne_stations"], 1.0);
    assert_eq!(samples["lanterne_login_failures_total"], 2.0);
    assert_eq!(samples["lanterne_room_locked"], 0.0);
    assert_eq!(samples["lanterne_demo_frames_dropped"], 0.0);
    assert!(
        samples["process_resident_memory_bytes"] > 10e6,
        "{samples:?}"
    );
    assert!(samples["process_cpu_seconds_total"] > 0.0, "{samples:?}");
    for name in [
        "lanterne_stations_watched",
        "lanterne_mosaic_frames_total",
        "lanterne_mosaic_ticks_skipped_total",
        "lanterne_mosaic_decode_errors_total",
        "lanterne_mosaic_station_frames_dropped",
    ] {
        assert!(samples.contains_key(name), "{name} missing: {samples:?}");
    }

    // An admin's session reads the same from anywhere; a third failure shows.
    assert!(https.login("admin", "still-not-it").await.is_err());
    let res = get(&https, "/api/metrics", Some(&cookie)).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let samples = parse(std::str::from_utf8(&res.body).unwrap());
    assert_eq!(samples["lanterne_login_failures_total"], 3.0);
    assert_eq!(samples["lanterne_stations_online"], 1.0);
}
