//! The audit log's one writer (P4: every access is recorded for the school's GDPR record).
//!
//! Every audit line of the box — web handlers, the room task, the station link — is written
//! here, so the rules about what a line may hold are kept in one place:
//!
//! - **Bounded fields.** Every field is cut to a fixed number of characters (with `…`), so a
//!   user name, a URL or a station's error text cannot grow the database without bound.
//! - **Rate limits for what outsiders cause.** A line caused by an unauthenticated request
//!   (a refused login, a bad enrolment code) or by a station (its answers to orders) goes
//!   through a token bucket per source (client address or station) and one shared bucket.
//!   Lines over the limit are not written; they are counted, and the next line admitted for
//!   that source says how many were left out, so the record stays truthful without letting
//!   one student PC fill the disk. Lines caused by a signed-in person are never dropped: an
//!   account's actions are exactly what the record is for, and they are already bounded by
//!   the session and login throttles.
//!
//! A write that fails is logged (the action has happened; the operator must see that its
//! record is missing).
//!
//! `INSERT INTO audit` appears in this file only; a test below keeps it that way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use crate::store::Store;

/// Longest field values kept, in characters.
pub const MAX_ACTOR: usize = 80;
const MAX_ACTION: usize = 48;
const MAX_TARGET: usize = 128;
const MAX_RESULT: usize = 32;
const MAX_DETAIL: usize = 512;

/// Per source: a burst of this many lines, then one line per `REFILL`.
pub const SOURCE_BURST: f64 = 20.0;
const SOURCE_REFILL: Duration = Duration::from_secs(3);
/// All outsiders together: a burst of this many, then one line per `GLOBAL_REFILL`.
const GLOBAL_BURST: f64 = 200.0;
const GLOBAL_REFILL: Duration = Duration::from_millis(100);
/// Sources remembered at most (the oldest idle one is forgotten first).
const MAX_SOURCES: usize = 4096;

/// One audit line.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Who: an account name, `station:NAME`, `panel-button`, `schedule`…
    pub actor: &'a str,
    pub action: &'a str,
    /// What was acted on: a station, an account, `room`, `-`.
    pub target: &'a str,
    /// `ok`, `refused`, `started`, `ended`, `failed`…
    pub result: &'a str,
    pub detail: &'a str,
}

/// Where a line comes from, for the rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A signed-in account: never rate-limited.
    Account,
    /// A request without a session, from this address.
    Anonymous(IpAddr),
    /// A station, by id.
    Station(u32),
}

/// Writes one line inside a transaction the caller holds (for changes that must be stored
/// together with their record, such as the room lock). Fields are bounded here too.
pub fn write(c: &Connection, now_us: i64, e: &Entry<'_>) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (at_us, actor, action, target, result, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            now_us,
            bounded(e.actor, MAX_ACTOR),
            bounded(e.action, MAX_ACTION),
            bounded(e.target, MAX_TARGET),
            bounded(e.result, MAX_RESULT),
            bounded(e.detail, MAX_DETAIL),
        ],
    )?;
    Ok(())
}

/// The audit writer shared by the web layer, the room and the station link.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    limits: Arc<Mutex<Limits>>,
}

impl AuditLog {
    pub fn new(store: Store) -> Self {
        AuditLog {
            store,
            limits: Arc::new(Mutex::new(Limits::new(Instant::now()))),
        }
    }

    /// Records a line from `source`; outsiders' lines may be left out (counted) when over
    /// their rate. Returns whether the line was written.
    pub async fn record(&self, source: Source, e: Entry<'_>) -> bool {
        let suppressed = match source {
            Source::Account => 0,
            other => {
                let mut l = self.limits.lock().unwrap_or_else(|p| p.into_inner());
                match l.admit(other, Instant::now()) {
                    Some(n) => n,
                    None => return false,
                }
            }
        };
        let detail = if suppressed > 0 {
            format!(
                "{} [{suppressed} similar line(s) from this source left out: rate limit]",
                bounded(e.detail, MAX_DETAIL - 64)
            )
        } else {
            e.detail.to_string()
        };
        let (actor, action, target, result) = (
            e.actor.to_string(),
            e.action.to_string(),
            e.target.to_string(),
            e.result.to_string(),
        );
        let now = lanterne_wire::now_us() as i64;
        let r = self
            .store
            .run(move |c| {
                write(
                    c,
                    now,
                    &Entry {
                        actor: &actor,
                        action: &action,
                        target: &target,
                        result: &result,
                        detail: &detail,
                    },
                )
            })
            .await;
        if let Err(err) = r {
            tracing::error!(action = e.action, "audit write failed: {err}");
            return false;
        }
        // The same line, bounded the same way, to the service's log (journald under systemd,
        // where it is selected with TARGET=lanterne_audit), so that a school collects the
        // record of all its rooms with the log forwarding it already runs.
        tracing::info!(
            target: "lanterne_audit",
            actor = %bounded(e.actor, MAX_ACTOR),
            action = %bounded(e.action, MAX_ACTION),
            audit_target = %bounded(e.target, MAX_TARGET),
            result = %bounded(e.result, MAX_RESULT),
            detail = %bounded(e.detail, MAX_DETAIL),
            suppressed,
            "audit"
        );
        true
    }

    /// A signed-in account's action (never rate-limited).
    pub async fn account(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        result: &str,
        detail: &str,
    ) {
        self.record(
            Source::Account,
            Entry {
                actor,
                action,
                target,
                result,
                detail,
            },
        )
        .await;
    }
}

/// Cuts `s` to `max` characters, marking the cut.
fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.chars().count() <= max {
        return s.into();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out.into()
}

/// Token buckets for outsiders' lines.
struct Limits {
    global: Bucket,
    sources: HashMap<Source, (Bucket, u64)>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn take(&mut self, burst: f64, refill: Duration, now: Instant) -> bool {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() / refill.as_secs_f64();
        self.tokens = (self.tokens + gained).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Limits {
    fn new(now: Instant) -> Self {
        Limits {
            global: Bucket::full(GLOBAL_BURST, now),
            sources: HashMap::new(),
        }
    }

    /// `Some(n)`: write the line, after `n` lines of this source were left out; `None`:
    /// leave it out.
    fn admit(&mut self, source: Source, now: Instant) -> Option<u64> {
        if !self.sources.contains_key(&source) && self.sources.len() >= MAX_SOURCES {
            // Forget the source idle the longest; its count of left-out lines goes with it,
            // which the global bucket bounds anyway.
            if let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, (b, _))| b.at)
                .map(|(k, _)| *k)
            {
                self.sources.remove(&oldest);
            }
        }
        let (bucket, dropped) = self
            .sources
            .entry(source)
            .or_insert_with(|| (Bucket::full(SOURCE_BURST, now), 0));
        if !bucket.take(SOURCE_BURST, SOURCE_REFILL, now)
            || !self.global.take(GLOBAL_BURST, GLOBAL_REFILL, now)
        {
            *dropped += 1;
            if *dropped == 1 || dropped.is_power_of_two() {
                tracing::warn!(
                    ?source,
                    left_out = *dropped,
                    "audit lines over the rate limit are left out"
                );
            }
            return None;
        }
        Some(std::mem::take(dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounded_with_a_visible_cut() {
        assert_eq!(bounded("short", 10), "short");
        let long = "é".repeat(600);
        let b = bounded(&long, MAX_DETAIL);
        assert_eq!(b.chars().count(), MAX_DETAIL);
        assert!(b.ends_with('…'));
    }

    #[test]
    fn an_outsider_gets_a_burst_then_one_line_per_refill_and_the_count_of_the_rest() {
        let t0 = Instant::now();
        let mut l = Limits::new(t0);
        let src = Source::Anonymous("10.0.0.7".parse().unwrap());
        for _ in 0..SOURCE_BURST as usize {
            assert_eq!(l.admit(src, t0), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(l.admit(src, t0), None);
        }
        // Another source is not held back by the first one.
        let other = Source::Station(3);
        assert_eq!(l.admit(other, t0), Some(0));
        // After one refill period the next line comes through and says what was left out.
        assert_eq!(l.admit(src, t0 + SOURCE_REFILL), Some(5));
        assert_eq!(l.admit(src, t0 + SOURCE_REFILL), None);
    }

    #[test]
    fn many_sources_together_are_held_by_the_global_bucket() {
        let t0 = Instant::now();
        let mut l = Limits::new(t0);
        let mut admitted = 0;
        for i in 0..1000u32 {
            let ip = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
            if l.admit(Source::Anonymous(ip), t0).is_some() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, GLOBAL_BURST as usize);
        assert!(l.sources.len() <= MAX_SOURCES);
    }

    #[tokio::test]
    async fn account_lines_are_never_dropped_and_outsider_lines_are_capped() {
        let dir = std::env::temp_dir().join(format!("lanterne-audit-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("box.sqlite")).unwrap();
        let log = AuditLog::new(store.clone());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for i in 0..100 {
            log.account("prof", "message", "room", "ok", &i.to_string())
                .await;
            log.record(
                Source::Anonymous(ip),
                Entry {
                    actor: &"x".repeat(1000),
                    action: "login",
                    target: "-",
                    result: "refused",
                    detail: "bad credentials",
                },
            )
            .await;
        }
        let rows = store
            .run(|c| crate::store::audit_rows(c, &crate::store::AuditFilter::default(), 10_000))
            .await
            .unwrap();
        assert_eq!(rows.iter().filter(|r| r.actor == "prof").count(), 100);
        let anon: Vec<_> = rows.iter().filter(|r| r.action == "login").collect();
        assert_eq!(anon.len(), SOURCE_BURST as usize, "the rest was left out");
        assert!(anon.iter().all(|r| r.actor.chars().count() == MAX_ACTOR));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The audit table has one writer: this module.
    #[test]
    fn no_other_module_inserts_audit_lines() {
        let src_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src_dir];
        let mut offenders = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "rs") && !p.ends_with("audit.rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    if text.to_ascii_uppercase().contains("INSERT INTO AUDIT") {
                        offenders.push(p.display().to_string());
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "audit lines written outside audit.rs: {offenders:?}"
        );
    }
}
