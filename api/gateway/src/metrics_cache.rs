//! What `/metrics` reads from the store, cached (ADR 0027): the sandbox counts by status and the
//! number of unfinished sagas are read at most once per interval, however often it is scraped;
//! every other figure comes from in-memory counters. And the optional scrape key: when the
//! operator sets `OPENSANDBOX_METRICS_KEY`, a scrape must present it (`Authorization: Bearer`
//! or `X-API-Key`); only its SHA-256 is kept.
//!
//! It must never query the store per scrape, and never keep or print the scrape key itself.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use osb_store::{Store, StoreError};
use sha2::{Digest, Sha256};

/// The variable naming the scrape key.
pub const METRICS_KEY_ENV: &str = "OPENSANDBOX_METRICS_KEY";
/// How long store-derived figures are reused by default.
pub const DEFAULT_METRICS_TTL: Duration = Duration::from_secs(15);

/// Store-derived gauges at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreGauges {
    pub sandboxes_by_status: Vec<(String, u64)>,
    pub unfinished_sagas: u64,
}

/// The cache and the scrape key's hash.
pub struct MetricsCache {
    ttl: Duration,
    cached: Mutex<Option<(Instant, StoreGauges)>>,
    key_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for MetricsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCache")
            .field("ttl", &self.ttl)
            .field("protected", &self.key_hash.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for MetricsCache {
    fn default() -> Self {
        let key = std::env::var(METRICS_KEY_ENV)
            .ok()
            .filter(|key| !key.is_empty());
        Self::new(DEFAULT_METRICS_TTL, key.as_deref())
    }
}

impl MetricsCache {
    /// Reuses store figures for `ttl`; `key`, when given, protects the scrape.
    pub fn new(ttl: Duration, key: Option<&str>) -> Self {
        Self {
            ttl,
            cached: Mutex::new(None),
            key_hash: key.map(|key| Sha256::digest(key.as_bytes()).into()),
        }
    }

    /// Whether a scrape presenting `presented` may read the metrics.
    pub fn admits(&self, presented: Option<&str>) -> bool {
        let Some(expected) = self.key_hash else {
            return true;
        };
        let Some(presented) = presented else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare digests without an early exit.
        digest
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The store gauges, read from the store only when the cached ones are older than the ttl.
    pub async fn gauges(&self, store: &Store) -> Result<StoreGauges, StoreError> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, gauges)) = cached.as_ref() {
                if at.elapsed() < self.ttl {
                    return Ok(gauges.clone());
                }
            }
        }
        let gauges = StoreGauges {
            sandboxes_by_status: store.count_sandboxes_by_status().await?,
            unfinished_sagas: u64::try_from(store.list_unfinished_sagas().await?.len())
                .unwrap_or(u64::MAX),
        };
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), gauges.clone()));
        }
        Ok(gauges)
    }
}
