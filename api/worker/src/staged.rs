//! `StagedValues`: the values one coming saga command needs — a boot's user and sealed envs, a
//! session's secrets — as the control plane handed them over the mutual-TLS value channel
//! (`StageValues`, ADR 0020), keyed by the command's idempotency key. The command on the bus
//! names the key; the command runner reads the values when it executes it and drops them once
//! its outcome is recorded. Entries expire after a few minutes and the map is bounded, so a
//! control plane that staged and then died leaves nothing behind for long.
//!
//! It must never write a value anywhere (disk, log, bus): the generated messages it holds zero
//! their value bytes on drop and print `[redacted]`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use osb_grpc::proto as wire;
use tonic::Status;

/// How long staged values wait for their command.
const TIME_TO_LIVE: Duration = Duration::from_secs(300);
/// Most entries held at once (a misbehaving caller cannot grow the map without bound).
const MAX_ENTRIES: usize = 4096;

/// Values staged for commands, by idempotency key.
#[derive(Default)]
pub struct StagedValues {
    entries: Mutex<HashMap<String, (Instant, wire::StageValuesRequest)>>,
}

impl std::fmt::Debug for StagedValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedValues").finish_non_exhaustive()
    }
}

impl StagedValues {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, wire::StageValuesRequest)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stages `request` under its key (replacing an earlier staging of that key).
    pub(crate) fn stage(&self, request: wire::StageValuesRequest) -> Result<(), Status> {
        if request.idempotency_key.is_empty() || request.idempotency_key.len() > 200 {
            return Err(Status::invalid_argument(
                "idempotency_key must name the command the values are for (1 to 200 characters)",
            ));
        }
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, (staged_at, _)| now.duration_since(*staged_at) < TIME_TO_LIVE);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&request.idempotency_key) {
            return Err(Status::resource_exhausted(
                "too many staged commands are waiting; retry when earlier ones have run",
            ));
        }
        entries.insert(request.idempotency_key.clone(), (now, request));
        Ok(())
    }

    /// A copy of what is staged under `key` (the copy zeroes itself when dropped), or `None`
    /// when nothing is (never staged, expired, or already used and dropped).
    pub(crate) fn get(&self, key: &str) -> Option<wire::StageValuesRequest> {
        let entries = self.lock();
        let (staged_at, request) = entries.get(key)?;
        (staged_at.elapsed() < TIME_TO_LIVE).then(|| request.clone())
    }

    /// Drops what is staged under `key` (its command's outcome is recorded).
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str) -> wire::StageValuesRequest {
        wire::StageValuesRequest {
            idempotency_key: key.into(),
            sandbox_id: "sbx_1".into(),
            user_envs: [("A".to_owned(), "b".to_owned())].into(),
            sealed_envs: Vec::new(),
            secrets: Vec::new(),
        }
    }

    #[test]
    fn staged_values_are_read_until_forgotten() {
        let staged = StagedValues::default();
        staged.stage(request("s:boot_sandbox:do")).unwrap();
        assert_eq!(staged.get("s:boot_sandbox:do").unwrap().user_envs["A"], "b");
        assert!(
            staged.get("s:boot_sandbox:do").is_some(),
            "reading keeps them"
        );
        staged.forget("s:boot_sandbox:do");
        assert!(staged.get("s:boot_sandbox:do").is_none());
        let refused = staged.stage(request("")).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    }
}
