//! Self-contained signed tokens for builtin mode.
//!
//! A token is `base64url(json claims) "." base64url(HMAC-SHA256(key, json))`.
//! Nothing is stored server side, so any Neutrino process holding the key can
//! validate a token and restarts do not log anyone out. The JSON uses one-letter
//! keys and omits the usual `["password"]` method so a typical token stays
//! under 255 bytes (some clients and proxies store tokens in short columns).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token [`TokenSigner::verify`] looks at; longer input is garbage
/// and is rejected before any decoding work.
const MAX_TOKEN_LEN: usize = 4096;

/// What a token asserts. Signed, not encrypted: clients can read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    #[serde(rename = "u")]
    pub user_id: String,
    /// The project the token is scoped to.
    #[serde(rename = "p")]
    pub project_id: String,
    /// Role names as configured (mapped to policy roles when used).
    #[serde(rename = "r")]
    pub roles: Vec<String>,
    /// Unix seconds.
    #[serde(rename = "i")]
    pub issued_at: i64,
    /// Unix seconds; the token is invalid from this instant on.
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// Random id shared by nothing else: what revocation keys on.
    #[serde(rename = "a")]
    pub audit_id: String,
    /// Authentication methods used to obtain the token (`password`, `token`).
    #[serde(
        rename = "m",
        default = "password_only",
        skip_serializing_if = "is_password_only"
    )]
    pub methods: Vec<String>,
}

fn password_only() -> Vec<String> {
    vec!["password".to_string()]
}

fn is_password_only(methods: &[String]) -> bool {
    methods.len() == 1 && methods[0] == "password"
}

/// A fresh audit id in Keystone's format: 16 random bytes, base64url, 22 chars.
pub fn new_audit_id() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token has expired")]
    Expired,
}

/// Issues and verifies tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSigner {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { .. }")
    }
}

impl TokenSigner {
    pub fn new(key: [u8; 32]) -> TokenSigner {
        TokenSigner { key }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        match <HmacSha256 as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }

    /// Serialises and signs `claims`.
    pub fn issue(&self, claims: &TokenClaims) -> String {
        // Serialising plain strings and integers cannot fail; an empty payload
        // (which would never verify) is the harmless fallback.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&json);
        let signature = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// Checks format, signature and expiry against the current time.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        self.verify_at(token, neutrino_model::time::now_unix())
    }

    /// [`TokenSigner::verify`] at a given Unix time.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<TokenClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&json);
        // verify_slice compares in constant time.
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        // Only authenticated bytes reach the JSON parser.
        let claims: TokenClaims =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> TokenClaims {
        TokenClaims {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            project_id: "fedcba9876543210fedcba9876543210".into(),
            roles: vec!["member".into()],
            issued_at: now,
            expires_at: now + 3600,
            audit_id: new_audit_id(),
            methods: vec!["password".into()],
        }
    }

    #[test]
    fn round_trip() {
        let signer = TokenSigner::new([7; 32]);
        let c = claims(1_785_578_400);
        let token = signer.issue(&c);
        assert_eq!(signer.verify_at(&token, 1_785_578_401), Ok(c));
    }

    #[test]
    fn typical_token_is_short() {
        let signer = TokenSigner::new([7; 32]);
        let mut c = claims(1_785_578_400);
        assert!(signer.issue(&c).len() < 255, "{}", signer.issue(&c).len());
        c.roles = vec!["admin".into()];
        assert!(signer.issue(&c).len() < 255);
        assert_eq!(new_audit_id().len(), 22);
    }

    #[test]
    fn non_default_methods_survive() {
        let signer = TokenSigner::new([7; 32]);
        let mut c = claims(100);
        c.methods = vec!["token".into(), "password".into()];
        let token = signer.issue(&c);
        assert_eq!(
            signer.verify_at(&token, 101).map(|c| c.methods),
            Ok(c.methods)
        );
    }

    #[test]
    fn expired_is_rejected() {
        let signer = TokenSigner::new([7; 32]);
        let c = claims(100);
        let token = signer.issue(&c);
        assert_eq!(
            signer.verify_at(&token, c.expires_at),
            Err(TokenError::Expired)
        );
        assert!(signer.verify_at(&token, c.expires_at - 1).is_ok());
    }

    #[test]
    fn tampering_is_detected() {
        let signer = TokenSigner::new([7; 32]);
        let token = signer.issue(&claims(100));
        let (payload, signature) = token.split_once('.').unwrap();

        // Forge a payload with admin rights, keep the old signature.
        let mut forged = claims(100);
        forged.roles = vec!["admin".into()];
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            signer.verify_at(&format!("{forged_payload}.{signature}"), 101),
            Err(TokenError::BadSignature)
        );

        // Flip one signature character.
        let mut sig = signature.to_string();
        let last = if sig.ends_with('A') { "B" } else { "A" };
        sig.replace_range(sig.len() - 1.., last);
        assert!(signer.verify_at(&format!("{payload}.{sig}"), 101).is_err());

        // Another key.
        assert_eq!(
            TokenSigner::new([8; 32]).verify_at(&token, 101),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let signer = TokenSigner::new([7; 32]);
        for token in ["", ".", "abc", "a.b.c", "!!.??", &"a".repeat(5000)] {
            assert!(signer.verify_at(token, 0).is_err(), "{token:?}");
        }
        // Signed but not claims.
        let mut mac = signer.mac();
        mac.update(b"[]");
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(b"[]"),
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(signer.verify_at(&token, 0), Err(TokenError::Malformed));
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(
            format!("{:?}", TokenSigner::new([1; 32])),
            "TokenSigner { .. }"
        );
    }
}
