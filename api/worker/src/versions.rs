//! Secret versions a worker holds per sandbox, so a delayed or replayed update never rolls a
//! value back (updates may arrive out of order when several control planes fan out).

use std::collections::HashMap;
use std::sync::Mutex;

use osb_proto::SandboxId;

/// `(sandbox, secret name) → version`.
#[derive(Debug, Default)]
pub(crate) struct SecretVersions(Mutex<HashMap<(SandboxId, String), u64>>);

impl SecretVersions {
    /// Records `version` if it is newer than what is held; returns whether it was.
    pub(crate) fn advance(&self, sandbox: SandboxId, name: &str, version: u64) -> bool {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry((sandbox, name.to_owned())).or_insert(0);
        if version > *entry || (version == 0 && *entry == 0) {
            *entry = version;
            true
        } else {
            false
        }
    }

    /// Sets a version unconditionally (session registration).
    pub(crate) fn set(&self, sandbox: SandboxId, name: &str, version: u64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert((sandbox, name.to_owned()), version);
    }

    /// Forgets one secret, or every secret of a sandbox.
    pub(crate) fn forget(&self, sandbox: SandboxId, name: Option<&str>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|(id, secret), _| *id != sandbox || name.is_some_and(|name| name != secret));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_newer_versions_advance() {
        let versions = SecretVersions::default();
        let sandbox = SandboxId::new();
        versions.set(sandbox, "A", 2);
        assert!(!versions.advance(sandbox, "A", 1));
        assert!(!versions.advance(sandbox, "A", 2));
        assert!(versions.advance(sandbox, "A", 3));
        versions.forget(sandbox, Some("A"));
        assert!(versions.advance(sandbox, "A", 1));
        versions.forget(sandbox, None);
        assert!(versions.advance(sandbox, "A", 1));
    }
}
