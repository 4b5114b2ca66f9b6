//! P4: the audit trail survives the box being killed in the middle of writing (as a power cut
//! would): the database passes its integrity check on restart, and every access the box
//! acknowledged before dying is in the log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lanterne_scenarios::BoxProcess;

#[tokio::test]
async fn killing_the_box_mid_write_loses_no_acknowledged_audit_line() {
    let b = BoxProcess::start().await.unwrap();
    let password = b.ready.admin_password.clone().unwrap();
    let https = Arc::new(b.https().unwrap());
    let acknowledged = Arc::new(AtomicUsize::new(0));

    // Logins in a loop (each one writes a session and an audit line before it answers).
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (https, password, acknowledged) =
            (https.clone(), password.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for _ in 0..500 {
                match https.login("admin", &password).await {
                    Ok(_) => {
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return, // the box is gone
                }
            }
        }));
    }
    // Kill it while they run.
    while acknowledged.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dir = b.stop(); // SIGKILL: no shutdown, no checkpoint
    for w in writers {
        let _ = w.await;
    }
    let acked = acknowledged.load(Ordering::SeqCst);

    // Restart: the box opens the database only if its integrity check passes.
    let b = BoxProcess::start_in(dir)
        .await
        .expect("the box restarts on the same database");
    let https = b.https().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    let rows = https
        .request(
            "GET",
            "/api/audit?actor=admin&action=login&limit=100000",
            None,
            &[("cookie", &cookie)],
        )
        .await
        .unwrap()
        .json();
    let logged_ok = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "ok")
        .count();
    // +1: the login just made after the restart.
    assert!(
        logged_ok > acked,
        "{acked} logins were acknowledged before the kill but only {} are in the audit log",
        logged_ok - 1
    );
}
