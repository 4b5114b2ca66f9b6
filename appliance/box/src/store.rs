//! The box database (SQLite, WAL): enrolled stations, one-time enrolment codes, accounts,
//! web sessions and the append-only audit log.
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

/// A free station name based on `wanted`: `poste-03`, then `poste-03-2`, …
pub fn unique_station_name(c: &Connection, wanted: &str) -> rusqlite::Result<String> {
    let mut name = wanted.to_string();
    let mut n = 2;
    while c
        .query_row(
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
        "INSERT INTO stations (name, hostname, mac, cert_fingerprint, enrolled_at)
         VALUES (?1, ?2, ?3, 'pending-' || hex(randomblob(16)), ?4)",
        params![name, hostname, mac, now_us],
    )?;
    Ok(c.last_insert_rowid() as u32)
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
        "INSERT INTO accounts (username, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
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

/// Disables or enables an account; its sessions stop working at once (they are checked
/// against `disabled` on every request).
pub fn set_account_disabled(
    c: &Connection,
    username: &str,
    disabled: bool,
) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE accounts SET disabled = ?2 WHERE username = ?1",
        params![username, disabled as i64],
    )? == 1)
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
        "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![sha256_hex(token), account_id, now_us, now_us + ttl_us],
    )?;
    Ok(())
}

/// The account behind a session token, if the session is live and the account enabled.
pub fn session_account(
    c: &Connection,
    token: &str,
    now_us: i64,
) -> rusqlite::Result<Option<Account>> {
    c.query_row(
        "SELECT a.id, a.username, a.role, a.password_hash, a.disabled
         FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND a.disabled = 0",
        params![sha256_hex(token), now_us],
        account_row,
    )
    .optional()
}

pub fn delete_session(c: &Connection, token: &str) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        [sha256_hex(token)],
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

// ---- audit ----

/// One line of the audit trail: who did what to which target, and how it went.
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
}

pub fn audit(c: &Connection, now_us: i64, e: &AuditEntry<'_>) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (at_us, actor, action, target, result, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now_us, e.actor, e.action, e.target, e.result, e.detail],
    )?;
    Ok(())
}

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
            audit(
                c,
                1,
                &AuditEntry {
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
                audit(
                    c,
                    at,
                    &AuditEntry {
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
            assert!(session_account(c, "tok", 10)?.is_none());
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
                audit(
                    c,
                    at,
                    &AuditEntry {
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
            assert!(session_account(c, "tok", 500)?.is_some());
            assert!(session_account(c, "tok", 1_200)?.is_none());
            assert!(session_account(c, "other", 500)?.is_none());
            c.execute("UPDATE accounts SET disabled = 1", [])?;
            assert!(session_account(c, "tok", 500)?.is_none());
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
