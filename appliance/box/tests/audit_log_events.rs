//! Each audit line written also goes to the service's log, under the target `lanterne_audit`,
//! bounded like the database's copy; lines left out by the rate limit go nowhere.
//!
//! A test binary of its own, with this one test and a global subscriber: `tracing` caches per
//! call site whether anyone listens, so a subscriber set for one thread while other tests of
//! the same process hit the same call site (as the unit tests of `audit.rs` do) can miss
//! events. Here nothing else runs.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use lanterne_box::audit::{AuditLog, Entry, Source, MAX_ACTOR, SOURCE_BURST};
use lanterne_box::store::Store;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_line_written_goes_to_the_log_too_and_only_those() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::new(Store::open(&dir.path().join("box.sqlite")).unwrap());
    let ip: IpAddr = "192.0.2.10".parse().unwrap();
    log.account("prof", "focus_view", "poste-03", "ok", "")
        .await;
    // A student's PC flooding the sign-in page: the rate limit keeps the first burst only.
    let long_name = "y".repeat(1000);
    for _ in 0..SOURCE_BURST as usize + 3 {
        log.record(
            Source::Anonymous(ip),
            Entry {
                actor: &long_name,
                action: "login",
                target: "192.0.2.10",
                result: "refused",
                detail: "bad credentials",
            },
        )
        .await;
    }

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("lanterne_audit"))
        .collect();
    assert_eq!(lines.len(), 1 + SOURCE_BURST as usize, "{text}");
    assert!(
        lines[0].contains("actor=prof")
            && lines[0].contains("action=focus_view")
            && lines[0].contains("audit_target=poste-03")
            && lines[0].contains("result=ok"),
        "{}",
        lines[0]
    );
    let cut = format!("actor={}…", "y".repeat(MAX_ACTOR - 1));
    assert!(lines[1].contains(&cut), "{}", lines[1]);
    assert!(!lines[1].contains(&"y".repeat(MAX_ACTOR + 1)));
}
