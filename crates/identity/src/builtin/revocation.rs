//! Revoked tokens. Tokens are stateless, so `DELETE /v3/auth/tokens` can only
//! work by remembering the audit ids of revoked tokens until they would have
//! expired anyway. The list lives in memory: a restart forgets revocations,
//! which is acceptable for the single-node builtin mode.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct RevocationList {
    /// audit id → the revoked token's expiry (Unix seconds).
    revoked: Mutex<HashMap<String, i64>>,
}

impl RevocationList {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // A panic elsewhere while holding the lock leaves the map intact.
        self.revoked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Revokes until `expires_at`, dropping entries that have expired since:
    /// the list never holds more than the tokens revoked within one TTL.
    pub(crate) fn revoke(&self, audit_id: &str, expires_at: i64, now: i64) {
        let mut entries = self.entries();
        entries.retain(|_, until| *until > now);
        if expires_at > now {
            entries.insert(audit_id.to_string(), expires_at);
        }
    }

    pub(crate) fn is_revoked(&self, audit_id: &str) -> bool {
        self.entries().contains_key(audit_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_pruned() {
        let list = RevocationList::default();
        list.revoke("a", 100, 50);
        assert!(list.is_revoked("a"));
        list.revoke("b", 300, 200);
        assert!(!list.is_revoked("a"));
        assert!(list.is_revoked("b"));
        list.revoke("c", 100, 200);
        assert!(!list.is_revoked("c"));
    }
}
