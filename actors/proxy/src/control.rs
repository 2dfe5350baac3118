//! `SessionControl`: the pure, synchronous core behind `ProxyActor`. It turns the worker's
//! control commands into registry changes with the semantics a replayed saga step needs:
//! registering replaces the sandbox's session, removing what is gone reports `existed: false`,
//! and a secret update applies only when its version is newer (`versions::decide`, inside the
//! registry's writer lock). Versions live in the session snapshots themselves, so the state this
//! core needs survives an actor restart by construction: the registry is shared with the data
//! plane and outlives the actor. It never prints a value and holds no state of its own.

use std::sync::Arc;

use osb_proto::{HostPattern, SandboxId};

use crate::registry::{RegistryError, SecretUpdate, SessionRegistry};
use crate::session::SessionSpec;

/// The core; cheap to clone (it is a handle on the shared registry).
#[derive(Debug, Clone)]
pub struct SessionControl {
    registry: Arc<SessionRegistry>,
}

impl SessionControl {
    pub fn new(registry: Arc<SessionRegistry>) -> Self {
        Self { registry }
    }

    /// Opens the sandbox's session, replacing any session it had (a replayed step, a restore).
    /// Returns how many secrets the session holds.
    pub fn register(&self, spec: SessionSpec) -> Result<usize, RegistryError> {
        let session = self.registry.register(spec)?;
        Ok(session.secrets().count())
    }

    /// Applies a versioned secret update. `Ok(false)`: this or a newer version is held.
    pub fn update_secret(
        &self,
        sandbox_id: SandboxId,
        update: SecretUpdate,
    ) -> Result<bool, RegistryError> {
        self.registry.update_secret_versioned(sandbox_id, update)
    }

    /// Removes a secret; returns whether the session held it (a missing session counts as not).
    pub fn remove_secret(&self, sandbox_id: SandboxId, name: &str) -> Result<bool, RegistryError> {
        match self.registry.remove_secret(sandbox_id, name) {
            Ok(()) => Ok(true),
            Err(RegistryError::UnknownSecret { .. } | RegistryError::UnknownSandbox(_)) => {
                Ok(false)
            }
            Err(other) => Err(other),
        }
    }

    /// Replaces the session's egress allowlist; returns whether the sandbox has a session.
    pub fn set_egress_allowlist(
        &self,
        sandbox_id: SandboxId,
        allowlist: Vec<HostPattern>,
    ) -> Result<bool, RegistryError> {
        match self.registry.set_egress_allowlist(sandbox_id, allowlist) {
            Ok(()) => Ok(true),
            Err(RegistryError::UnknownSandbox(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Closes the session; returns whether there was one.
    pub fn unregister(&self, sandbox_id: SandboxId) -> Result<bool, RegistryError> {
        match self.registry.unregister(sandbox_id) {
            Ok(()) => Ok(true),
            Err(RegistryError::UnknownSandbox(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The shared registry (for the few changes that need no idempotence mapping).
    pub fn registry(&self) -> &SessionRegistry {
        &self.registry
    }

    /// Sandboxes with a session, sorted.
    pub fn sandbox_ids(&self) -> Vec<SandboxId> {
        self.registry.sandbox_ids()
    }

    /// The version a session holds for a secret (what a restarted actor resyncs from).
    pub fn version_of(&self, sandbox_id: SandboxId, name: &str) -> Option<u64> {
        self.registry
            .session_of(sandbox_id)?
            .secret_named(name)
            .map(|secret| secret.version)
    }
}

#[cfg(test)]
mod tests;
