//! A short-lived cache of API-key lookups (issue 17, ADR 0033): the key's *hash* → its stored
//! record, so a busy client costs one store query per key per `ttl` instead of one per request.
//!
//! Revocation stays honoured: a revoke or rotate through this gateway forgets the key at once;
//! one made elsewhere (another gateway, `osbd admin keys revoke`) takes effect here within `ttl`
//! (1 s by default). Expiry is checked against the cached `expires_at` on every request, so it
//! is exact. Only keys the store knows are cached (an unknown hash is looked up every time: a
//! caller spraying random keys cannot fill the cache), and the cache holds at most `capacity`
//! entries. It must never hold a key itself — only its SHA-256 — and never serve an entry older
//! than `ttl`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use osb_store::ApiKeyRecord;

/// How long a looked-up key is trusted without asking the store again.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most keys held at once.
pub const DEFAULT_KEY_CACHE_CAPACITY: usize = 4096;

/// Hash → (record, when it was read).
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (ApiKeyRecord, Instant)>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(DEFAULT_KEY_CACHE_TTL, DEFAULT_KEY_CACHE_CAPACITY)
    }
}

impl KeyCache {
    /// A cache trusting entries for `ttl`, holding at most `capacity` (a zero `ttl` or
    /// `capacity` turns it off).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The record of `hash` read less than `ttl` before `now`, if any.
    pub fn get(&self, hash: &str, now: Instant) -> Option<ApiKeyRecord> {
        let entries = self.lock();
        let (record, read_at) = entries.get(hash)?;
        (now.saturating_duration_since(*read_at) < self.ttl).then(|| record.clone())
    }

    /// Remembers what the store said of `hash` at `read_at` (taken *before* the query, so an
    /// entry is never trusted longer than `ttl` after the store was asked).
    pub fn put(&self, hash: String, record: ApiKeyRecord, read_at: Instant) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            // Full: drop what has expired; if nothing has, drop everything (a refill costs one
            // query per live key, and the bound on memory is what matters).
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| read_at.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(hash, (record, read_at));
    }

    /// Forgets the key with this id (revoked or rotated through this gateway).
    pub fn forget(&self, key_id: uuid::Uuid) {
        self.lock().retain(|_, (record, _)| record.id != key_id);
    }

    /// How many keys are held (metrics, tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ApiKeyRecord, Instant)>> {
        // A panic while holding the lock cannot leave an entry half-written: recover the map.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use osb_proto::OrgId;

    fn record(id: uuid::Uuid) -> ApiKeyRecord {
        ApiKeyRecord {
            id,
            org_id: OrgId::new(),
            name: "k".into(),
            key_prefix: "osk_123456".into(),
            created_at: Utc::now(),
            revoked_at: None,
            scope: "admin".into(),
            expires_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn entries_are_served_only_within_the_ttl() {
        let cache = KeyCache::new(Duration::from_secs(1), 8);
        let start = Instant::now();
        let id = uuid::Uuid::new_v4();
        cache.put("h".into(), record(id), start);
        assert_eq!(cache.get("h", start).map(|r| r.id), Some(id));
        assert!(cache.get("h", start + Duration::from_millis(999)).is_some());
        assert!(cache.get("h", start + Duration::from_secs(1)).is_none());
        assert!(cache.get("other", start).is_none());
    }

    #[test]
    fn forgetting_a_key_id_drops_its_entry_at_once() {
        let cache = KeyCache::new(Duration::from_secs(60), 8);
        let now = Instant::now();
        let (kept, revoked) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        cache.put("a".into(), record(kept), now);
        cache.put("b".into(), record(revoked), now);
        cache.forget(revoked);
        assert!(cache.get("b", now).is_none());
        assert!(cache.get("a", now).is_some());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = KeyCache::new(Duration::from_secs(60), 4);
        let now = Instant::now();
        for n in 0..50 {
            cache.put(format!("h{n}"), record(uuid::Uuid::new_v4()), now);
            assert!(cache.len() <= 4);
        }
        assert!(cache.get("h49", now).is_some());
    }

    #[test]
    fn a_zero_ttl_turns_the_cache_off() {
        let cache = KeyCache::new(Duration::ZERO, 8);
        let now = Instant::now();
        cache.put("h".into(), record(uuid::Uuid::new_v4()), now);
        assert!(cache.is_empty());
        assert!(cache.get("h", now).is_none());
    }
}
