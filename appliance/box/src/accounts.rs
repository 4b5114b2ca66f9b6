//! Accounts: argon2id password hashes, the school's password rule, the first admin account
//! and login throttling.
//!
//! The first start creates `admin` with a random password that is printed once on standard
//! output (and written to nothing else: it is a secret, never logged).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

use crate::store::{self, Role, Store, StoreError};

/// The policy rule (DESIGN P6): at least 8 characters with an upper-case letter, a lower-case
/// letter, a digit and a special character. Returns what is missing, in French and English
/// keys the UI translates.
pub fn check_password_rule(pw: &str) -> Result<(), &'static str> {
    if pw.chars().count() < 8 {
        return Err("password_too_short");
    }
    if pw.chars().count() > 256 {
        return Err("password_too_long");
    }
    if !pw.chars().any(|c| c.is_uppercase()) {
        return Err("password_needs_upper");
    }
    if !pw.chars().any(|c| c.is_lowercase()) {
        return Err("password_needs_lower");
    }
    if !pw.chars().any(|c| c.is_ascii_digit()) {
        return Err("password_needs_digit");
    }
    if !pw.chars().any(|c| !c.is_alphanumeric()) {
        return Err("password_needs_special");
    }
    Ok(())
}

pub fn hash_password(pw: &str) -> String {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .expect("argon2id with default parameters accepts any password")
        .to_string()
}

pub fn verify_password(pw: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random password that satisfies the rule: 20 characters from an alphabet without
/// look-alikes, with one of each required class forced in.
pub fn random_password() -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SPECIAL: &[u8] = b"-_.!+=";
    let mut rng = rand::rng();
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SPECIAL].concat();
    let mut out: Vec<u8> = (0..16)
        .map(|_| all[rng.random_range(0..all.len())])
        .collect();
    for class in [UPPER, LOWER, DIGIT, SPECIAL] {
        let at = rng.random_range(0..=out.len());
        out.insert(at, class[rng.random_range(0..class.len())]);
    }
    String::from_utf8(out).expect("ASCII alphabet")
}

/// Creates the `admin` account when there is no account at all. Returns its password, to be
/// shown once.
pub fn ensure_first_admin(store: &Store) -> Result<Option<String>, StoreError> {
    store.with(|c| {
        if store::account_count(c)? > 0 {
            return Ok(None);
        }
        let pw = random_password();
        store::insert_account(
            c,
            "admin",
            Role::Admin,
            &hash_password(&pw),
            lanterne_wire::now_us() as i64,
        )?;
        Ok(Some(pw))
    })
}

/// Failed logins per user name: after [`MAX_FAILURES`] failures within [`WINDOW`], further
/// attempts are refused for [`LOCKOUT`] without even checking the password (which also keeps
/// argon2 from being used as a CPU drain).
pub struct Throttle {
    failures: HashMap<String, (u32, Instant)>,
}

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
pub const LOCKOUT: Duration = Duration::from_secs(5 * 60);
/// Bound on tracked names so random user names cannot grow the map forever.
const MAX_TRACKED: usize = 10_000;

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

impl Throttle {
    pub fn new() -> Self {
        Throttle {
            failures: HashMap::new(),
        }
    }

    /// `Err(remaining)` while `user` is locked out.
    pub fn check(&mut self, user: &str, now: Instant) -> Result<(), Duration> {
        if let Some((count, since)) = self.failures.get(user) {
            let elapsed = now.saturating_duration_since(*since);
            if *count >= MAX_FAILURES && elapsed < LOCKOUT {
                return Err(LOCKOUT - elapsed);
            }
            if elapsed >= WINDOW.max(LOCKOUT) {
                self.failures.remove(user);
            }
        }
        Ok(())
    }

    pub fn failed(&mut self, user: &str, now: Instant) {
        if self.failures.len() >= MAX_TRACKED {
            self.failures
                .retain(|_, (_, since)| now.saturating_duration_since(*since) < WINDOW);
        }
        let e = self.failures.entry(user.to_string()).or_insert((0, now));
        if now.saturating_duration_since(e.1) >= WINDOW {
            *e = (0, now);
        }
        e.0 += 1;
        e.1 = now;
    }

    pub fn succeeded(&mut self, user: &str) {
        self.failures.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rule_matches_the_policy() {
        assert!(check_password_rule("Abcdef1!").is_ok());
        assert_eq!(check_password_rule("Abcde1!"), Err("password_too_short"));
        assert_eq!(check_password_rule("abcdef1!"), Err("password_needs_upper"));
        assert_eq!(check_password_rule("ABCDEF1!"), Err("password_needs_lower"));
        assert_eq!(check_password_rule("Abcdefg!"), Err("password_needs_digit"));
        assert_eq!(
            check_password_rule("Abcdefg1"),
            Err("password_needs_special")
        );
    }

    #[test]
    fn random_passwords_follow_the_rule_and_differ() {
        let a = random_password();
        let b = random_password();
        assert_ne!(a, b);
        for _ in 0..200 {
            assert_eq!(check_password_rule(&random_password()), Ok(()));
        }
    }

    #[test]
    fn argon2id_hash_verifies_only_the_right_password() {
        let h = hash_password("Secret-123");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("Secret-123", &h));
        assert!(!verify_password("Secret-124", &h));
        assert!(!verify_password("Secret-123", "not a hash"));
    }

    #[test]
    fn first_admin_is_created_once() {
        let s = Store::in_memory().unwrap();
        let pw = ensure_first_admin(&s).unwrap().expect("created");
        assert!(ensure_first_admin(&s).unwrap().is_none());
        let acc = s
            .with(|c| store::account_by_name(c, "admin"))
            .unwrap()
            .unwrap();
        assert_eq!(acc.role, Role::Admin);
        assert!(verify_password(&pw, &acc.password_hash));
    }

    #[test]
    fn lockout_after_repeated_failures_then_release() {
        let mut t = Throttle::new();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(t.check("prof", t0).is_ok(), "attempt {i}");
            t.failed("prof", t0);
        }
        assert!(t.check("prof", t0 + Duration::from_secs(1)).is_err());
        assert!(t.check("other", t0).is_ok());
        assert!(t
            .check("prof", t0 + LOCKOUT + Duration::from_secs(1))
            .is_ok());
    }
}
