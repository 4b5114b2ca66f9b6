//! Accounts: argon2id password hashes, the school's password rule and the first admin account.
//!
//! The first start creates `admin` with a random password; the daemon writes it to a file
//! only the box's user can read (never to standard output or the log), and the account must
//! replace it at its first sign-in, which removes the file. Sign-in throttling is
//! [`crate::login_gate`].

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
        let id = store::insert_account(
            c,
            "admin",
            Role::Admin,
            &hash_password(&pw),
            lanterne_wire::now_us() as i64,
        )?;
        // A generated password has been written down somewhere: it is replaced at once.
        store::set_must_change_password(c, id, true)?;
        Ok(Some(pw))
    })
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
}
