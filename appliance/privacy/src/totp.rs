//! Two-factor login (P6): RFC 6238 TOTP, enrolment URI and QR code, replay protection, and
//! single-use recovery codes.
//!
//! TOTP is built here on HMAC-SHA1 (RustCrypto `hmac` + `sha1`) because that is what every
//! authenticator app implements by default: 6 digits, 30-second steps, and one step of
//! tolerance either side for clock drift and typing time.
//!
//! TOTP counts **UTC** seconds since the Unix epoch, unlike the monitoring schedule, which is
//! local time: callers pass `OffsetDateTime::now_utc().unix_timestamp()`, never the box's
//! local [`crate::policy::Clock`] reading.
//!
//! Replay (RFC 6238 §5.2: a verifier must not accept the same code twice): [`TotpVerifier::verify`]
//! returns the time step it accepted; the caller stores it per user and passes it back next
//! time, and any step at or before it is refused. Refusing *earlier* steps too closes the gap
//! where a code seen over a shoulder is still inside the ±1 window after a newer login.
//!
//! Recovery codes are stored as SHA-256 hashes, not argon2id: each code carries ~79 bits of
//! uniform randomness, far beyond what any offline guessing can cover, so a slow hash adds no
//! protection — slow hashes exist for human-chosen passwords. A slow hash would instead cost a
//! full argon2id run per stored code on every recovery attempt on the Pi.

use std::fmt;

use hmac::{Hmac, Mac};
use qrcodegen::{QrCode, QrCodeEcc};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "Lanterne";
/// Bytes of a generated secret: 160 bits, the HMAC-SHA1 block-friendly size RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Errors of TOTP verification and encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TotpError {
    /// The submitted code is not exactly `digits` decimal digits.
    #[error("'code' must be {digits} digits")]
    MalformedCode { digits: u32 },
    /// The code matches no step inside the window.
    #[error("'code' is not valid at this time")]
    InvalidCode,
    /// The code matches a step already used (or older than the last one used).
    #[error("'code' was already used (time step {step}); wait for the next code")]
    Replayed { step: u64 },
    /// A base32 secret contains a character outside RFC 4648's alphabet.
    #[error("'secret' is not base32: unexpected {ch:?} at position {position}")]
    BadBase32 { ch: char, position: usize },
    /// A base32 secret decodes to too few bytes to be a real secret.
    #[error("'secret' is too short: {bytes} bytes, at least 10 needed")]
    SecretTooShort { bytes: usize },
    /// The text is too long to fit in a QR code.
    #[error("'uri' is too long for a QR code ({len} bytes)")]
    QrTooLong { len: usize },
}

/// A shared TOTP secret. Its `Debug` output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TotpSecret({} bytes, redacted)", self.0.len())
    }
}

impl TotpSecret {
    /// A fresh random secret from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// Wraps raw key bytes (for stored secrets and test vectors).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(bytes)
    }

    /// Parses the base32 form (case-insensitive; spaces, hyphens and `=` padding ignored).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let bytes = base32_decode(text)?;
        if bytes.len() < 10 {
            return Err(TotpError::SecretTooShort { bytes: bytes.len() });
        }
        Ok(TotpSecret(bytes))
    }

    /// The base32 form without padding, as authenticator apps expect it.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, no padding.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
        // Keep only the bits not yet written so the buffer never overflows.
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// RFC 4648 base32 decoding, forgiving about case, spaces, hyphens and padding because
/// people copy secrets by hand.
pub fn base32_decode(text: &str) -> Result<Vec<u8>, TotpError> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for (position, ch) in text.chars().enumerate() {
        if matches!(ch, ' ' | '-' | '=') {
            continue;
        }
        let upper = ch.to_ascii_uppercase();
        let value = match upper {
            'A'..='Z' => upper as u32 - 'A' as u32,
            '2'..='7' => upper as u32 - '2' as u32 + 26,
            _ => return Err(TotpError::BadBase32 { ch, position }),
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// RFC 4226 HOTP value with `digits` digits (HMAC-SHA1, dynamic truncation).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let binary = (u32::from(hash[offset] & 0x7f) << 24)
        | (u32::from(hash[offset + 1]) << 16)
        | (u32::from(hash[offset + 2]) << 8)
        | u32::from(hash[offset + 3]);
    binary % 10u32.pow(digits)
}

/// TOTP parameters and verification. The default is what authenticator apps assume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpVerifier {
    /// Digits per code (6 by default; 8 for the RFC's own vectors).
    pub digits: u32,
    /// Seconds per step.
    pub step_seconds: u64,
    /// Steps accepted either side of the current one.
    pub skew_steps: u64,
}

impl Default for TotpVerifier {
    fn default() -> Self {
        TotpVerifier {
            digits: 6,
            step_seconds: 30,
            skew_steps: 1,
        }
    }
}

impl TotpVerifier {
    /// The time step containing `unix_seconds`.
    pub fn step_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.step_seconds
    }

    /// The code for `unix_seconds`, zero-padded to `digits`.
    pub fn code_at(&self, secret: &TotpSecret, unix_seconds: u64) -> String {
        self.code_for_step(secret, self.step_at(unix_seconds))
    }

    fn code_for_step(&self, secret: &TotpSecret, step: u64) -> String {
        format!(
            "{:0width$}",
            hotp(secret.as_bytes(), step, self.digits),
            width = self.digits as usize
        )
    }

    /// Checks `code` at `unix_seconds` (UTC epoch seconds). `last_accepted_step` is the step
    /// this user last logged in with (stored by the caller); that step and every earlier one
    /// are refused. On success returns the accepted step, to store.
    pub fn verify(
        &self,
        secret: &TotpSecret,
        code: &str,
        unix_seconds: u64,
        last_accepted_step: Option<u64>,
    ) -> Result<u64, TotpError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpError::MalformedCode {
                digits: self.digits,
            });
        }
        let now = self.step_at(unix_seconds);
        let mut replayed = None;
        for step in now.saturating_sub(self.skew_steps)..=now.saturating_add(self.skew_steps) {
            if !constant_time_eq(self.code_for_step(secret, step).as_bytes(), code.as_bytes()) {
                continue;
            }
            match last_accepted_step {
                Some(last) if step <= last => replayed = Some(step),
                _ => return Ok(step),
            }
        }
        Err(match replayed {
            Some(step) => TotpError::Replayed { step },
            None => TotpError::InvalidCode,
        })
    }
}

/// Compares without an early exit so timing does not tell how many leading characters match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The enrolment URI: `otpauth://totp/Lanterne:<user>?secret=…&issuer=Lanterne&…`.
pub fn otpauth_uri(user: &str, secret: &TotpSecret, verifier: &TotpVerifier) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={}&period={}",
        percent_encode(user),
        secret.to_base32(),
        verifier.digits,
        verifier.step_seconds
    )
}

/// A QR code of `text` as a standalone SVG (black modules on white, 4-module quiet zone).
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|_| TotpError::QrTooLong { len: text.len() })?;
    const BORDER: i32 = 4;
    let size = qr.size() + 2 * BORDER;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + BORDER, y + BORDER));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\
         <path d=\"{path}\" fill=\"#000000\"/></svg>"
    ))
}

/// Errors of recovery-code redemption.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecoveryError {
    /// Not the shape of a recovery code (16 characters of the code alphabet).
    #[error("'recovery_code' is not a recovery code (expected 16 letters and digits, like ABCD-EFGH-JKMN-PQRS)")]
    Malformed,
    /// No stored code matches.
    #[error("'recovery_code' is not valid for this account")]
    Unknown,
    /// The code matched but was already used once.
    #[error("'recovery_code' was already used")]
    AlreadyUsed,
}

/// Characters of recovery codes: no 0/O, 1/I/L, so codes survive being read aloud or
/// copied from paper.
const RECOVERY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const RECOVERY_LEN: usize = 16;

/// What the box keeps of one recovery code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRecoveryCode {
    /// Hex SHA-256 of the normalised code (16 upper-case characters, no hyphens).
    pub sha256: String,
    /// Set once the code has been redeemed; a used code never works again.
    pub used: bool,
}

/// A new set of recovery codes: `shown` is displayed to the user once and then dropped;
/// `stored` is what the box saves.
#[derive(Debug, Clone)]
pub struct RecoveryCodes {
    /// Codes as `ABCD-EFGH-JKMN-PQRS`.
    pub shown: Vec<String>,
    /// Their hashes, in the same order.
    pub stored: Vec<StoredRecoveryCode>,
}

/// Generates [`RECOVERY_CODE_COUNT`] codes of 16 characters from a 31-symbol alphabet
/// (16 × log2(31) ≈ 79 bits each).
pub fn generate_recovery_codes() -> RecoveryCodes {
    let mut rng = rand::rng();
    let mut shown = Vec::with_capacity(RECOVERY_CODE_COUNT);
    let mut stored = Vec::with_capacity(RECOVERY_CODE_COUNT);
    for _ in 0..RECOVERY_CODE_COUNT {
        let raw: String = (0..RECOVERY_LEN)
            .map(|_| char::from(RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())]))
            .collect();
        let grouped = raw
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("alphabet is ASCII"))
            .collect::<Vec<_>>()
            .join("-");
        stored.push(StoredRecoveryCode {
            sha256: sha256_hex(&raw),
            used: false,
        });
        shown.push(grouped);
    }
    RecoveryCodes { shown, stored }
}

fn normalise_recovery_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == RECOVERY_LEN && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(code)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Redeems `input` against the stored codes: on success marks it used (the caller must
/// save `stored` before letting the user in) and returns its index.
pub fn redeem_recovery_code(
    stored: &mut [StoredRecoveryCode],
    input: &str,
) -> Result<usize, RecoveryError> {
    let code = normalise_recovery_code(input).ok_or(RecoveryError::Malformed)?;
    let hash = sha256_hex(&code);
    // Compare against every entry without stopping early, so timing reveals nothing.
    let mut found = None;
    for (i, entry) in stored.iter().enumerate() {
        if constant_time_eq(entry.sha256.as_bytes(), hash.as_bytes()) && found.is_none() {
            found = Some(i);
        }
    }
    let index = found.ok_or(RecoveryError::Unknown)?;
    if stored[index].used {
        return Err(RecoveryError::AlreadyUsed);
    }
    stored[index].used = true;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the seed is the ASCII "12345678901234567890".
    const RFC_SEED: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc6238_vectors_eight_digits() {
        let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
        let v = TotpVerifier {
            digits: 8,
            ..TotpVerifier::default()
        };
        for (t, expected) in RFC_VECTORS {
            assert_eq!(v.code_at(&secret, t), expected, "T = {t}");
        }
    }

    #[test]
    fn rfc6238_vectors_six_digits() {
        // Truncation to 6 digits is the same number modulo 10^6: the last six digits.
        let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
        let v = TotpVerifier::default();
        for (t, expected) in RFC_VECTORS {
            assert_eq!(v.code_at(&secret, t), expected[2..], "T = {t}");
            assert_eq!(v.verify(&secret, &expected[2..], t, None), Ok(t / 30));
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        // RFC 4226 Appendix D, counters 0..=9.
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SEED, counter as u64, 6), *code);
        }
    }

    #[test]
    fn window_accepts_one_step_either_side_only() {
        let secret = TotpSecret::generate();
        let v = TotpVerifier::default();
        let now = 1_800_000_000u64; // a step boundary (divisible by 30)
        let step = now / 30;
        let previous = v.code_at(&secret, now - 30);
        let next = v.code_at(&secret, now + 30);
        let too_old = v.code_at(&secret, now - 60);
        let too_new = v.code_at(&secret, now + 60);
        assert_eq!(v.verify(&secret, &previous, now, None), Ok(step - 1));
        assert_eq!(v.verify(&secret, &next, now, None), Ok(step + 1));
        // A code from two steps away is refused (unless it happens to collide with a code in
        // the window, a one-in-a-million chance we rule out by construction).
        let window: Vec<String> = (step - 1..=step + 1)
            .map(|s| v.code_for_step(&secret, s))
            .collect();
        if !window.contains(&too_old) {
            assert_eq!(
                v.verify(&secret, &too_old, now, None),
                Err(TotpError::InvalidCode)
            );
        }
        if !window.contains(&too_new) {
            assert_eq!(
                v.verify(&secret, &too_new, now, None),
                Err(TotpError::InvalidCode)
            );
        }
        assert_eq!(
            v.verify(&secret, "12345", now, None),
            Err(TotpError::MalformedCode { digits: 6 })
        );
        assert_eq!(
            v.verify(&secret, "12a456", now, None),
            Err(TotpError::MalformedCode { digits: 6 })
        );
    }

    #[test]
    fn same_step_is_refused_twice() {
        let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
        let v = TotpVerifier::default();
        let t = 1_234_567_890;
        let accepted = v.verify(&secret, "005924", t, None).unwrap();
        assert_eq!(
            v.verify(&secret, "005924", t + 5, Some(accepted)),
            Err(TotpError::Replayed { step: accepted })
        );
        // An older code still inside the window is refused too once a newer one was used.
        let older = v.code_at(&secret, t - 30);
        assert_eq!(
            v.verify(&secret, &older, t, Some(accepted)),
            Err(TotpError::Replayed { step: accepted - 1 })
        );
        // The next step's code works.
        let next = v.code_at(&secret, t + 30);
        assert_eq!(
            v.verify(&secret, &next, t + 30, Some(accepted)),
            Ok(accepted + 1)
        );
    }

    #[test]
    fn base32_rfc4648_vectors_and_round_trip() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert_eq!(
            base32_decode("MZX1"),
            Err(TotpError::BadBase32 {
                ch: '1',
                position: 3
            })
        );
        let secret = TotpSecret::generate();
        assert_eq!(secret.as_bytes().len(), SECRET_BYTES);
        assert_eq!(
            TotpSecret::from_base32(&secret.to_base32()).unwrap(),
            secret
        );
        assert_eq!(
            TotpSecret::from_base32("MZXW6"),
            Err(TotpError::SecretTooShort { bytes: 3 })
        );
        assert!(!format!("{secret:?}").contains(&secret.to_base32()));
    }

    #[test]
    fn otpauth_uri_and_qr() {
        let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
        let uri = otpauth_uri("marie.curie@lycee", &secret, &TotpVerifier::default());
        assert_eq!(
            uri,
            "otpauth://totp/Lanterne:marie.curie%40lycee?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Lanterne&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        let qr = QrCode::encode_text(&uri, QrCodeEcc::Medium).unwrap();
        let side = qr.size() + 8;
        assert!(svg.contains(&format!("viewBox=\"0 0 {side} {side}\"")));
        // The three finder patterns' corners are dark, and the quiet zone is not drawn.
        assert!(svg.contains("M4,4h1v1h-1z"));
        assert!(svg.contains(&format!("M{},4h1v1h-1z", side - 5)));
        assert!(svg.contains(&format!("M4,{}h1v1h-1z", side - 5)));
        assert!(!svg.contains("M3,"));
        // The separator next to the top-left finder is light.
        assert!(!svg.contains("M11,4h1v1h-1z"));
        assert_eq!(
            qr_svg(&"x".repeat(5000)),
            Err(TotpError::QrTooLong { len: 5000 })
        );
    }

    #[test]
    fn recovery_codes_are_single_use() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.shown.len(), RECOVERY_CODE_COUNT);
        assert_eq!(codes.stored.len(), RECOVERY_CODE_COUNT);
        let mut unique = codes.shown.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT, "codes must differ");
        for (shown, stored) in codes.shown.iter().zip(&codes.stored) {
            assert_eq!(shown.len(), 19, "{shown}");
            assert!(!stored.sha256.contains(&shown.replace('-', "")));
            assert_eq!(stored.sha256.len(), 64);
        }

        let mut stored = codes.stored.clone();
        // Lower case and without hyphens is accepted: people type what they read.
        let typed = codes.shown[3].replace('-', " ").to_lowercase();
        assert_eq!(redeem_recovery_code(&mut stored, &typed), Ok(3));
        assert!(stored[3].used);
        assert_eq!(
            redeem_recovery_code(&mut stored, &codes.shown[3]),
            Err(RecoveryError::AlreadyUsed)
        );
        assert_eq!(redeem_recovery_code(&mut stored, &codes.shown[4]), Ok(4));
        assert_eq!(
            redeem_recovery_code(&mut stored, "2222-2222-2222-2222"),
            Err(RecoveryError::Unknown)
        );
        assert_eq!(
            redeem_recovery_code(&mut stored, "OOOO-1111-IIII-LLLL"),
            Err(RecoveryError::Malformed)
        );
        assert_eq!(
            redeem_recovery_code(&mut stored, "ABCD"),
            Err(RecoveryError::Malformed)
        );
        assert_eq!(stored.iter().filter(|c| c.used).count(), 2);
    }
}
