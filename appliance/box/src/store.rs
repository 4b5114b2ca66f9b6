//! The box database (SQLite, WAL): enrolled stations, one-time enrolment codes, accounts,
//! web sessions and the append-only audit log.
//!
//! Personal data leaves it three ways, all here: the retention purges (`purge_*`, driven by
//! [`crate::retention`]), the deletion of an account ([`delete_account`]) and the deletion
//! of a station ([`delete_station`]). A deleted account or station keeps its audit lines
//! under a pseudonym (see [`account_pseudonym`]).
//!
//! One connection behind a mutex: every statement is short and the box does a handful per
//! second, so a single writer is simpler than a pool and SQLite serialises writers anyway.
//! Async code calls through [`Store::run`], which moves the work onto the blocking pool.
//! `synchronous=FULL` with WAL: a committed enrolment or audit line survives a power cut.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database task failed: {0}")]
    Join(String),
    #[error("the database is damaged ({0}); restore it from a backup")]
    Damaged(String),
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

/// Schema version this binary writes; migrations run in order up to it.
const SCHEMA: &[&str] = &[
    r#"
    CREATE TABLE stations (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        hostname TEXT NOT NULL,
        mac TEXT,
        cert_fingerprint TEXT NOT NULL UNIQUE,
        enrolled_at INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE enrol_codes (
        code_hash TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        station_id INTEGER REFERENCES stations(id)
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'teacher', 'technician')),
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_us INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        result TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    -- Append-only: the audit trail is evidence for the school's GDPR record.
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    "#,
    r#"
    -- Room state that must survive a box restart (e.g. the lock).
    CREATE TABLE room_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    r#"
    -- Teachers' messages to stations and who has read them.
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        sent_at_us INTEGER NOT NULL
    );
    CREATE TABLE message_targets (
        message_id INTEGER NOT NULL REFERENCES messages(id),
        station_id INTEGER NOT NULL REFERENCES stations(id),
        delivered INTEGER NOT NULL,
        read_at_us INTEGER,
        PRIMARY KEY (message_id, station_id)
    );
    "#,
    r#"
    -- Runs of approved commands and each station's result.
    CREATE TABLE command_runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        args TEXT NOT NULL,
        sender TEXT NOT NULL,
        started_at_us INTEGER NOT NULL
    );
    CREATE TABLE command_results (
        run_id INTEGER NOT NULL REFERENCES command_runs(id),
        station_id INTEGER NOT NULL REFERENCES stations(id),
        delivered INTEGER NOT NULL,
        finished_at_us INTEGER,
        exit_code INTEGER,
        stdout TEXT,
        stderr TEXT,
        error TEXT,
        PRIMARY KEY (run_id, station_id)
    );
    "#,
    r#"
    -- Two-factor login (TOTP, RFC 6238): the active secret, one being set up, and the last
    -- accepted time step (a code is accepted once).
    ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
    ALTER TABLE accounts ADD COLUMN totp_pending TEXT;
    ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER;
    "#,
    r#"
    -- One-time recovery codes for two-factor login, stored only as hashes; a used code keeps
    -- its row (with used_at_us) so the account page can say how many are left.
    CREATE TABLE recovery_codes (
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        code_hash TEXT NOT NULL,
        created_at_us INTEGER NOT NULL,
        used_at_us INTEGER,
        PRIMARY KEY (account_id, code_hash)
    );
    -- Screenshots (P4): off by default; the picture is a file in the data directory, this
    -- row says whose screen it was, who took it and when, so it can be listed and purged.
    CREATE TABLE screenshots (
        id INTEGER PRIMARY KEY,
        station_id INTEGER NOT NULL,
        station_name TEXT NOT NULL,
        taken_by TEXT NOT NULL,
        taken_at_us INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    );
    "#,
    r#"
    -- Idle timeout: when the session last made a request (or kept a live view open).
    ALTER TABLE sessions ADD COLUMN last_seen_us INTEGER NOT NULL DEFAULT 0;
    -- The first admin's generated password must be replaced at the first sign-in.
    ALTER TABLE accounts ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
    "#,
    r#"
    -- A deleted account or station keeps its audit lines under a pseudonym made from its id
    -- (account#12, station#7). SQLite gives the largest id again after that row is deleted,
    -- so ids in use once are recorded here and never given again: a pseudonym can never
    -- come to name someone else.
    CREATE TABLE retired_ids (
        kind TEXT NOT NULL CHECK (kind IN ('account', 'station')),
        id INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    );
    -- The audit log stays append-only but for one change: a deleted account's or station's
    -- name replaced by its pseudonym. When, what and how it went can never be rewritten,
    -- and a name can only be replaced by text that carries a pseudonym.
    DROP TRIGGER audit_no_update;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        WHEN NOT (new.id = old.id AND new.at_us = old.at_us AND new.action = old.action
            AND new.result = old.result
            AND (new.actor = old.actor OR new.actor GLOB 'account#[0-9]*'
                 OR new.actor GLOB 'station#[0-9]*')
            AND (new.target = old.target OR new.target GLOB '*account#[0-9]*'
                 OR new.target GLOB '*station#[0-9]*')
            AND (new.detail = old.detail OR new.detail GLOB '*account#[0-9]*'
                 OR new.detail GLOB '*station#[0-9]*'))
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    "#,
    r#"
    -- A station certificate renewed over the link but not used yet: both the current and the
    -- next certificate are accepted until the station connects with the next one, so a
    -- station that never stored its new certificate keeps working with the old one.
    ALTER TABLE stations ADD COLUMN next_cert_fingerprint TEXT;
    CREATE UNIQUE INDEX stations_next_cert ON stations(next_cert_fingerprint);
    "#,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationRow {
    pub id: u32,
    pub name: String,
    pub hostname: String,
    pub mac: Option<String>,
    pub cert_fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Teacher,
    Technician,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Teacher => "teacher",
            Role::Technician => "technician",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "teacher" => Some(Role::Teacher),
            "technician" => Some(Role::Technician),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
}

/// Outcome of redeeming an enrolment code.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeem {
    Ok,
    Unknown,
    Expired,
    AlreadyUsed,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    #[cfg(test)]
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // A damaged database (disk fault) must stop the box with a clear message rather than
        // lose audit lines quietly. The check reads every page; the database is small.
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Damaged(check));
        }
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, step) in SCHEMA.iter().enumerate().skip(version as usize) {
            conn.execute_batch(&format!(
                "BEGIN; {step}; PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))?;
        }
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Synchronous access, for start-up and the command line.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&guard)?)
    }
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

// ---- stations ----

/// The station a link certificate belongs to: its current certificate, or the next one
/// issued by a renewal, which from then on is the current one (the old certificate is no
/// longer accepted).
pub fn station_by_fingerprint(c: &Connection, fp: &str) -> rusqlite::Result<Option<StationRow>> {
    c.execute(
        "UPDATE stations SET cert_fingerprint = next_cert_fingerprint,
                             next_cert_fingerprint = NULL
         WHERE next_cert_fingerprint = ?1 AND revoked = 0",
        [fp],
    )?;
    c.query_row(
        "SELECT id, name, hostname, mac, cert_fingerprint FROM stations
         WHERE cert_fingerprint = ?1 AND revoked = 0",
        [fp],
        station_row,
    )
    .optional()
}

/// Records the certificate a renewal issued for station `id`, accepted beside the current one
/// until the station first connects with it. A later renewal replaces it.
pub fn set_next_certificate(c: &Connection, id: u32, fp: &str) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE stations SET next_cert_fingerprint = ?2 WHERE id = ?1 AND revoked = 0",
        params![id, fp],
    )? == 1)
}

pub fn stations(c: &Connection) -> rusqlite::Result<Vec<StationRow>> {
    let mut st = c.prepare(
        "SELECT id, name, hostname, mac, cert_fingerprint FROM stations
         WHERE revoked = 0 ORDER BY name, id",
    )?;
    let rows = st.query_map([], station_row)?;
    rows.collect()
}

fn station_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationRow> {
    Ok(StationRow {
        id: r.get(0)?,
        name: r.get(1)?,
        hostname: r.get(2)?,
        mac: r.get(3)?,
        cert_fingerprint: r.get(4)?,
    })
}

/// Words the audit log uses as targets of its own ("room", "self", "audit", "-") or in
/// "3 station(s)". A station is never named one of them, so that deleting it replaces its
/// name in audit lines (see [`delete_station`]) without touching lines about something else.
const RESERVED_STATION_NAMES: &[&str] = &["room", "self", "audit", "-", "station"];

/// A free station name based on `wanted`: `poste-03`, then `poste-03-2`, …
pub fn unique_station_name(c: &Connection, wanted: &str) -> rusqlite::Result<String> {
    let mut name = wanted.to_string();
    let mut n = 2;
    while RESERVED_STATION_NAMES.contains(&name.as_str())
        || c.query_row(
            "SELECT 1 FROM stations WHERE name = ?1",
            [&name],
            |_| Ok(()),
        )
        .optional()?
        .is_some()
    {
        name = format!("{wanted}-{n}");
        n += 1;
    }
    Ok(name)
}

/// Reserves a station row (id) before its certificate exists; the fingerprint is filled in
/// by [`finish_station`] in the same transaction.
pub fn insert_station(
    c: &Connection,
    name: &str,
    hostname: &str,
    mac: Option<&str>,
    now_us: i64,
) -> rusqlite::Result<u32> {
    c.execute(
        &format!(
            "INSERT INTO stations (id, name, hostname, mac, cert_fingerprint, enrolled_at)
             VALUES ({}, ?1, ?2, ?3, 'pending-' || hex(randomblob(16)), ?4)",
            next_id("stations", "station")
        ),
        params![name, hostname, mac, now_us],
    )?;
    Ok(c.last_insert_rowid() as u32)
}

/// The SQL for a new row's id: past every id the table has and every id it ever had
/// (`retired_ids`), so a deleted row's pseudonym stays unique.
fn next_id(table: &str, kind: &str) -> String {
    format!(
        "(SELECT max(coalesce((SELECT max(id) FROM {table}), 0),
                     coalesce((SELECT max(id) FROM retired_ids WHERE kind = '{kind}'), 0)) + 1)"
    )
}

pub fn finish_station(c: &Connection, id: u32, fingerprint: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE stations SET cert_fingerprint = ?1 WHERE id = ?2",
        params![fingerprint, id],
    )?;
    Ok(())
}

// ---- enrolment codes ----

pub fn insert_enrol_code(
    c: &Connection,
    code: &str,
    now_us: i64,
    ttl_us: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO enrol_codes (code_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
        params![sha256_hex(&normalise_code(code)), now_us, now_us + ttl_us],
    )?;
    Ok(())
}

/// Marks a code used if it is valid; callers run this inside the enrolment transaction.
pub fn redeem_enrol_code(
    c: &Connection,
    code: &str,
    now_us: i64,
    station_id: u32,
) -> rusqlite::Result<Redeem> {
    let hash = sha256_hex(&normalise_code(code));
    let row: Option<(i64, Option<i64>)> = c
        .query_row(
            "SELECT expires_at, used_at FROM enrol_codes WHERE code_hash = ?1",
            [&hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        None => Redeem::Unknown,
        Some((_, Some(_))) => Redeem::AlreadyUsed,
        Some((exp, None)) if exp < now_us => Redeem::Expired,
        Some(_) => {
            c.execute(
                "UPDATE enrol_codes SET used_at = ?1, station_id = ?2 WHERE code_hash = ?3",
                params![now_us, station_id, hash],
            )?;
            Redeem::Ok
        }
    })
}

/// Codes are typed by people: ignore case, spaces and dashes.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

// ---- accounts and sessions ----

pub fn account_count(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
}

pub fn insert_account(
    c: &Connection,
    username: &str,
    role: Role,
    password_hash: &str,
    now_us: i64,
) -> rusqlite::Result<i64> {
    c.execute(
        &format!(
            "INSERT INTO accounts (id, username, role, password_hash, created_at)
             VALUES ({}, ?1, ?2, ?3, ?4)",
            next_id("accounts", "account")
        ),
        params![username, role.as_str(), password_hash, now_us],
    )?;
    Ok(c.last_insert_rowid())
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let role: String = r.get(2)?;
    Ok(Account {
        id: r.get(0)?,
        username: r.get(1)?,
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown role {role}").into(),
            )
        })?,
        password_hash: r.get(3)?,
        disabled: r.get::<_, i64>(4)? != 0,
    })
}

/// Every account, for the admin page (no password hashes leave this function's callers).
pub fn accounts(c: &Connection) -> rusqlite::Result<Vec<Account>> {
    let mut st = c.prepare(
        "SELECT id, username, role, password_hash, disabled FROM accounts ORDER BY username",
    )?;
    let rows = st.query_map([], account_row)?;
    rows.collect()
}

/// Disables or enables an account. Disabling ends its sessions, so enabling it again does
/// not bring them back: its owner signs in anew.
pub fn set_account_disabled(
    c: &Connection,
    username: &str,
    disabled: bool,
) -> rusqlite::Result<bool> {
    let found = c.execute(
        "UPDATE accounts SET disabled = ?2 WHERE username = ?1",
        params![username, disabled as i64],
    )? == 1;
    if disabled {
        c.execute(
            "DELETE FROM sessions WHERE account_id = (SELECT id FROM accounts WHERE username = ?1)",
            [username],
        )?;
    }
    Ok(found)
}

/// Sets a new password hash and ends the account's sessions.
pub fn set_password(c: &Connection, username: &str, hash: &str) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE accounts SET password_hash = ?2 WHERE username = ?1",
        params![username, hash],
    )?;
    c.execute(
        "DELETE FROM sessions WHERE account_id = (SELECT id FROM accounts WHERE username = ?1)",
        [username],
    )?;
    Ok(n == 1)
}

pub fn account_by_name(c: &Connection, username: &str) -> rusqlite::Result<Option<Account>> {
    c.query_row(
        "SELECT id, username, role, password_hash, disabled FROM accounts WHERE username = ?1",
        [username],
        account_row,
    )
    .optional()
}

pub fn insert_session(
    c: &Connection,
    token: &str,
    account_id: i64,
    now_us: i64,
    ttl_us: i64,
) -> rusqlite::Result<()> {
    c.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_us])?;
    c.execute(
        "INSERT INTO sessions (token_hash, account_id, created_at, expires_at, last_seen_us)
         VALUES (?1, ?2, ?3, ?4, ?3)",
        params![sha256_hex(token), account_id, now_us, now_us + ttl_us],
    )?;
    Ok(())
}

/// A live session: whose it is and until when it lasts at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub account: Account,
    /// The token's hash (the token itself is never stored).
    pub token_hash: String,
    /// The absolute end of the session.
    pub expires_at_us: i64,
    /// The account must replace its password before anything else.
    pub must_change_password: bool,
}

/// How often `last_seen_us` is written at most (one write per session per this long).
const TOUCH_EVERY_US: i64 = 30_000_000;

/// The account behind a session token, if the session is live — not past its absolute end,
/// used within the last `idle_us`, the account enabled — and marks it used now.
pub fn session_account(
    c: &Connection,
    token: &str,
    now_us: i64,
    idle_us: i64,
) -> rusqlite::Result<Option<LiveSession>> {
    let hash = sha256_hex(token);
    let row = c
        .query_row(
            "SELECT a.id, a.username, a.role, a.password_hash, a.disabled, s.expires_at, s.last_seen_us,
                    a.must_change_password
             FROM sessions s JOIN accounts a ON a.id = s.account_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_us > ?3
               AND a.disabled = 0",
            params![hash, now_us, now_us - idle_us],
            |r| {
                Ok((
                    account_row(r)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)? != 0,
                ))
            },
        )
        .optional()?;
    let Some((account, expires_at_us, last_seen, must_change_password)) = row else {
        return Ok(None);
    };
    if now_us - last_seen >= TOUCH_EVERY_US {
        touch_session(c, &hash, now_us)?;
    }
    Ok(Some(LiveSession {
        account,
        token_hash: hash,
        expires_at_us,
        must_change_password,
    }))
}

/// Marks a session used now (a live view keeps its session from going idle).
pub fn touch_session(c: &Connection, token_hash: &str, now_us: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE sessions SET last_seen_us = MAX(last_seen_us, ?2) WHERE token_hash = ?1",
        params![token_hash, now_us],
    )?;
    Ok(())
}

pub fn delete_session(c: &Connection, token: &str) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        [sha256_hex(token)],
    )?;
    Ok(())
}

/// Ends one session, by the hash of its token.
pub fn delete_session_by_hash(c: &Connection, token_hash: &str) -> rusqlite::Result<()> {
    c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

/// Whether the session with this token hash is still there, unexpired, for an enabled
/// account.
pub fn session_alive(c: &Connection, token_hash: &str, now_us: i64) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT COUNT(*) FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND a.disabled = 0",
        params![token_hash, now_us],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )
}

/// Ends every session of an account (password change, second factor replaced).
pub fn delete_account_sessions(c: &Connection, account_id: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM sessions WHERE account_id = ?1", [account_id])
}

/// Whether the account must replace its password before anything else.
pub fn must_change_password(c: &Connection, account_id: i64) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT must_change_password FROM accounts WHERE id = ?1",
        [account_id],
        |r| r.get::<_, i64>(0).map(|v| v != 0),
    )
}

pub fn set_must_change_password(
    c: &Connection,
    account_id: i64,
    must: bool,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE accounts SET must_change_password = ?2 WHERE id = ?1",
        params![account_id, must as i64],
    )?;
    Ok(())
}

// ---- room state ----

pub fn room_state(c: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row("SELECT value FROM room_state WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
}

pub fn set_room_state(c: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO room_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

// ---- messages ----

/// A message with its per-station delivery and read state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageRow {
    pub id: u64,
    pub text: String,
    pub from: String,
    pub sent_at_us: i64,
    pub targets: Vec<MessageTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageTarget {
    pub station_id: u32,
    pub name: String,
    /// The station was online and got the message.
    pub delivered: bool,
    pub read: bool,
}

/// Records a message and, per target station, whether it was delivered.
pub fn insert_message(
    c: &Connection,
    sender: &str,
    text: &str,
    now_us: i64,
    targets: &[(u32, bool)],
) -> rusqlite::Result<u64> {
    let tx = c.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO messages (sender, text, sent_at_us) VALUES (?1, ?2, ?3)",
        params![sender, text, now_us],
    )?;
    let id = tx.last_insert_rowid();
    for (station, delivered) in targets {
        tx.execute(
            "INSERT INTO message_targets (message_id, station_id, delivered) VALUES (?1, ?2, ?3)",
            params![id, station, *delivered as i64],
        )?;
    }
    tx.commit()?;
    Ok(id as u64)
}

/// Marks a message read by a station. False when that station was never sent it (a station
/// cannot mark other stations' messages).
pub fn mark_message_read(
    c: &Connection,
    message_id: u64,
    station_id: u32,
    now_us: i64,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE message_targets SET read_at_us = coalesce(read_at_us, ?3)
         WHERE message_id = ?1 AND station_id = ?2 AND delivered = 1",
        params![message_id as i64, station_id, now_us],
    )?;
    Ok(n == 1)
}

/// The most recent messages, newest first.
pub fn recent_messages(c: &Connection, limit: u32) -> rusqlite::Result<Vec<MessageRow>> {
    let mut st =
        c.prepare("SELECT id, text, sender, sent_at_us FROM messages ORDER BY id DESC LIMIT ?1")?;
    let mut rows: Vec<MessageRow> = st
        .query_map([limit], |r| {
            Ok(MessageRow {
                id: r.get::<_, i64>(0)? as u64,
                text: r.get(1)?,
                from: r.get(2)?,
                sent_at_us: r.get(3)?,
                targets: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut t = c.prepare(
        "SELECT t.station_id, s.name, t.delivered, t.read_at_us IS NOT NULL
         FROM message_targets t JOIN stations s ON s.id = t.station_id
         WHERE t.message_id = ?1 ORDER BY s.name",
    )?;
    for row in &mut rows {
        row.targets = t
            .query_map([row.id as i64], |r| {
                Ok(MessageTarget {
                    station_id: r.get(0)?,
                    name: r.get(1)?,
                    delivered: r.get::<_, i64>(2)? != 0,
                    read: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(rows)
}

// ---- command runs ----

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandRun {
    pub id: u64,
    pub name: String,
    pub args: Vec<String>,
    pub from: String,
    pub started_at_us: i64,
    pub results: Vec<CommandResultRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandResultRow {
    pub station_id: u32,
    pub name: String,
    pub delivered: bool,
    pub done: bool,
    pub exit_code: Option<i32>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub error: Option<String>,
}

pub fn insert_command_run(
    c: &Connection,
    name: &str,
    args: &[String],
    sender: &str,
    now_us: i64,
    targets: &[(u32, bool)],
) -> rusqlite::Result<u64> {
    let tx = c.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO command_runs (name, args, sender, started_at_us) VALUES (?1, ?2, ?3, ?4)",
        params![
            name,
            serde_json::to_string(args).expect("strings serialise"),
            sender,
            now_us
        ],
    )?;
    let id = tx.last_insert_rowid();
    for (station, delivered) in targets {
        tx.execute(
            "INSERT INTO command_results (run_id, station_id, delivered) VALUES (?1, ?2, ?3)",
            params![id, station, *delivered as i64],
        )?;
    }
    tx.commit()?;
    Ok(id as u64)
}

/// A station's result for a run it was sent; false when it was not sent that run or already
/// answered (a station cannot fill in another's result or rewrite its own).
pub struct CommandOutcome<'a> {
    pub exit_code: Option<i32>,
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub error: Option<&'a str>,
}

pub fn finish_command(
    c: &Connection,
    run_id: u64,
    station_id: u32,
    now_us: i64,
    o: &CommandOutcome<'_>,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE command_results SET finished_at_us = ?3, exit_code = ?4, stdout = ?5, stderr = ?6, error = ?7
         WHERE run_id = ?1 AND station_id = ?2 AND delivered = 1 AND finished_at_us IS NULL",
        params![run_id as i64, station_id, now_us, o.exit_code, o.stdout, o.stderr, o.error],
    )?;
    Ok(n == 1)
}

pub fn command_run(c: &Connection, id: u64) -> rusqlite::Result<Option<CommandRun>> {
    let run = c
        .query_row(
            "SELECT id, name, args, sender, started_at_us FROM command_runs WHERE id = ?1",
            [id as i64],
            |r| {
                let args: String = r.get(2)?;
                Ok(CommandRun {
                    id: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    args: serde_json::from_str(&args).unwrap_or_default(),
                    from: r.get(3)?,
                    started_at_us: r.get(4)?,
                    results: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut run) = run else { return Ok(None) };
    let mut st = c.prepare(
        "SELECT r.station_id, s.name, r.delivered, r.finished_at_us IS NOT NULL, r.exit_code,
                r.stdout, r.stderr, r.error
         FROM command_results r JOIN stations s ON s.id = r.station_id
         WHERE r.run_id = ?1 ORDER BY s.name",
    )?;
    run.results = st
        .query_map([id as i64], |r| {
            Ok(CommandResultRow {
                station_id: r.get(0)?,
                name: r.get(1)?,
                delivered: r.get::<_, i64>(2)? != 0,
                done: r.get(3)?,
                exit_code: r.get(4)?,
                stdout: r.get(5)?,
                stderr: r.get(6)?,
                error: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(run))
}

// ---- two-factor ----

/// An account's TOTP state: (active secret, pending secret, last accepted step).
pub fn totp_state(
    c: &Connection,
    account_id: i64,
) -> rusqlite::Result<(Option<String>, Option<String>, Option<u64>)> {
    c.query_row(
        "SELECT totp_secret, totp_pending, totp_last_step FROM accounts WHERE id = ?1",
        [account_id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
            ))
        },
    )
}

pub fn set_totp_pending(c: &Connection, account_id: i64, secret: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE accounts SET totp_pending = ?2 WHERE id = ?1",
        params![account_id, secret],
    )?;
    Ok(())
}

/// Makes the pending secret the active one (after the user proved they have it).
pub fn activate_totp(c: &Connection, account_id: i64, step: u64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE accounts SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?2
         WHERE id = ?1 AND totp_pending IS NOT NULL",
        params![account_id, step as i64],
    )?;
    Ok(())
}

/// Turns two-factor login off for an account (an admin's reset after a lost phone): the
/// secret, a pending setup, the recovery codes and the account's sessions go. True when the
/// account exists.
pub fn reset_two_factor(c: &Connection, username: &str) -> rusqlite::Result<bool> {
    let tx = c.unchecked_transaction()?;
    let Some(id) = tx
        .query_row(
            "SELECT id FROM accounts WHERE username = ?1",
            [username],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
    else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE accounts SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL
         WHERE id = ?1",
        [id],
    )?;
    tx.execute("DELETE FROM recovery_codes WHERE account_id = ?1", [id])?;
    tx.execute("DELETE FROM sessions WHERE account_id = ?1", [id])?;
    tx.commit()?;
    Ok(true)
}

/// Records `step` as the last accepted one unless an equal or later step already was; true
/// when it was recorded (the code is fresh). One statement, so concurrent logins with the
/// same code cannot both succeed.
pub fn advance_totp_step(c: &Connection, account_id: i64, step: u64) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE accounts SET totp_last_step = ?2
         WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
        params![account_id, step as i64],
    )? == 1)
}

// ---- recovery codes ----

/// Replaces every recovery code of an account with new ones (given as hashes).
pub fn replace_recovery_codes(
    c: &Connection,
    account_id: i64,
    hashes: &[String],
    now_us: i64,
) -> rusqlite::Result<()> {
    let tx = c.unchecked_transaction()?;
    tx.execute(
        "DELETE FROM recovery_codes WHERE account_id = ?1",
        [account_id],
    )?;
    for h in hashes {
        tx.execute(
            "INSERT INTO recovery_codes (account_id, code_hash, created_at_us) VALUES (?1, ?2, ?3)",
            params![account_id, h, now_us],
        )?;
    }
    tx.commit()
}

/// Spends one recovery code: true when it existed and was still unused. The update is a
/// single statement, so two logins racing with the same code cannot both win.
pub fn use_recovery_code(
    c: &Connection,
    account_id: i64,
    hash: &str,
    now_us: i64,
) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE recovery_codes SET used_at_us = ?3
         WHERE account_id = ?1 AND code_hash = ?2 AND used_at_us IS NULL",
        params![account_id, hash, now_us],
    )? == 1)
}

/// An account's recovery codes as (hash, already used).
pub fn recovery_codes(c: &Connection, account_id: i64) -> rusqlite::Result<Vec<(String, bool)>> {
    let mut st = c.prepare(
        "SELECT code_hash, used_at_us IS NOT NULL FROM recovery_codes WHERE account_id = ?1",
    )?;
    let rows = st.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// How many unused recovery codes an account has.
pub fn recovery_codes_left(c: &Connection, account_id: i64) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT count(*) FROM recovery_codes WHERE account_id = ?1 AND used_at_us IS NULL",
        [account_id],
        |r| r.get(0),
    )
}

// ---- screenshots ----

/// One stored screenshot (the PNG itself is a file named after `id`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScreenshotRow {
    pub id: i64,
    pub station_id: u32,
    pub station_name: String,
    pub taken_by: String,
    pub taken_at_us: i64,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

pub fn insert_screenshot(c: &Connection, r: &ScreenshotRow) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO screenshots (station_id, station_name, taken_by, taken_at_us, width, height, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            r.station_id,
            r.station_name,
            r.taken_by,
            r.taken_at_us,
            r.width,
            r.height,
            r.bytes as i64
        ],
    )?;
    Ok(c.last_insert_rowid())
}

fn screenshot_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScreenshotRow> {
    Ok(ScreenshotRow {
        id: r.get(0)?,
        station_id: r.get(1)?,
        station_name: r.get(2)?,
        taken_by: r.get(3)?,
        taken_at_us: r.get(4)?,
        width: r.get(5)?,
        height: r.get(6)?,
        bytes: r.get::<_, i64>(7)? as u64,
    })
}

const SCREENSHOT_COLUMNS: &str =
    "id, station_id, station_name, taken_by, taken_at_us, width, height, bytes";

/// Screenshots, newest first.
pub fn screenshots(c: &Connection) -> rusqlite::Result<Vec<ScreenshotRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {SCREENSHOT_COLUMNS} FROM screenshots ORDER BY id DESC"
    ))?;
    let rows = st.query_map([], screenshot_row)?;
    rows.collect()
}

pub fn screenshot(c: &Connection, id: i64) -> rusqlite::Result<Option<ScreenshotRow>> {
    c.query_row(
        &format!("SELECT {SCREENSHOT_COLUMNS} FROM screenshots WHERE id = ?1"),
        [id],
        screenshot_row,
    )
    .optional()
}

/// Forgets screenshots taken before `before_us`; returns their ids so the caller deletes
/// the files.
pub fn purge_screenshots(c: &Connection, before_us: i64) -> rusqlite::Result<Vec<i64>> {
    let ids: Vec<i64> = {
        let mut st = c.prepare("SELECT id FROM screenshots WHERE taken_at_us < ?1")?;
        let rows = st.query_map([before_us], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    c.execute(
        "DELETE FROM screenshots WHERE taken_at_us < ?1",
        [before_us],
    )?;
    Ok(ids)
}

// ---- lifecycle: revocation, deletion, retention ----

/// A station as the admin page lists it, revoked ones included.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StationAdminRow {
    pub id: u32,
    pub name: String,
    pub hostname: String,
    pub mac: Option<String>,
    pub enrolled_at_us: i64,
    /// Its certificate is refused; the row stays until an admin deletes it.
    pub revoked: bool,
}

fn station_admin_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationAdminRow> {
    Ok(StationAdminRow {
        id: r.get(0)?,
        name: r.get(1)?,
        hostname: r.get(2)?,
        mac: r.get(3)?,
        enrolled_at_us: r.get(4)?,
        revoked: r.get::<_, i64>(5)? != 0,
    })
}

/// Every station, revoked ones included, by name.
pub fn all_stations(c: &Connection) -> rusqlite::Result<Vec<StationAdminRow>> {
    let mut st = c.prepare(
        "SELECT id, name, hostname, mac, enrolled_at, revoked FROM stations ORDER BY name, id",
    )?;
    let rows = st.query_map([], station_admin_row)?;
    rows.collect()
}

/// Marks a station revoked: from now on its certificate is refused at link start (see
/// [`station_by_fingerprint`]). None when there is no such station; the row's `revoked`
/// is what it was before, so a second revocation can be told apart.
pub fn revoke_station(c: &Connection, id: u32) -> rusqlite::Result<Option<StationAdminRow>> {
    let before = c
        .query_row(
            "SELECT id, name, hostname, mac, enrolled_at, revoked FROM stations WHERE id = ?1",
            [id],
            station_admin_row,
        )
        .optional()?;
    if before.as_ref().is_some_and(|r| !r.revoked) {
        c.execute("UPDATE stations SET revoked = 1 WHERE id = ?1", [id])?;
    }
    Ok(before)
}

/// The name a deleted account keeps in the audit log and in the records it sent.
///
/// Why the id and not a keyed hash of the name: a keyed hash can be recomputed by anyone
/// who holds the key and guesses the name, and the box would have to keep the key next to
/// the data; `account#12` is tied to the person by nothing left on the box once the row is
/// gone, yet still shows which lines were the same account. Ids are never given twice
/// (`retired_ids`), so the pseudonym cannot come to name someone else.
pub fn account_pseudonym(id: i64) -> String {
    format!("account#{id}")
}

/// The name a deleted station keeps in the audit log (see [`account_pseudonym`]).
pub fn station_pseudonym(id: u32) -> String {
    format!("station#{id}")
}

/// What deleting an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedAccount {
    pub id: i64,
    pub pseudonym: String,
}

/// Deletes an account: its row, sessions and recovery codes go; its audit lines (as actor
/// or target), the messages and command runs it sent and the screenshots it took keep its
/// pseudonym instead of its name. One transaction: a crash leaves the account whole or gone.
/// None when there is no such account.
pub fn delete_account(c: &Connection, username: &str) -> rusqlite::Result<Option<DeletedAccount>> {
    let tx = c.unchecked_transaction()?;
    let Some(id) = tx
        .query_row(
            "SELECT id FROM accounts WHERE username = ?1",
            [username],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
    else {
        return Ok(None);
    };
    let p = account_pseudonym(id);
    for sql in [
        "UPDATE audit SET actor = ?2 WHERE actor = ?1",
        "UPDATE audit SET target = ?2 WHERE target = ?1",
        "UPDATE messages SET sender = ?2 WHERE sender = ?1",
        "UPDATE command_runs SET sender = ?2 WHERE sender = ?1",
        "UPDATE screenshots SET taken_by = ?2 WHERE taken_by = ?1",
    ] {
        tx.execute(sql, params![username, p])?;
    }
    tx.execute("DELETE FROM sessions WHERE account_id = ?1", [id])?;
    tx.execute("DELETE FROM recovery_codes WHERE account_id = ?1", [id])?;
    tx.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
    tx.execute(
        "INSERT OR IGNORE INTO retired_ids (kind, id) VALUES ('account', ?1)",
        [id],
    )?;
    tx.commit()?;
    Ok(Some(DeletedAccount { id, pseudonym: p }))
}

/// What deleting a station did; the caller deletes the screenshot files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedStation {
    pub id: u32,
    pub name: String,
    pub pseudonym: String,
    pub screenshot_ids: Vec<i64>,
}

/// Deletes a station and everything about it: its row (name, host name, MAC address,
/// certificate fingerprint), its message receipts and command output, its screenshots, the
/// enrolment code it used; messages and command runs sent to it alone. Messages and runs
/// that other stations got too keep their text without this station's part. Its audit
/// lines keep its pseudonym instead of its name. One transaction. None when there is no
/// such station.
pub fn delete_station(c: &Connection, id: u32) -> rusqlite::Result<Option<DeletedStation>> {
    let tx = c.unchecked_transaction()?;
    let Some(name) = tx
        .query_row("SELECT name FROM stations WHERE id = ?1", [id], |r| {
            r.get::<_, String>(0)
        })
        .optional()?
    else {
        return Ok(None);
    };
    let p = station_pseudonym(id);
    pseudonymise_station_audit(&tx, &name, &p)?;
    let ids = |sql: &str| -> rusqlite::Result<Vec<i64>> {
        let mut st = tx.prepare(sql)?;
        let rows = st.query_map([id], |r| r.get(0))?;
        rows.collect()
    };
    let messages = ids("SELECT message_id FROM message_targets WHERE station_id = ?1")?;
    let runs = ids("SELECT run_id FROM command_results WHERE station_id = ?1")?;
    let screenshot_ids = ids("SELECT id FROM screenshots WHERE station_id = ?1")?;
    tx.execute("DELETE FROM message_targets WHERE station_id = ?1", [id])?;
    tx.execute("DELETE FROM command_results WHERE station_id = ?1", [id])?;
    for m in messages {
        tx.execute(
            "DELETE FROM messages WHERE id = ?1
             AND NOT EXISTS (SELECT 1 FROM message_targets WHERE message_id = ?1)",
            [m],
        )?;
    }
    for r in runs {
        tx.execute(
            "DELETE FROM command_runs WHERE id = ?1
             AND NOT EXISTS (SELECT 1 FROM command_results WHERE run_id = ?1)",
            [r],
        )?;
    }
    tx.execute("DELETE FROM screenshots WHERE station_id = ?1", [id])?;
    tx.execute("DELETE FROM enrol_codes WHERE station_id = ?1", [id])?;
    tx.execute("DELETE FROM stations WHERE id = ?1", [id])?;
    tx.execute(
        "INSERT OR IGNORE INTO retired_ids (kind, id) VALUES ('station', ?1)",
        [id],
    )?;
    tx.commit()?;
    Ok(Some(DeletedStation {
        id,
        name,
        pseudonym: p,
        screenshot_ids,
    }))
}

/// Replaces a deleted station's name in the audit log: as an actor (`station:NAME`, and
/// the enrolling address of its own enrolment line), in targets (one station or a list),
/// and in the one detail that lists stations (a demo's targets).
fn pseudonymise_station_audit(c: &Connection, name: &str, p: &str) -> rusqlite::Result<()> {
    let actor = format!("station:{name}");
    let rows: Vec<(i64, String, String, String, String)> = {
        let mut st = c.prepare(
            "SELECT id, actor, action, target, detail FROM audit
             WHERE actor = ?1 OR instr(target, ?2) > 0
                OR (action = 'demo-start' AND instr(detail, ?2) > 0)",
        )?;
        let rows = st.query_map(params![actor, name], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, old_actor, action, target, detail) in rows {
        let new_actor = if old_actor == actor || (action == "enrol" && target == name) {
            p.to_string()
        } else {
            old_actor.clone()
        };
        let new_target = replace_name(&target, name, p);
        let new_detail = if action == "demo-start" {
            replace_name(&detail, name, p)
        } else {
            detail.clone()
        };
        if new_actor != old_actor || new_target != target || new_detail != detail {
            c.execute(
                "UPDATE audit SET actor = ?2, target = ?3, detail = ?4 WHERE id = ?1",
                params![id, new_actor, new_target, new_detail],
            )?;
        }
    }
    Ok(())
}

/// `text` with every whole occurrence of the station name `name` replaced by `with`. An
/// occurrence counts only where no name character (letter, digit, '-') touches it, so
/// deleting `poste-1` leaves `poste-10` and `poste-1-2` alone.
fn replace_name(text: &str, name: &str, with: &str) -> String {
    let name_char = |c: char| c.is_alphanumeric() || c == '-';
    if name.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(pos) = text[i..].find(name).map(|p| p + i) {
        let before = text[..pos].chars().next_back();
        let after = text[pos + name.len()..].chars().next();
        out.push_str(&text[i..pos]);
        if before.is_some_and(name_char) || after.is_some_and(name_char) {
            // Not a whole name: keep one character and look again after it.
            let ch = text[pos..].chars().next().expect("a match is not empty");
            out.push(ch);
            i = pos + ch.len_utf8();
        } else {
            out.push_str(with);
            i = pos + name.len();
        }
    }
    out.push_str(&text[i..]);
    out
}

/// Forgets messages sent before `before_us` with their per-station delivery and read
/// receipts; returns (messages, receipts) deleted.
pub fn purge_messages(c: &Connection, before_us: i64) -> rusqlite::Result<(usize, usize)> {
    let tx = c.unchecked_transaction()?;
    let receipts = tx.execute(
        "DELETE FROM message_targets
         WHERE message_id IN (SELECT id FROM messages WHERE sent_at_us < ?1)",
        [before_us],
    )?;
    let messages = tx.execute("DELETE FROM messages WHERE sent_at_us < ?1", [before_us])?;
    tx.commit()?;
    Ok((messages, receipts))
}

/// Forgets command runs started before `before_us` with each station's result and output;
/// returns (runs, results) deleted.
pub fn purge_command_runs(c: &Connection, before_us: i64) -> rusqlite::Result<(usize, usize)> {
    let tx = c.unchecked_transaction()?;
    let results = tx.execute(
        "DELETE FROM command_results
         WHERE run_id IN (SELECT id FROM command_runs WHERE started_at_us < ?1)",
        [before_us],
    )?;
    let runs = tx.execute(
        "DELETE FROM command_runs WHERE started_at_us < ?1",
        [before_us],
    )?;
    tx.commit()?;
    Ok((runs, results))
}

/// Deletes sessions that have expired by `now_us` (they no longer let anyone in, but say
/// when someone signed in).
pub fn purge_sessions(c: &Connection, now_us: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now_us])
}

/// Deletes enrolment codes past their expiry, used or not.
pub fn purge_enrol_codes(c: &Connection, now_us: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM enrol_codes WHERE expires_at < ?1", [now_us])
}

// ---- audit ----

/// Deletes audit entries older than `before_us` (the retention period); returns how many.
pub fn purge_audit(c: &Connection, before_us: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM audit WHERE at_us < ?1", [before_us])
}

/// One audit line as exported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: String,
}

/// Which audit lines to return; every field narrows the selection when set.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// The station (or other target) acted on.
    pub target: Option<String>,
    /// Unix-epoch microseconds, inclusive.
    pub since_us: Option<i64>,
    /// Unix-epoch microseconds, exclusive.
    pub until_us: Option<i64>,
}

/// Audit lines, newest first, filtered, at most `limit`.
pub fn audit_rows(c: &Connection, f: &AuditFilter, limit: u32) -> rusqlite::Result<Vec<AuditRow>> {
    let mut st = c.prepare(
        "SELECT id, at_us, actor, action, target, result, detail FROM audit
         WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)
           AND (?3 IS NULL OR target = ?3)
           AND (?4 IS NULL OR at_us >= ?4) AND (?5 IS NULL OR at_us < ?5)
         ORDER BY id DESC LIMIT ?6",
    )?;
    let rows = st.query_map(
        params![f.actor, f.action, f.target, f.since_us, f.until_us, limit],
        |r| {
            Ok(AuditRow {
                id: r.get(0)?,
                at_us: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                result: r.get(5)?,
                detail: r.get(6)?,
            })
        },
    )?;
    rows.collect()
}

pub fn audit_count(c: &Connection, action: &str) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT count(*) FROM audit WHERE action = ?1",
        [action],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrol_code_is_single_use_and_expires() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            insert_enrol_code(c, "ABCD-EFGH-JKLM", 1_000, 500)?;
            insert_enrol_code(c, "ZZZZ-ZZZZ-ZZZZ", 1_000, 500)?;
            let id = insert_station(c, "poste-01", "pc1", None, 1_000)?;
            assert_eq!(redeem_enrol_code(c, "nope", 1_100, id)?, Redeem::Unknown);
            assert_eq!(
                redeem_enrol_code(c, "abcd efgh jklm", 1_100, id)?,
                Redeem::Ok
            );
            assert_eq!(
                redeem_enrol_code(c, "ABCDEFGHJKLM", 1_200, id)?,
                Redeem::AlreadyUsed
            );
            assert_eq!(
                redeem_enrol_code(c, "ZZZZ-ZZZZ-ZZZZ", 2_000, id)?,
                Redeem::Expired
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_renewed_certificate_replaces_the_old_one_at_its_first_use() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_station(c, "poste-01", "pc1", None, 0)?;
            finish_station(c, id, "old")?;
            assert!(set_next_certificate(c, id, "lost")?);
            // A later renewal replaces a certificate the station never used.
            assert!(set_next_certificate(c, id, "new")?);
            assert_eq!(station_by_fingerprint(c, "lost")?, None);
            // Until the new one is used, the old one still works.
            let row = station_by_fingerprint(c, "old")?.unwrap();
            assert_eq!((row.id, row.cert_fingerprint.as_str()), (id, "old"));
            let row = station_by_fingerprint(c, "new")?.unwrap();
            assert_eq!((row.id, row.cert_fingerprint.as_str()), (id, "new"));
            assert_eq!(station_by_fingerprint(c, "old")?, None);
            assert_eq!(station_by_fingerprint(c, "new")?.unwrap().id, id);
            // A revoked station's next certificate is worth nothing either.
            assert!(set_next_certificate(c, id, "next")?);
            c.execute("UPDATE stations SET revoked = 1 WHERE id = ?1", [id])?;
            assert_eq!(station_by_fingerprint(c, "next")?, None);
            assert!(!set_next_certificate(c, id, "other")?);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn audit_rows_cannot_be_rewritten() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            crate::audit::write(
                c,
                1,
                &crate::audit::Entry {
                    actor: "admin",
                    action: "login",
                    target: "-",
                    result: "ok",
                    detail: "",
                },
            )
        })
        .unwrap();
        let err = s
            .with(|c| c.execute("UPDATE audit SET result = 'forged'", []))
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }

    #[test]
    fn messages_record_delivery_and_reads_per_station() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let a = insert_station(c, "poste-01", "h", None, 0)?;
            let b = insert_station(c, "poste-02", "h", None, 0)?;
            let id = insert_message(c, "prof", "Bonjour", 10, &[(a, true), (b, false)])?;
            assert!(mark_message_read(c, id, a, 20)?);
            assert!(
                !mark_message_read(c, id, b, 20)?,
                "never delivered, cannot be read"
            );
            assert!(!mark_message_read(c, id + 1, a, 20)?, "unknown message");
            let rows = recent_messages(c, 20)?;
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].text, "Bonjour");
            assert_eq!(
                rows[0]
                    .targets
                    .iter()
                    .map(|t| (t.name.as_str(), t.delivered, t.read))
                    .collect::<Vec<_>>(),
                vec![("poste-01", true, true), ("poste-02", false, false)]
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn audit_purge_removes_only_what_is_past_retention() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            for at in [100, 200, 300] {
                crate::audit::write(
                    c,
                    at,
                    &crate::audit::Entry {
                        actor: "prof",
                        action: "login",
                        target: "-",
                        result: "ok",
                        detail: "",
                    },
                )?;
            }
            assert_eq!(purge_audit(c, 250)?, 2);
            assert_eq!(audit_count(c, "login")?, 1);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_recovery_code_is_spent_once_and_regeneration_voids_the_old_ones() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_account(c, "prof", Role::Teacher, "hash", 0)?;
            let other = insert_account(c, "autre", Role::Teacher, "hash", 0)?;
            replace_recovery_codes(c, id, &["h1".into(), "h2".into()], 10)?;
            assert_eq!(recovery_codes_left(c, id)?, 2);
            assert_eq!(recovery_codes(c, other)?, vec![]);
            assert!(
                !use_recovery_code(c, other, "h1", 20)?,
                "another account's code"
            );
            assert!(use_recovery_code(c, id, "h1", 20)?);
            assert!(!use_recovery_code(c, id, "h1", 30)?, "spent");
            assert_eq!(recovery_codes_left(c, id)?, 1);
            let mut codes = recovery_codes(c, id)?;
            codes.sort();
            assert_eq!(codes, vec![("h1".into(), true), ("h2".into(), false)]);
            replace_recovery_codes(c, id, &["h3".into()], 40)?;
            assert!(!use_recovery_code(c, id, "h2", 50)?, "replaced");
            assert!(use_recovery_code(c, id, "h3", 50)?);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn resetting_two_factor_clears_secret_codes_and_sessions() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_account(c, "prof", Role::Teacher, "hash", 0)?;
            set_totp_pending(c, id, "SECRET")?;
            activate_totp(c, id, 5)?;
            replace_recovery_codes(c, id, &["h1".into()], 0)?;
            insert_session(c, "tok", id, 0, 1_000)?;
            assert!(reset_two_factor(c, "prof")?);
            assert_eq!(totp_state(c, id)?, (None, None, None));
            assert_eq!(recovery_codes_left(c, id)?, 0);
            assert!(session_account(c, "tok", 10, 1_000)?.is_none());
            assert!(!reset_two_factor(c, "nobody")?);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_totp_step_is_accepted_once() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_account(c, "prof", Role::Teacher, "hash", 0)?;
            assert!(advance_totp_step(c, id, 100)?);
            assert!(!advance_totp_step(c, id, 100)?, "the same step again");
            assert!(!advance_totp_step(c, id, 99)?, "an older step");
            assert!(advance_totp_step(c, id, 101)?);
            assert_eq!(totp_state(c, id)?.2, Some(101));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn audit_filters_combine_and_the_date_range_is_half_open() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            for (at, actor, action, target) in [
                (100, "prof", "view-station", "poste-01"),
                (200, "prof", "view-station", "poste-02"),
                (300, "admin", "login", "-"),
                (400, "prof", "view-station", "poste-01"),
            ] {
                crate::audit::write(
                    c,
                    at,
                    &crate::audit::Entry {
                        actor,
                        action,
                        target,
                        result: "ok",
                        detail: "",
                    },
                )?;
            }
            let ats = |f: AuditFilter| -> Vec<i64> {
                audit_rows(c, &f, 100)
                    .unwrap()
                    .iter()
                    .map(|r| r.at_us)
                    .collect()
            };
            assert_eq!(
                ats(AuditFilter {
                    target: Some("poste-01".into()),
                    ..Default::default()
                }),
                vec![400, 100]
            );
            assert_eq!(
                ats(AuditFilter {
                    actor: Some("prof".into()),
                    since_us: Some(200),
                    until_us: Some(400),
                    ..Default::default()
                }),
                vec![200]
            );
            assert_eq!(
                ats(AuditFilter {
                    action: Some("login".into()),
                    ..Default::default()
                }),
                vec![300]
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn screenshot_purge_returns_the_ids_of_the_files_to_delete() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let row = |at| ScreenshotRow {
                id: 0,
                station_id: 1,
                station_name: "poste-01".into(),
                taken_by: "prof".into(),
                taken_at_us: at,
                width: 4,
                height: 2,
                bytes: 10,
            };
            let old = insert_screenshot(c, &row(100))?;
            let new = insert_screenshot(c, &row(300))?;
            assert_eq!(purge_screenshots(c, 200)?, vec![old]);
            assert_eq!(
                screenshots(c)?.iter().map(|r| r.id).collect::<Vec<_>>(),
                vec![new]
            );
            assert!(screenshot(c, old)?.is_none());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn unique_names_get_a_suffix() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            insert_station(c, "poste", "h", None, 0)?;
            assert_eq!(unique_station_name(c, "poste")?, "poste-2");
            insert_station(c, "poste-2", "h", None, 0)?;
            assert_eq!(unique_station_name(c, "poste")?, "poste-3");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn sessions_expire_and_die_with_a_disabled_account() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_account(c, "prof", Role::Teacher, "hash", 0)?;
            insert_session(c, "tok", id, 100, 1_000)?;
            assert!(session_account(c, "tok", 500, 1_000)?.is_some());
            assert!(session_account(c, "tok", 1_200, 1_000)?.is_none());
            assert!(session_account(c, "other", 500, 1_000)?.is_none());
            c.execute("UPDATE accounts SET disabled = 1", [])?;
            assert!(session_account(c, "tok", 500, 1_000)?.is_none());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn an_idle_session_ends_and_use_keeps_it_alive() {
        let s = Store::in_memory().unwrap();
        let (hour, idle) = (3_600_000_000, 1_800_000_000);
        s.with(|c| {
            let id = insert_account(c, "prof", Role::Teacher, "hash", 0)?;
            insert_session(c, "tok", id, 0, 10 * hour)?;
            // Used every 20 minutes: alive for hours.
            for k in 1..=9 {
                assert!(
                    session_account(c, "tok", k * 1_200_000_000, idle)?.is_some(),
                    "{k}"
                );
            }
            // Then 31 minutes without a request: gone.
            assert!(session_account(c, "tok", 9 * 1_200_000_000 + 1_860_000_000, idle)?.is_none());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn re_enabling_an_account_does_not_revive_its_sessions() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_account(c, "prof", Role::Teacher, "hash", 0)?;
            insert_session(c, "tok", id, 0, 1_000_000)?;
            assert!(set_account_disabled(c, "prof", true)?);
            assert!(set_account_disabled(c, "prof", false)?);
            assert!(session_account(c, "tok", 10, 1_000_000)?.is_none());
            Ok(())
        })
        .unwrap();
    }

    fn audit_line(c: &Connection, at: i64, actor: &str, action: &str, target: &str, detail: &str) {
        crate::audit::write(
            c,
            at,
            &crate::audit::Entry {
                actor,
                action,
                target,
                result: "ok",
                detail,
            },
        )
        .unwrap();
    }

    fn all_audit(c: &Connection) -> Vec<(String, String, String, String)> {
        let mut rows = audit_rows(c, &AuditFilter::default(), 1000).unwrap();
        rows.reverse();
        rows.into_iter()
            .map(|r| (r.actor, r.action, r.target, r.detail))
            .collect()
    }

    fn count(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn message_purge_takes_the_read_receipts_with_the_messages() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let a = insert_station(c, "poste-01", "h", None, 0)?;
            let b = insert_station(c, "poste-02", "h", None, 0)?;
            let old = insert_message(c, "prof", "Ancien", 100, &[(a, true), (b, true)])?;
            mark_message_read(c, old, a, 150)?;
            let new = insert_message(c, "prof", "Récent", 300, &[(a, true)])?;
            assert_eq!(purge_messages(c, 200)?, (1, 2));
            let left = recent_messages(c, 10)?;
            assert_eq!(left.iter().map(|m| m.id).collect::<Vec<_>>(), vec![new]);
            assert_eq!(count(c, "message_targets"), 1);
            assert_eq!(purge_messages(c, 200)?, (0, 0), "nothing left to purge");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn command_purge_takes_each_stations_output_with_the_run() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let a = insert_station(c, "poste-01", "h", None, 0)?;
            let old = insert_command_run(c, "espace-disque", &[], "prof", 100, &[(a, true)])?;
            let outcome = CommandOutcome {
                exit_code: Some(0),
                stdout: "/home 12G",
                stderr: "",
                error: None,
            };
            assert!(finish_command(c, old, a, 120, &outcome)?);
            let new = insert_command_run(c, "espace-disque", &[], "prof", 300, &[(a, true)])?;
            assert_eq!(purge_command_runs(c, 200)?, (1, 1));
            assert!(command_run(c, old)?.is_none());
            assert_eq!(command_run(c, new)?.unwrap().results.len(), 1);
            assert_eq!(count(c, "command_results"), 1);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn session_and_enrol_code_purges_remove_only_expired_rows() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_account(c, "prof", Role::Teacher, "hash", 0)?;
            insert_session(c, "old", id, 100, 100)?;
            insert_session(c, "live", id, 150, 1_000)?;
            assert_eq!(purge_sessions(c, 500)?, 1);
            assert!(session_account(c, "live", 500, i64::MAX / 2)?.is_some());
            assert_eq!(count(c, "sessions"), 1);

            insert_enrol_code(c, "AAAA-AAAA-AAAA", 0, 100)?;
            insert_enrol_code(c, "BBBB-BBBB-BBBB", 0, 1_000)?;
            assert_eq!(purge_enrol_codes(c, 500)?, 1);
            assert_eq!(count(c, "enrol_codes"), 1);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn deleting_an_account_keeps_its_audit_lines_under_a_pseudonym_and_removes_the_rest() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let admin = insert_account(c, "admin", Role::Admin, "hash", 0)?;
            let id = insert_account(c, "mme.lefevre", Role::Teacher, "hash", 0)?;
            assert!(id > admin);
            insert_session(c, "tok", id, 0, 1_000)?;
            replace_recovery_codes(c, id, &["h1".into()], 0)?;
            let st = insert_station(c, "poste-01", "h", None, 0)?;
            insert_message(c, "mme.lefevre", "Bonjour", 10, &[(st, true)])?;
            insert_command_run(c, "df", &[], "mme.lefevre", 10, &[(st, true)])?;
            insert_screenshot(
                c,
                &ScreenshotRow {
                    id: 0,
                    station_id: st,
                    station_name: "poste-01".into(),
                    taken_by: "mme.lefevre".into(),
                    taken_at_us: 10,
                    width: 1,
                    height: 1,
                    bytes: 1,
                },
            )?;
            audit_line(c, 1, "admin", "create-account", "mme.lefevre", "teacher");
            audit_line(c, 2, "mme.lefevre", "login", "-", "password");
            audit_line(c, 3, "mme.lefevre.2", "login", "-", "password");

            let gone = delete_account(c, "mme.lefevre")?.expect("the account exists");
            assert_eq!(gone.pseudonym, format!("account#{id}"));
            assert_eq!(
                all_audit(c),
                vec![
                    (
                        "admin".into(),
                        "create-account".into(),
                        gone.pseudonym.clone(),
                        "teacher".into()
                    ),
                    (
                        gone.pseudonym.clone(),
                        "login".into(),
                        "-".into(),
                        "password".into()
                    ),
                    (
                        "mme.lefevre.2".into(),
                        "login".into(),
                        "-".into(),
                        "password".into()
                    ),
                ]
            );
            assert!(account_by_name(c, "mme.lefevre")?.is_none());
            assert!(session_account(c, "tok", 10, i64::MAX / 2)?.is_none());
            assert_eq!(count(c, "sessions"), 0);
            assert_eq!(recovery_codes(c, id)?, vec![]);
            assert_eq!(recent_messages(c, 10)?[0].from, gone.pseudonym);
            assert_eq!(command_run(c, 1)?.unwrap().from, gone.pseudonym);
            assert_eq!(screenshots(c)?[0].taken_by, gone.pseudonym);
            let names: Vec<String> = c
                .prepare("SELECT sender FROM messages UNION ALL SELECT sender FROM command_runs")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            assert!(!names.iter().any(|n| n.contains("lefevre")), "{names:?}");
            assert!(delete_account(c, "mme.lefevre")?.is_none(), "already gone");

            // The id is never given again, even though it was the largest.
            let next = insert_account(c, "mme.lefevre", Role::Teacher, "hash", 20)?;
            assert!(next > id, "{next} reuses {id}");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_audit_log_accepts_a_pseudonym_but_no_other_rewrite() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            audit_line(c, 1, "prof", "login", "-", "");
            Ok(())
        })
        .unwrap();
        for forged in [
            "UPDATE audit SET actor = 'someone-else'",
            "UPDATE audit SET at_us = 2",
            "UPDATE audit SET result = 'refused'",
            "UPDATE audit SET action = 'logout'",
            "UPDATE audit SET detail = 'forged'",
            "UPDATE audit SET actor = 'account#3', at_us = 5",
        ] {
            let err = s.with(|c| c.execute(forged, [])).unwrap_err();
            assert!(err.to_string().contains("append-only"), "{forged}: {err}");
        }
        s.with(|c| c.execute("UPDATE audit SET actor = 'account#3'", []))
            .unwrap();
    }

    #[test]
    fn deleting_a_station_removes_everything_about_it_and_pseudonymises_its_audit_lines() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let gone = insert_station(c, "poste-1", "poste-1", Some("aa:bb:cc:dd:ee:ff"), 0)?;
            let other = insert_station(c, "poste-10", "poste-10", None, 0)?;
            insert_enrol_code(c, "AAAA-AAAA-AAAA", 0, 1_000)?;
            redeem_enrol_code(c, "AAAA-AAAA-AAAA", 1, gone)?;
            let alone = insert_message(c, "prof", "Pour toi", 10, &[(gone, true)])?;
            let shared =
                insert_message(c, "prof", "Pour tous", 10, &[(gone, true), (other, true)])?;
            let run_alone = insert_command_run(c, "df", &[], "prof", 10, &[(gone, true)])?;
            let run_shared =
                insert_command_run(c, "df", &[], "prof", 10, &[(gone, true), (other, true)])?;
            let shot = |station_id, station_name: &str| ScreenshotRow {
                id: 0,
                station_id,
                station_name: station_name.into(),
                taken_by: "prof".into(),
                taken_at_us: 10,
                width: 1,
                height: 1,
                bytes: 1,
            };
            let shot_gone = insert_screenshot(c, &shot(gone, "poste-1"))?;
            insert_screenshot(c, &shot(other, "poste-10"))?;
            audit_line(c, 1, "station@10.0.0.5", "enrol", "poste-1", "fp");
            audit_line(c, 2, "station@10.0.0.6", "enrol", "poste-10", "fp");
            audit_line(c, 3, "prof", "lock", "poste-1, poste-10", "");
            audit_line(c, 4, "station:poste-1", "shutdown", "self", "");
            audit_line(c, 5, "station:poste-10", "shutdown", "self", "");
            audit_line(c, 6, "prof", "view-station", "poste-1", "");
            audit_line(
                c,
                7,
                "prof",
                "demo-start",
                "poste-10",
                "targets all others; online now: poste-1 poste-10",
            );
            audit_line(c, 8, "prof", "message", "2 station(s)", "message poste-1");

            let d = delete_station(c, gone)?.expect("the station exists");
            assert_eq!(d.pseudonym, format!("station#{gone}"));
            assert_eq!(d.name, "poste-1");
            assert_eq!(d.screenshot_ids, vec![shot_gone]);
            let p = d.pseudonym.as_str();
            let line = |a: &str, b: &str, c: &str, d: &str| {
                (a.to_string(), b.to_string(), c.to_string(), d.to_string())
            };
            assert_eq!(
                all_audit(c),
                vec![
                    line(p, "enrol", p, "fp"),
                    line("station@10.0.0.6", "enrol", "poste-10", "fp"),
                    line("prof", "lock", &format!("{p}, poste-10"), ""),
                    line(p, "shutdown", "self", ""),
                    line("station:poste-10", "shutdown", "self", ""),
                    line("prof", "view-station", p, ""),
                    line(
                        "prof",
                        "demo-start",
                        "poste-10",
                        &format!("targets all others; online now: {p} poste-10")
                    ),
                    // Details other than a demo's list name no station.
                    line("prof", "message", "2 station(s)", "message poste-1"),
                ]
            );
            assert_eq!(
                stations(c)?
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>(),
                vec!["poste-10"]
            );
            assert!(
                recent_messages(c, 10)?.iter().all(|m| m.id != alone),
                "sent to it alone"
            );
            let kept = recent_messages(c, 10)?;
            assert_eq!(kept.len(), 1);
            assert_eq!(kept[0].id, shared);
            assert_eq!(kept[0].targets.len(), 1, "its receipt is gone");
            assert!(command_run(c, run_alone)?.is_none());
            assert_eq!(command_run(c, run_shared)?.unwrap().results.len(), 1);
            assert!(screenshot(c, shot_gone)?.is_none());
            assert_eq!(screenshots(c)?.len(), 1);
            assert_eq!(count(c, "enrol_codes"), 0);
            let mac: i64 = c.query_row(
                "SELECT count(*) FROM stations WHERE mac IS NOT NULL OR hostname = 'poste-1'",
                [],
                |r| r.get(0),
            )?;
            assert_eq!(mac, 0);
            assert!(delete_station(c, gone)?.is_none());
            let next = insert_station(c, "poste-1", "poste-1", None, 20)?;
            assert!(next > other, "{next} reuses a deleted id");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_revoked_station_is_no_longer_found_by_its_certificate() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            let id = insert_station(c, "poste-01", "h", None, 0)?;
            finish_station(c, id, "fp1")?;
            assert!(station_by_fingerprint(c, "fp1")?.is_some());
            let before = revoke_station(c, id)?.expect("exists");
            assert!(!before.revoked);
            assert!(station_by_fingerprint(c, "fp1")?.is_none());
            assert!(stations(c)?.is_empty());
            assert!(revoke_station(c, id)?.expect("still listed").revoked);
            assert!(all_stations(c)?[0].revoked);
            assert!(revoke_station(c, id + 1)?.is_none());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn whole_names_only_are_replaced() {
        assert_eq!(
            replace_name("poste-1, poste-10", "poste-1", "S"),
            "S, poste-10"
        );
        assert_eq!(
            replace_name("poste-1-2 poste-1", "poste-1", "S"),
            "poste-1-2 S"
        );
        assert_eq!(replace_name("aposte-1", "poste-1", "S"), "aposte-1");
        assert_eq!(replace_name("é poste-1é", "poste-1", "S"), "é poste-1é");
        assert_eq!(replace_name("", "poste-1", "S"), "");
    }

    #[test]
    fn stations_are_never_named_like_the_audit_logs_own_words() {
        let s = Store::in_memory().unwrap();
        s.with(|c| {
            assert_eq!(unique_station_name(c, "room")?, "room-2");
            assert_eq!(unique_station_name(c, "station")?, "station-2");
            assert_eq!(unique_station_name(c, "poste")?, "poste");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn reopening_a_file_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("box.sqlite");
        {
            let s = Store::open(&p).unwrap();
            s.with(|c| insert_account(c, "a", Role::Admin, "h", 0))
                .unwrap();
        }
        let s = Store::open(&p).unwrap();
        assert_eq!(s.with(account_count).unwrap(), 1);
    }
}
