//! The runtime's table of live sandboxes: each behind its own async lock (operations on one
//! sandbox are serialised; different sandboxes proceed in parallel), the table itself behind a
//! short synchronous lock that is never held across an await. Shared by the isolating runtimes.
//! This module must never run sandbox operations itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use osb_proto::SandboxId;

use crate::error::RuntimeError;

/// One sandbox's slot in the table.
pub(crate) type Entry<S> = Arc<tokio::sync::Mutex<S>>;

/// Live sandboxes by id.
pub(crate) struct SandboxTable<S> {
    entries: Mutex<HashMap<SandboxId, Entry<S>>>,
}

impl<S> Default for SandboxTable<S> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<S> SandboxTable<S> {
    /// The sandbox, or `UnknownSandbox`.
    pub(crate) fn get(&self, id: SandboxId) -> Result<Entry<S>, RuntimeError> {
        self.entries
            .lock()
            .ok()
            .and_then(|map| map.get(&id).cloned())
            .ok_or(RuntimeError::UnknownSandbox(id))
    }

    /// Adds a created sandbox.
    pub(crate) fn insert(&self, id: SandboxId, sandbox: S) -> Result<(), RuntimeError> {
        let mut map = self.entries.lock().map_err(|_| RuntimeError::Setup {
            step: "registering the sandbox",
            detail: "the sandbox table lock is poisoned; restart the worker".into(),
        })?;
        map.insert(id, Arc::new(tokio::sync::Mutex::new(sandbox)));
        Ok(())
    }

    /// Takes a sandbox out (for destroy); None when unknown.
    pub(crate) fn remove(&self, id: SandboxId) -> Option<Entry<S>> {
        self.entries.lock().ok().and_then(|mut map| map.remove(&id))
    }

    /// Every live id (for shutdown).
    pub(crate) fn ids(&self) -> Vec<SandboxId> {
        self.entries
            .lock()
            .map(|map| map.keys().copied().collect())
            .unwrap_or_default()
    }
}
