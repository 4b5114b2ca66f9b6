//! One-time recovery codes for two-factor login: the way back in when the phone with the
//! authenticator app is lost.
//!
//! Ten codes are made when an account confirms two-factor login (and again on request);
//! they are shown once and the box keeps only hashes. Each code carries 80 random bits, so a
//! plain SHA-256 (salted with the account id, so equal codes of two accounts differ) is
//! enough: unlike a password there is nothing for a dictionary to guess, and checking stays
//! cheap on a Raspberry Pi. A code replaces the TOTP code at login, once.

use rand::Rng;

/// How many codes an account gets at a time.
pub const COUNT: usize = 10;
/// Characters per code, before grouping.
const LEN: usize = 16;
/// 32 symbols without look-alikes (no 0/O, 1/I): 5 bits each, 80 bits per code.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Fresh codes as shown to the user: `ABCD-EFGH-JKLM-NPQR`.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rng();
    (0..COUNT)
        .map(|_| {
            let chars: Vec<char> = (0..LEN)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The code as typed (any case, with or without dashes or spaces) in canonical form, or None
/// when it cannot be a recovery code at all.
pub fn normalise(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

/// What the database keeps for a code of this account.
pub fn hash(account_id: i64, typed: &str) -> Option<String> {
    normalise(typed)
        .map(|code| crate::store::sha256_hex(&format!("lanterne-recovery:{account_id}:{code}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_read_back_however_they_are_typed() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), COUNT);
        let c = &codes[0];
        assert_eq!(c.len(), 19);
        let typed = c.to_lowercase().replace('-', " ");
        assert_eq!(hash(7, &typed), hash(7, c));
        assert!(hash(7, c).is_some());
        assert_ne!(hash(7, c), hash(8, c), "salted with the account");
    }

    #[test]
    fn things_that_are_not_codes_are_refused_before_any_lookup() {
        assert_eq!(
            normalise("123456"),
            None,
            "a TOTP code is not a recovery code"
        );
        assert_eq!(
            normalise("ABCD-EFGH-JKLM-NPQ0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(normalise("ABCD-EFGH-JKLM-NPQRS"), None);
        assert_eq!(
            normalise("abcd efgh jklm npqr").as_deref(),
            Some("ABCDEFGHJKLMNPQR")
        );
    }
}
