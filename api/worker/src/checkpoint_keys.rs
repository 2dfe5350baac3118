//! Which checkpoint each idempotency key produced (and its size on disk), so a replayed
//! checkpoint step returns the checkpoint its first run made instead of copying the layer
//! again. Kept in memory: a worker
//! that restarts has lost its sandboxes too, so a replay after a restart fails cleanly and the
//! saga unwinds. Bounded, oldest forgotten first. Also the lock that keeps a layer from being
//! removed while a restore or fork copies it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use osb_proto::CheckpointId;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many keys are remembered.
const REMEMBERED: usize = 4096;

#[derive(Debug, Default)]
struct Keys {
    by_key: HashMap<String, Made>,
    order: VecDeque<String>,
}

/// What one checkpoint call made: the checkpoint and the bytes it takes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Made {
    pub checkpoint: CheckpointId,
    pub size_bytes: u64,
}

/// `idempotency key → checkpoint made`, plus a lock that serialises checkpoint calls so two
/// concurrent replays of one key cannot both copy.
#[derive(Debug, Default)]
pub(crate) struct CheckpointKeys {
    keys: Mutex<Keys>,
    calls: AsyncMutex<()>,
    layers: RwLock<()>,
}

impl CheckpointKeys {
    /// Held for the duration of one checkpoint call.
    pub(crate) async fn serialise(&self) -> MutexGuard<'_, ()> {
        self.calls.lock().await
    }

    /// Held while a restore or fork reads checkpoint layers (many at once).
    pub(crate) async fn reading_layers(&self) -> RwLockReadGuard<'_, ()> {
        self.layers.read().await
    }

    /// Held while a checkpoint's layer is removed (alone).
    pub(crate) async fn removing_layer(&self) -> RwLockWriteGuard<'_, ()> {
        self.layers.write().await
    }

    /// The checkpoint an earlier call with `key` made.
    pub(crate) fn get(&self, key: &str) -> Option<Made> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_key
            .get(key)
            .copied()
    }

    /// Forgets every key that made `checkpoint` (it was deleted: a replay must copy again).
    pub(crate) fn forget_checkpoint(&self, checkpoint: CheckpointId) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.by_key.retain(|_, made| made.checkpoint != checkpoint);
        let Keys { by_key, order } = &mut *keys;
        order.retain(|key| by_key.contains_key(key));
    }

    /// Remembers what `key` made.
    pub(crate) fn remember(&self, key: String, made: Made) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.by_key.insert(key.clone(), made).is_none() {
            keys.order.push_back(key);
        }
        while keys.order.len() > REMEMBERED {
            if let Some(oldest) = keys.order.pop_front() {
                keys.by_key.remove(&oldest);
            }
        }
    }
}
