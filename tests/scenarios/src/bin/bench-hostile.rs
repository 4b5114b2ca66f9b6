//! Hostile-network benchmark: the box under `prlimit --nofile=1024:1024` with a station
//! streaming and a teacher watching, through the attacks of `lanterne_scenarios::hostile`
//! (2,000 half-sent requests from 16 addresses and from one, slow headers and slow bodies on
//! the HTTPS and station-link ports, 500 logins at once). Per phase: connections the
//! attacker kept going and the box held at once, the teacher's sign-in time p50/p99, the
//! mosaic's longest pause, the box's peak RSS and descriptors, and whether it exited.
//!
//! Run through `scripts/bench-hostile.sh` (builds release binaries):
//!   target/release/bench-hostile [half_requests=2000] [logins=500]
//!
//! Writes docs/bench/hostile.json. The baseline is the "no attack" phase of the same run.

use anyhow::Context;
use lanterne_scenarios::bench::{machine, now_iso};
use lanterne_scenarios::hostile::{self, Params, RSS_LIMIT_MB, SIGN_IN_LIMIT};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut params = Params::default();
    if let Some(n) = args.get(1) {
        params.half_requests = n.parse().context("half_requests")?;
    }
    if let Some(n) = args.get(2) {
        params.logins = n.parse().context("logins")?;
    }
    let outcome = hostile::run(&params).await?;
    let problems = outcome.problems();
    let phases = &outcome.phases;
    let all = |f: &dyn Fn(&hostile::Phase) -> bool| phases.iter().all(f);
    let report = serde_json::json!({
        "benchmark": "hostile",
        "date": now_iso(),
        "command": format!(
            "scripts/bench-hostile.sh {} {}",
            params.half_requests, params.logins
        ),
        "machine": machine(&outcome.box_codecs),
        "params": params,
        "results": {
            "box_nofile": outcome.box_nofile,
            "box_exited": outcome.box_exited,
            "box_accept_error_lines": outcome.box_accept_error_lines,
            "box_rss_mb_max": phases.iter().map(|p| p.box_rss_mb_max).fold(0.0, f64::max),
            "phases": phases,
            "problems": problems,
        },
        "targets": {
            "sign_in_ms_max": SIGN_IN_LIMIT.as_millis() as u64,
            "box_rss_mb_max": RSS_LIMIT_MB,
            "box_exits": 0,
        },
        "met": {
            "sign_in_under_2s": all(&|p| p.sign_ins > 0 && p.sign_in_failures.is_empty()),
            "mosaic_kept_streaming": all(&|p| p.mosaic_frames > 0
                && p.mosaic_max_gap_ms <= hostile::MOSAIC_GAP_LIMIT.as_secs_f64() * 1000.0),
            "rss_under_300_mb": all(&|p| p.box_rss_mb_max < RSS_LIMIT_MB),
            "box_never_exited": !outcome.box_exited && all(&|p| p.box_alive),
            "slow_clients_cut_by_timeouts": all(&|p| p
                .attacks
                .iter()
                .filter(|a| a.is_slow())
                .all(|a| a.cut_by_the_timeout())),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::create_dir_all("docs/bench")?;
    std::fs::write(
        "docs/bench/hostile.json",
        format!("{}\n", serde_json::to_string_pretty(&report)?),
    )?;
    Ok(())
}
