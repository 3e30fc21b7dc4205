//! Validated tokens, so most requests cost no Keystone round trip.
//!
//! Keys are SHA-256 digests of the tokens: the cache never holds usable
//! credentials and every key has the same small size.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use neutrino_model::AuthContext;
use sha2::{Digest, Sha256};

pub(crate) type CacheKey = [u8; 32];

/// What Keystone said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    Valid(AuthContext),
    /// Keystone does not know the token; remembered only briefly.
    Invalid,
}

#[derive(Debug)]
struct Entry {
    outcome: Cached,
    /// Unix seconds; the entry is dropped from this instant on.
    until: i64,
}

/// A bounded map of token digests to outcomes with per-entry expiry.
#[derive(Debug)]
pub(crate) struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn key(token: &str) -> CacheKey {
        Sha256::digest(token.as_bytes()).into()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<CacheKey, Entry>> {
        // A panic elsewhere while holding the lock leaves the map intact.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The outcome for `key` if one is remembered and still current.
    pub(crate) fn get(&self, key: &CacheKey, now: i64) -> Option<Cached> {
        let mut entries = self.entries();
        match entries.get(key) {
            Some(entry) if entry.until > now => Some(entry.outcome.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `outcome` until `until`. When full, expired entries go
    /// first, then the entry closest to expiry (it would be dropped soonest anyway).
    pub(crate) fn insert(&self, key: CacheKey, outcome: Cached, until: i64, now: i64) {
        if self.capacity == 0 || until <= now {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| entry.until > now);
            while entries.len() >= self.capacity {
                let Some(soonest) = entries.iter().min_by_key(|(_, e)| e.until).map(|(k, _)| *k)
                else {
                    break;
                };
                entries.remove(&soonest);
            }
        }
        entries.insert(key, Entry { outcome, until });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        [n; 32]
    }

    #[test]
    fn entries_expire() {
        let cache = TokenCache::new(10);
        cache.insert(key(1), Cached::Invalid, 100, 50);
        assert_eq!(cache.get(&key(1), 99), Some(Cached::Invalid));
        assert_eq!(cache.get(&key(1), 100), None);
        assert_eq!(cache.len(), 0);
        cache.insert(key(2), Cached::Invalid, 100, 100);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded_evicting_expired_then_soonest() {
        let cache = TokenCache::new(3);
        cache.insert(key(1), Cached::Invalid, 110, 0);
        cache.insert(key(2), Cached::Invalid, 500, 0);
        cache.insert(key(3), Cached::Invalid, 300, 0);
        // At t=120 entry 1 has expired: it goes, the others stay.
        cache.insert(key(4), Cached::Invalid, 400, 120);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&key(2), 120).is_some() && cache.get(&key(3), 120).is_some());
        // Nothing expired: the one expiring soonest (3) goes.
        cache.insert(key(5), Cached::Invalid, 450, 130);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&key(3), 130).is_none());
        assert!(cache.get(&key(4), 130).is_some());
        // Replacing an existing key never evicts.
        cache.insert(key(5), Cached::Invalid, 460, 130);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = TokenCache::new(0);
        cache.insert(key(1), Cached::Invalid, 100, 0);
        assert_eq!(cache.get(&key(1), 0), None);
    }

    #[test]
    fn keys_are_digests() {
        assert_eq!(TokenCache::key("a"), TokenCache::key("a"));
        assert_ne!(TokenCache::key("a"), TokenCache::key("b"));
    }
}
