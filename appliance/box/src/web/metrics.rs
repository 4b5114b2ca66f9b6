//! `GET /healthz` for whatever watches the box, and Prometheus metrics.
//!
//! `/healthz` is public and says nothing but "ok" (200) or "unavailable" (503, the room's
//! task is gone): no version, no counts, nothing a student could learn from.
//!
//! Metrics are off unless `[metrics] enabled = true`. Then `GET /metrics` answers programs on
//! the box itself (a loopback peer: a Prometheus agent, node-exporter's textfile collector fed
//! by a timer, or an SSH tunnel) without a sign-in, and `GET /api/metrics` answers an admin's
//! session from anywhere, through the authorization path like every API route. They hold
//! counts only: how many stations are enrolled, online and watched, the mosaic's frames and
//! drops, the demo relay's drops, failed sign-ins, and the process's CPU time and memory.
//! Never a name, an address or a screen.
//!
//! The text is written here rather than with a Prometheus client crate: a dozen values read
//! at scrape time, without labels (so nothing needs escaping), in the text format's three
//! lines each; a client's registry and metric types would add a dependency and nothing else.

use super::*;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the metrics routes need besides the room and the mosaic.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `[metrics] enabled`.
    pub enabled: bool,
    /// Sign-ins refused (bad password or code, locked out), counted since the box started.
    pub login_failures: AtomicU64,
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LocalAccess {
    /// Metrics are off: the route answers as if it did not exist.
    Off,
    Allowed,
    /// Not from the box itself: an admin uses `/api/metrics` with a session.
    NotLocal,
}

/// The rule of `GET /metrics`: on, and the peer is the box itself. An IPv4 peer reached on a
/// dual-stack socket arrives as `::ffff:127.0.0.1`, which is loopback too.
pub(super) fn local_access(enabled: bool, peer: IpAddr) -> LocalAccess {
    if !enabled {
        LocalAccess::Off
    } else if peer.to_canonical().is_loopback() {
        LocalAccess::Allowed
    } else {
        LocalAccess::NotLocal
    }
}

pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    let (status, body) = if state.room.is_running() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n")
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /metrics`: programs on the box itself, no session.
pub(super) async fn metrics_local(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match local_access(state.metrics.enabled, peer.ip()) {
        LocalAccess::Off => ApiError::NotFound("no such page".into()).into_response(),
        LocalAccess::NotLocal => ApiError::Forbidden(
            "/metrics answers programs on the box itself only; admins read /api/metrics".into(),
        )
        .into_response(),
        LocalAccess::Allowed => exposition(&state),
    }
}

/// `GET /api/metrics`: an admin's session (the route layer asked the policy already).
pub(super) async fn metrics_admin(State(state): State<AppState>) -> Response {
    if !state.metrics.enabled {
        return ApiError::NotFound(
            "metrics are off ([metrics] enabled in the configuration)".into(),
        )
        .into_response();
    }
    exposition(&state)
}

fn exposition(state: &AppState) -> Response {
    let mosaic = state.mosaic.stats();
    let process = ProcessStats::read();
    // Rendered under the room view's read borrow: no copy of the view, and nothing awaited.
    let room = state.room.view();
    let text = render(&Sample {
        view: &room.borrow(),
        mosaic: &mosaic,
        login_failures: state.metrics.login_failures.load(Ordering::Relaxed),
        process,
    });
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// Everything one scrape reports.
pub(super) struct Sample<'a> {
    pub view: &'a RoomView,
    pub mosaic: &'a lanterne_media::MosaicStats,
    pub login_failures: u64,
    pub process: ProcessStats,
}

/// The process's CPU time and resident memory, from `/proc/self` (None where unreadable).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
}

/// The unit of `/proc/<pid>/stat`'s times: USER_HZ, which Linux fixes at 100 for user space on
/// every architecture the box runs on (x86-64, arm64), whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    fn read() -> Self {
        ProcessStats {
            cpu_seconds: std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| cpu_seconds(&s)),
            resident_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| resident_bytes(&s)),
        }
    }
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself: fields are counted after the last ')'.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state (3), ppid … cmajflt (4–12), utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes (the kernel writes it in kB, whatever the page size).
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_ascii_whitespace();
    let kb: u64 = parts.next()?.parse().ok()?;
    (parts.next()? == "kB").then_some(kb * 1024)
}

/// The Prometheus text format (version 0.0.4) of one sample.
pub(super) fn render(s: &Sample) -> String {
    let tiles = &s.view.mosaic.tiles;
    let count = |f: fn(&crate::room::TileView) -> bool| tiles.iter().filter(|t| f(t)).count();
    let demo_dropped: u64 = s
        .view
        .demo
        .iter()
        .flat_map(|d| d.receivers.iter())
        .map(|r| r.relay.dropped)
        .sum();
    let mosaic_dropped: u64 = s.mosaic.tiles.iter().map(|t| t.dropped).sum();

    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    metric(
        "lanterne_stations",
        "gauge",
        "Stations enrolled in the room.",
        tiles.len().to_string(),
    );
    metric(
        "lanterne_stations_online",
        "gauge",
        "Stations connected to the box now.",
        count(|t| t.online).to_string(),
    );
    metric(
        "lanterne_stations_watched",
        "gauge",
        "Stations whose screen a person can see now.",
        count(|t| t.watched).to_string(),
    );
    metric(
        "lanterne_room_locked",
        "gauge",
        "1 while the whole room is locked.",
        u8::from(s.view.locked).to_string(),
    );
    metric(
        "lanterne_mosaic_frames_total",
        "counter",
        "Mosaic frames encoded and sent to tablets (its frame rate is the rate of this counter).",
        s.mosaic.frames_out.to_string(),
    );
    metric(
        "lanterne_mosaic_ticks_skipped_total",
        "counter",
        "Mosaic frames not made because the encoder was still busy.",
        s.mosaic.ticks_skipped.to_string(),
    );
    metric(
        "lanterne_mosaic_decode_errors_total",
        "counter",
        "Errors of the decoders of the stations' thumbnails.",
        s.mosaic.decode_errors.to_string(),
    );
    metric(
        "lanterne_mosaic_station_frames_dropped",
        "gauge",
        "Thumbnail frames the mosaic dropped (decoder behind), summed over the stations enrolled now.",
        mosaic_dropped.to_string(),
    );
    metric(
        "lanterne_demo_frames_dropped",
        "gauge",
        "Frames the running demo's relay could not hand to a station (0 without a demo).",
        demo_dropped.to_string(),
    );
    metric(
        "lanterne_login_failures_total",
        "counter",
        "Sign-ins refused (wrong password or code, locked out) since the box started.",
        s.login_failures.to_string(),
    );
    if let Some(cpu) = s.process.cpu_seconds {
        metric(
            "process_cpu_seconds_total",
            "counter",
            "CPU time of the box's process, user and system, in seconds.",
            format!("{cpu:.2}"),
        );
    }
    if let Some(rss) = s.process.resident_bytes {
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the box's process, in bytes.",
            rss.to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_peer_reads_metrics_and_only_when_they_are_on() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let other_loopback: IpAddr = "127.3.2.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let student: IpAddr = "192.168.1.23".parse().unwrap();
        let student_mapped: IpAddr = "::ffff:192.168.1.23".parse().unwrap();
        let unspecified: IpAddr = "0.0.0.0".parse().unwrap();
        for ip in [v4, other_loopback, v6, mapped] {
            assert_eq!(local_access(true, ip), LocalAccess::Allowed, "{ip}");
            assert_eq!(local_access(false, ip), LocalAccess::Off, "{ip}");
        }
        for ip in [student, student_mapped, unspecified] {
            assert_eq!(local_access(true, ip), LocalAccess::NotLocal, "{ip}");
            assert_eq!(local_access(false, ip), LocalAccess::Off, "{ip}");
        }
    }

    #[test]
    fn reads_cpu_time_after_a_command_name_with_spaces_and_parentheses() {
        // Fields as in proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt
        // cminflt majflt cmajflt utime stime ...
        let stat = "4242 (lan (box) x) S 1 4242 4242 0 -1 4194560 900 0 3 0 250 75 0 0 20 0 9 0";
        assert_eq!(cpu_seconds(stat), Some(3.25));
        assert_eq!(cpu_seconds("4242 (truncated) S 1 2"), None);
        assert_eq!(cpu_seconds("no parenthesis"), None);
        // Our own process: a number, and it only grows.
        let own = ProcessStats::read();
        assert!(own.cpu_seconds.is_some_and(|s| s >= 0.0));
        assert!(own.resident_bytes.is_some_and(|b| b > 1024 * 1024));
    }

    #[test]
    fn reads_resident_memory_in_kilobytes() {
        let status = "Name:\tlanterne-box\nVmPeak:\t  900 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n";
        assert_eq!(resident_bytes(status), Some(51200 * 1024));
        assert_eq!(resident_bytes("VmRSS:\t12 MB\n"), None);
        assert_eq!(resident_bytes("Name:\tx\n"), None);
    }
}
