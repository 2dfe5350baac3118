//! `last_used_at` of API keys, batched (ADR 0026): a request notes its key's use in memory; at
//! most once per interval the noted uses go to the store in one batch, off the request's path.
//! `flush` writes what is pending at once (shutdown, tests).
//!
//! It must never write per request, and never hold a key — only key ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use osb_store::{Store, StoreError};

/// How often noted uses are written by default.
pub const DEFAULT_KEY_USE_FLUSH: Duration = Duration::from_secs(30);

/// Pending key uses and when they were last written.
#[derive(Debug)]
pub struct KeyUsage {
    interval: Duration,
    pending: Mutex<HashMap<uuid::Uuid, DateTime<Utc>>>,
    last_flush: Mutex<Option<Instant>>,
    batches: AtomicU64,
}

impl Default for KeyUsage {
    fn default() -> Self {
        Self::new(DEFAULT_KEY_USE_FLUSH)
    }
}

impl KeyUsage {
    /// Writes noted uses at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            pending: Mutex::new(HashMap::new()),
            last_flush: Mutex::new(None),
            batches: AtomicU64::new(0),
        }
    }

    /// Notes that key `id` was used at `now`; when a batch is due, spawns its write.
    pub fn touch(&self, store: &Store, id: uuid::Uuid, now: DateTime<Utc>) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, now);
        }
        if !self.due() {
            return;
        }
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.record_api_key_use(&batch).await {
                tracing::warn!(error = %error, keys = batch.len(), "api key use not recorded");
            }
        });
    }

    /// Writes every pending use now.
    pub async fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let batch = self.take();
        if batch.is_empty() {
            return Ok(());
        }
        store.record_api_key_use(&batch).await
    }

    /// How many batches were taken for writing (tests compare it with the request count).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    fn due(&self) -> bool {
        let Ok(mut last) = self.last_flush.lock() else {
            return false;
        };
        let due = last.is_none_or(|at| at.elapsed() >= self.interval);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    fn take(&self) -> Vec<(uuid::Uuid, DateTime<Utc>)> {
        let batch: Vec<_> = self
            .pending
            .lock()
            .map(|mut pending| pending.drain().collect())
            .unwrap_or_default();
        if !batch.is_empty() {
            self.batches.fetch_add(1, Ordering::Relaxed);
        }
        batch
    }
}
