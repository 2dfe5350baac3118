//! One command key runs once at a time: a redelivery that arrives while its first delivery is
//! still executing waits for it, then finds its record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Async locks by key; unused entries are pruned as new keys are locked.
#[derive(Debug, Default)]
pub(crate) struct KeyLocks {
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

impl KeyLocks {
    pub(crate) async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Only the map holds an unused lock.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(key.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}
