//! Lock benchmark: how long from a lock order (the tablet's API call, or the panel button) to
//! the lock shown on every one of N stations, and to the box having every station's
//! acknowledgement. Stations are real agents (their own TLS links) in this process, with
//! replayed video and the simulated screen that display-less stations use.
//!
//! Run through `scripts/bench-lock.sh` (builds release binaries, records the replay file):
//!   target/release/bench-lock [stations=40] [rounds=40] [replay=run/bench/thumb.lrp]
//!
//! Baseline, measured in the same run: the round trip of an authenticated `GET /api/me` on a
//! fresh HTTPS connection, which every lock request also pays. Writes docs/bench/lock.json.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use lanterne_scenarios::bench::{machine, now_iso, percentile, round1};
use lanterne_scenarios::{next_item, BoxProcess, WsItem};
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::{spawn_station, SourceSpec};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(40);
    let rounds: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(40);
    let replay = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "run/bench/thumb.lrp".into());

    let b = BoxProcess::start().await?;
    let password = b.ready.admin_password.clone().context("first start")?;
    let probe = lanterne_media::init()?;
    let file = Arc::new(
        lanterne_media::replay::ReplayFile::open(std::path::Path::new(&replay))
            .with_context(|| format!("replay file {replay} (scripts/bench-lock.sh records it)"))?,
    );
    let tokens = b.enrol_tokens(n as u32)?;
    let dirs = tempfile::tempdir()?;
    let mut screens = Vec::new();
    let mut stations = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let name = format!("poste-{:02}", i + 1);
        let dir = dirs.path().join(&name);
        lanterne_station::enrol::enrol(&dir, &b.ready.https_url, token, &name, None).await?;
        let screen = Arc::new(SimulatedScreen::default());
        stations.push(spawn_station(
            &dir,
            SourceSpec::Replay(file.clone()),
            screen.clone(),
            std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
            &probe,
            name,
        )?);
        screens.push(screen);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stations.iter().all(|s| s.status.borrow().connected) {
        anyhow::ensure!(Instant::now() < deadline, "stations did not all connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let https = b.https()?;
    let cookie = https.login("admin", &password).await?;
    let origin = https.origin();
    let mut ws = https.websocket("/api/mosaic", &cookie).await?;

    // Baseline: authenticated request round trip on a fresh connection.
    let mut baseline = Vec::new();
    for _ in 0..rounds.max(10) {
        let t0 = Instant::now();
        let res = https
            .request("GET", "/api/me", None, &[("cookie", &cookie)])
            .await?;
        anyhow::ensure!(res.status == 200, "GET /api/me: {}", res.status);
        baseline.push(ms(t0.elapsed()));
    }

    let mut shown_ms = Vec::new(); // per station per round
    let mut all_shown_ms = Vec::new(); // per round: the last station
    let mut acked_ms = Vec::new(); // per round: box has every station's acknowledgement
    let (mut api_rounds, mut button_rounds) = (0, 0);
    for r in 0..rounds {
        let want = r % 2 == 0;
        let by_button = r % 4 >= 2;
        let waiters: Vec<_> = screens
            .iter()
            .map(|s| {
                let mut rx = s.subscribe();
                tokio::spawn(async move {
                    rx.wait_for(|sh| sh.locked == want).await.ok();
                    Instant::now()
                })
            })
            .collect();
        let t0 = Instant::now();
        let res = if by_button {
            button_rounds += 1;
            https
                .request(
                    "POST",
                    "/api/dev/panel/press",
                    None,
                    &[("cookie", &cookie), ("origin", &origin)],
                )
                .await?
        } else {
            api_rounds += 1;
            https
                .request(
                    "POST",
                    "/api/room/lock",
                    Some(serde_json::json!({ "locked": want })),
                    &[("cookie", &cookie), ("origin", &origin)],
                )
                .await?
        };
        anyhow::ensure!(res.status < 300, "lock order refused: {}", res.status);
        // The box's acknowledgement: a layout in which every tile reports the wanted state.
        let acked = loop {
            if let WsItem::Json(j) = next_item(&mut ws, Duration::from_secs(10)).await? {
                if j["type"] == "layout"
                    && j["tiles"]
                        .as_array()
                        .is_some_and(|t| t.len() == n && t.iter().all(|t| t["locked"] == want))
                {
                    break Instant::now();
                }
            }
        };
        acked_ms.push(ms(acked - t0));
        let mut last = t0;
        for w in waiters {
            let at = tokio::time::timeout(Duration::from_secs(10), w).await??;
            shown_ms.push(ms(at.saturating_duration_since(t0)));
            last = last.max(at);
        }
        all_shown_ms.push(ms(last - t0));
    }

    let base = percentile(&baseline, 50.0);
    let results = serde_json::json!({
        "shown_ms_p50": round1(percentile(&shown_ms, 50.0)),
        "shown_ms_p99": round1(percentile(&shown_ms, 99.0)),
        "all_stations_shown_ms_p50": round1(percentile(&all_shown_ms, 50.0)),
        "all_stations_shown_ms_p99": round1(percentile(&all_shown_ms, 99.0)),
        "box_acknowledged_all_ms_p50": round1(percentile(&acked_ms, 50.0)),
        "box_acknowledged_all_ms_p99": round1(percentile(&acked_ms, 99.0)),
        "baseline_request_ms_median": round1(base),
        "ratio_all_shown_p50_to_baseline": round1(percentile(&all_shown_ms, 50.0) / base),
        "samples": shown_ms.len(),
    });
    let report = serde_json::json!({
        "benchmark": "lock",
        "date": now_iso(),
        "command": format!("scripts/bench-lock.sh {n} {rounds}"),
        "machine": machine("n/a (lock path only)"),
        "params": { "stations": n, "rounds": rounds, "api_rounds": api_rounds, "button_rounds": button_rounds },
        "results": results,
        "targets": { "box_acknowledged_all_ms_p99_max": 250 },
        "met": { "lock_p99": percentile(&acked_ms, 99.0) < 250.0 },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::create_dir_all("docs/bench")?;
    std::fs::write(
        "docs/bench/lock.json",
        format!("{}\n", serde_json::to_string_pretty(&report)?),
    )?;
    drop(stations);
    Ok(())
}
