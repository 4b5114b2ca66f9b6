//! Retention (P4): how long each kind of personal data stays on the box, and the one task
//! that deletes what is older.
//!
//! [`purge`] is the one place that lists what is purged; the GDPR record states the same
//! periods (`document_config` in `lib.rs` reads the same `[privacy]` settings). What it
//! deletes, once at start and then every hour (so data is gone at most an hour after its
//! period):
//!
//! | data | kept | where |
//! |---|---|---|
//! | audit lines | `privacy.audit_retention_days` | `audit` |
//! | teachers' messages with each station's delivery and read receipt | `privacy.message_retention_days` | `messages`, `message_targets` |
//! | command runs with each station's exit code and output | `privacy.command_retention_days` | `command_runs`, `command_results` |
//! | answers to power and open-URL orders | `privacy.order_retention_days` | the room's memory |
//! | screenshots (row and PNG file) | `privacy.screenshot_retention_days`, also after they are turned off | `screenshots`, `<data dir>/screenshots` |
//! | web sessions | until they expire | `sessions` |
//! | enrolment codes | until they expire | `enrol_codes` |
//!
//! Accounts and stations are kept while they exist; deleting one is in `store.rs`
//! (`delete_account`, `delete_station`).

use std::time::Duration;

use tracing::{error, info};

use crate::room::RoomHandle;
use crate::screenshots;
use crate::store::{self, Store, StoreError};

const DAY_US: i64 = 86_400_000_000;
/// How often the task runs: retention periods are whole days, so an hour late at most.
const EVERY: Duration = Duration::from_secs(3600);

/// Every retention period, in days (from `[privacy]`), and where screenshots are kept.
#[derive(Debug, Clone)]
pub struct Retention {
    pub audit_days: u32,
    pub message_days: u32,
    pub command_days: u32,
    pub order_days: u32,
    /// Screenshot retention and directory.
    pub screenshots: screenshots::Settings,
}

impl Retention {
    pub fn new(privacy: &crate::config::Privacy, screenshots: screenshots::Settings) -> Self {
        Retention {
            audit_days: privacy.audit_retention_days,
            message_days: privacy.message_retention_days,
            command_days: privacy.command_retention_days,
            order_days: privacy.order_retention_days,
            screenshots,
        }
    }
}

/// What one pass deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    pub audit: usize,
    pub messages: usize,
    pub receipts: usize,
    pub command_runs: usize,
    pub command_results: usize,
    pub orders: usize,
    pub screenshots: usize,
    pub sessions: usize,
    pub enrol_codes: usize,
}

impl Purged {
    fn total(&self) -> usize {
        self.audit
            + self.messages
            + self.receipts
            + self.command_runs
            + self.command_results
            + self.orders
            + self.screenshots
            + self.sessions
            + self.enrol_codes
    }
}

/// Runs [`purge`] now and every hour after, until the box stops.
pub async fn run(store: Store, room: RoomHandle, retention: Retention) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let now = lanterne_wire::now_us() as i64;
        match purge(&store, Some(&room), &retention, now).await {
            Ok(p) if p.total() == 0 => {}
            Ok(p) => info!(
                audit = p.audit,
                messages = p.messages,
                receipts = p.receipts,
                command_runs = p.command_runs,
                command_results = p.command_results,
                orders = p.orders,
                screenshots = p.screenshots,
                sessions = p.sessions,
                enrol_codes = p.enrol_codes,
                "personal data past its retention deleted"
            ),
            Err(e) => error!("retention purge failed: {e}"),
        }
    }
}

/// Deletes everything past its retention at `now_us` (see the table at the top). The
/// room's orders are skipped when no room is given (tests of the database part).
pub async fn purge(
    store: &Store,
    room: Option<&RoomHandle>,
    r: &Retention,
    now_us: i64,
) -> Result<Purged, StoreError> {
    let before = |days: u32| now_us - i64::from(days) * DAY_US;
    let (audit, messages, commands) = (
        before(r.audit_days),
        before(r.message_days),
        before(r.command_days),
    );
    let mut p = store
        .run(move |c| {
            let mut p = Purged {
                audit: store::purge_audit(c, audit)?,
                sessions: store::purge_sessions(c, now_us)?,
                enrol_codes: store::purge_enrol_codes(c, now_us)?,
                ..Purged::default()
            };
            (p.messages, p.receipts) = store::purge_messages(c, messages)?;
            (p.command_runs, p.command_results) = store::purge_command_runs(c, commands)?;
            Ok(p)
        })
        .await?;
    p.screenshots = screenshots::purge(store, &r.screenshots, now_us).await?;
    if let Some(room) = room {
        p.orders = room.forget_orders(before(r.order_days).max(0) as u64).await;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, ScreenshotRow};

    /// One row of every table with a retention period, `age_days` old at `now`.
    fn seed(c: &rusqlite::Connection, now: i64, age_days: i64, tag: &str) -> rusqlite::Result<()> {
        let at = now - age_days * DAY_US;
        let station = store::insert_station(c, &format!("poste-{tag}"), "h", None, at)?;
        let account = store::insert_account(c, &format!("prof-{tag}"), Role::Teacher, "h", at)?;
        crate::audit::write(
            c,
            at,
            &crate::audit::Entry {
                actor: "prof",
                action: "login",
                target: "-",
                result: "ok",
                detail: tag,
            },
        )?;
        store::insert_message(c, "prof", tag, at, &[(station, true)])?;
        store::insert_command_run(c, "df", &[], "prof", at, &[(station, true)])?;
        // Sessions and enrolment codes live until they expire, 3 days after `at` here.
        store::insert_session(c, tag, account, at, 3 * DAY_US)?;
        store::insert_enrol_code(c, &format!("{tag}AAA-AAAA-AAAA"), at, 3 * DAY_US)?;
        Ok(())
    }

    fn counts(c: &rusqlite::Connection) -> Vec<(&'static str, i64)> {
        [
            "audit",
            "messages",
            "message_targets",
            "command_runs",
            "command_results",
            "sessions",
            "enrol_codes",
            "screenshots",
        ]
        .into_iter()
        .map(|t| {
            let n = c
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
    }

    /// Each table with a retention period, with rows on both sides of its limit: one pass
    /// deletes exactly the old ones, screenshot files included, and a second pass nothing.
    #[tokio::test]
    async fn one_pass_purges_every_table_past_its_own_period_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            audit_days: 100,
            message_days: 7,
            command_days: 30,
            order_days: 1,
            screenshots: screenshots::Settings {
                enabled: false,
                retention_days: 3,
                dir: dir.path().join("screenshots"),
            },
        };
        let store = Store::in_memory().unwrap();
        let now = 1_000 * DAY_US;
        // Ages straddling each limit: 2 (inside every period), 5 (past screenshots' 3),
        // 10 (past messages' 7), 40 (past commands' 30), 150 (past the audit's 100).
        for (age, tag) in [(2, "A"), (5, "B"), (10, "C"), (40, "D"), (150, "E")] {
            store.with(|c| seed(c, now, age, tag)).unwrap();
        }
        let mut files = Vec::new();
        for age in [2, 5] {
            let row = ScreenshotRow {
                id: 0,
                station_id: 1,
                station_name: "poste-A".into(),
                taken_by: "prof".into(),
                taken_at_us: now - age * DAY_US,
                width: 1,
                height: 1,
                bytes: 3,
            };
            let id = store.with(|c| store::insert_screenshot(c, &row)).unwrap();
            std::fs::create_dir_all(&retention.screenshots.dir).unwrap();
            std::fs::write(retention.screenshots.file(id), b"png").unwrap();
            files.push(retention.screenshots.file(id));
        }

        let p = purge(&store, None, &retention, now).await.unwrap();
        assert_eq!(
            p,
            Purged {
                audit: 1,    // E
                messages: 3, // C, D, E
                receipts: 3,
                command_runs: 2, // D, E
                command_results: 2,
                orders: 0,      // no room in this test (room.rs tests that part)
                screenshots: 1, // the 5-day-old one
                // Sessions and codes expire 3 days after creation: all but A's.
                sessions: 4,
                enrol_codes: 4,
            }
        );
        assert!(files[0].exists() && !files[1].exists());
        assert_eq!(
            store.with(|c| Ok(counts(c))).unwrap(),
            vec![
                ("audit", 4),
                ("messages", 2),
                ("message_targets", 2),
                ("command_runs", 3),
                ("command_results", 3),
                ("sessions", 1),
                ("enrol_codes", 1),
                ("screenshots", 1),
            ]
        );
        let kept: Vec<String> = store
            .with(|c| store::recent_messages(c, 10))
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(kept, ["B", "A"]);
        assert_eq!(
            purge(&store, None, &retention, now).await.unwrap(),
            Purged::default(),
            "a second pass finds nothing"
        );
    }
}
