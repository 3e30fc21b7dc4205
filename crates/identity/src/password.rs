//! Password hashing for builtin users.
//!
//! Hashes are PBKDF2-HMAC-SHA256 in a self-describing, single-line format so
//! an operator can paste one into the config file:
//! `$pbkdf2-sha256$i=<iterations>$<salt, base64 no pad>$<hash, base64 no pad>`.
//! The iteration count travels with the hash, so raising the default later
//! does not invalidate hashes already in configs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use sha2::Sha256;

/// The iteration count new hashes get: slow enough to make offline guessing
/// expensive, fast enough (tens of milliseconds) for an interactive login.
pub const DEFAULT_ITERATIONS: u32 = 100_000;

/// Upper bound accepted when verifying, so a mistyped config cannot make
/// every login burn minutes of CPU.
const MAX_ITERATIONS: u32 = 10_000_000;
const SCHEME: &str = "pbkdf2-sha256";
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Shortest salt accepted from foreign hashes; anything shorter is a typo.
const MIN_SALT_LEN: usize = 8;
const MAX_SALT_LEN: usize = 64;

/// Hashes `password` with a fresh random salt and [`DEFAULT_ITERATIONS`].
pub fn hash_password(password: &str) -> String {
    hash_password_with_iterations(password, DEFAULT_ITERATIONS)
}

/// Hashes with an explicit iteration count (clamped to `1..=10_000_000`):
/// tests and low-powered devices may want fewer than the default.
///
/// Panics only if the operating system's random number generator is
/// unavailable, which no caller could recover from meaningfully.
pub fn hash_password_with_iterations(password: &str, iterations: u32) -> String {
    let iterations = iterations.clamp(1, MAX_ITERATIONS);
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).expect("the operating system random number generator failed");
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut hash);
    format!(
        "${SCHEME}$i={iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

/// Whether `password` matches `encoded`. Malformed encodings never match.
pub fn verify_password(password: &str, encoded: &str) -> bool {
    let Some(parsed) = ParsedHash::parse(encoded) else {
        return false;
    };
    let mut candidate = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        &parsed.salt,
        parsed.iterations,
        &mut candidate,
    );
    constant_time_eq(&candidate, &parsed.hash)
}

/// Whether `encoded` is a hash [`verify_password`] can check; used to reject
/// broken configs at startup instead of failing every login.
pub fn is_well_formed(encoded: &str) -> bool {
    ParsedHash::parse(encoded).is_some()
}

/// The pieces of an encoded hash.
struct ParsedHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: [u8; HASH_LEN],
}

impl ParsedHash {
    fn parse(encoded: &str) -> Option<ParsedHash> {
        let mut parts = encoded.split('$');
        let (Some(""), Some(SCHEME), Some(rounds), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let rounds = rounds.strip_prefix("i=")?;
        if rounds.is_empty() || !rounds.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let iterations: u32 = rounds.parse().ok()?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return None;
        }
        let salt = STANDARD_NO_PAD.decode(salt).ok()?;
        if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
            return None;
        }
        let hash: [u8; HASH_LEN] = STANDARD_NO_PAD.decode(hash).ok()?.try_into().ok()?;
        Some(ParsedHash {
            iterations,
            salt,
            hash,
        })
    }
}

/// Compares without an early exit, so response timing does not reveal how
/// many leading bytes of a guess were right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_default_iterations() {
        let encoded = hash_password("s3cret");
        assert!(encoded.starts_with("$pbkdf2-sha256$i=100000$"));
        assert!(verify_password("s3cret", &encoded));
        assert!(!verify_password("s3cret ", &encoded));
        assert!(!verify_password("", &encoded));
        assert!(is_well_formed(&encoded));
    }

    #[test]
    fn salts_differ() {
        let a = hash_password_with_iterations("pw", 10);
        let b = hash_password_with_iterations("pw", 10);
        assert_ne!(a, b);
        assert!(verify_password("pw", &a) && verify_password("pw", &b));
    }

    #[test]
    fn known_vector_verifies() {
        // Computed independently with Python's hashlib.pbkdf2_hmac("sha256",
        // b"password", b"0123456789abcdef", 1000).
        let encoded = "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$\
                       hRRjgXWkW8ResfIvBP99J/T4vkgEmMRV/0tJTOjR59I";
        assert!(verify_password("password", encoded));
        assert!(!verify_password("Password", encoded));
    }

    #[test]
    fn malformed_encodings_never_verify() {
        let good = hash_password_with_iterations("pw", 10);
        let parts: Vec<&str> = good.split('$').collect();
        let (salt, hash) = (parts[3], parts[4]);
        let bad = [
            String::new(),
            "pw".to_string(),
            "$pbkdf2-sha256$".to_string(),
            format!("$pbkdf2-sha512$i=10${salt}${hash}"),
            format!("pbkdf2-sha256$i=10${salt}${hash}"),
            format!("$pbkdf2-sha256$10${salt}${hash}"),
            format!("$pbkdf2-sha256$i=${salt}${hash}"),
            format!("$pbkdf2-sha256$i=0${salt}${hash}"),
            format!("$pbkdf2-sha256$i=-5${salt}${hash}"),
            format!("$pbkdf2-sha256$i=+10${salt}${hash}"),
            format!("$pbkdf2-sha256$i=99999999999${salt}${hash}"),
            format!("$pbkdf2-sha256$i=10$!!!${hash}"),
            format!("$pbkdf2-sha256$i=10$${hash}"),
            format!("$pbkdf2-sha256$i=10${salt}$"),
            format!("$pbkdf2-sha256$i=10${salt}${}", &hash[..hash.len() - 2]),
            format!("$pbkdf2-sha256$i=10${salt}${hash}$"),
            format!("$pbkdf2-sha256$i=10${salt}${hash}="),
        ];
        for encoded in &bad {
            assert!(!verify_password("pw", encoded), "{encoded:?} verified");
            assert!(!is_well_formed(encoded), "{encoded:?} accepted");
        }
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
