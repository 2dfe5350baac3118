//! Fan-out of a secret change: after a secret changes, every live sandbox of its project must
//! get the new value in its proxy session, under the same token — and after a delete, must
//! lose it (revocation is guaranteed, not best-effort). The vault decrypts once and hands the
//! value to a `SecretPusher` per sandbox (the worker gRPC link in production); the value never
//! leaves this function any other way.
//!
//! Delivery is retried in rounds (`delivery::DeliveryPolicy`) until every live sandbox
//! acknowledged (the pushes of a round run concurrently, at most `PUSHES_IN_FLIGHT` at once): a refused or failed push is tried again after a bounded backoff, a sandbox
//! that is no longer live is dropped and reported gone, and one that never answered is
//! reported unreachable with its last reason. Acknowledged means the worker holds this or a
//! newer version (or, for a removal, no longer holds the secret).

use std::collections::HashSet;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use osb_proto::{ProjectId, SandboxId, WorkerName};

use crate::delivery::DeliveryPolicy;
use crate::error::VaultError;
use crate::secret_value::SecretValue;
use crate::vault::Vault;

/// Pushes of one delivery round in flight at once (each is one RPC on the worker's link).
pub const PUSHES_IN_FLIGHT: usize = 32;

/// One secret's current state as pushed to a worker.
#[derive(Debug)]
pub struct SecretPush<'a> {
    pub name: &'a str,
    pub value: &'a SecretValue,
    pub version: u64,
    /// The secret's own allowed hosts; empty means "the sandbox's egress allowlist".
    pub allowed_hosts: &'a [String],
}

/// Delivers a value to the worker that hosts a sandbox.
#[async_trait]
pub trait SecretPusher: Send + Sync {
    /// Pushes the secret's current value and allowed hosts to `sandbox` on `worker`. Returns
    /// whether the worker applied it (false: it already held this or a newer version, or it
    /// has no session for the sandbox yet). An error means "not acknowledged": it is retried.
    async fn push(
        &self,
        worker: &WorkerName,
        sandbox: SandboxId,
        secret: &SecretPush<'_>,
    ) -> Result<bool, String>;

    /// Removes the secret from the sandbox's session: its token is refused from then on.
    /// Returns whether the session held it. An error is retried.
    async fn remove(
        &self,
        worker: &WorkerName,
        sandbox: SandboxId,
        name: &str,
    ) -> Result<bool, String>;
}

/// What a fan-out did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanoutReport {
    /// Sandboxes whose session now holds the change.
    pub refreshed: u64,
    /// Sandboxes whose worker already had this or a newer version (or no such secret).
    pub already_current: u64,
    /// Sandboxes that stopped being live while delivery was retried (nothing to deliver).
    pub gone: Vec<SandboxId>,
    /// Sandboxes that never acknowledged within the policy's rounds: (sandbox, last reason).
    /// Their worker re-registers their session from the vault when it is reachable again.
    pub failed: Vec<(SandboxId, String)>,
    /// Push attempts made in all (retries included).
    pub attempts: u64,
}

/// The change being delivered.
enum Change<'a> {
    Push(SecretPush<'a>),
    Remove(&'a str),
}

impl Vault {
    /// Pushes the current value of `name` to every live sandbox of `project` (running, or
    /// being created on a known worker), retrying until each acknowledged.
    pub async fn fan_out_secret(
        &self,
        project: ProjectId,
        name: &str,
        pusher: &dyn SecretPusher,
        policy: DeliveryPolicy,
    ) -> Result<FanoutReport, VaultError> {
        let Some((record, value)) = self.reveal_secret(project, name).await? else {
            return Ok(FanoutReport::default());
        };
        let push = SecretPush {
            name,
            value: &value,
            version: record.secret_version,
            allowed_hosts: record.allowed_hosts.as_deref().unwrap_or(&[]),
        };
        self.deliver(project, &Change::Push(push), pusher, policy)
            .await
    }

    /// Removes a deleted secret from every live sandbox of `project`, retrying until each
    /// acknowledged: `refreshed` counts the sessions that held it.
    pub async fn fan_out_removal(
        &self,
        project: ProjectId,
        name: &str,
        pusher: &dyn SecretPusher,
        policy: DeliveryPolicy,
    ) -> Result<FanoutReport, VaultError> {
        self.deliver(project, &Change::Remove(name), pusher, policy)
            .await
    }

    async fn deliver(
        &self,
        project: ProjectId,
        change: &Change<'_>,
        pusher: &dyn SecretPusher,
        policy: DeliveryPolicy,
    ) -> Result<FanoutReport, VaultError> {
        let mut report = FanoutReport::default();
        let mut waiting: Vec<(SandboxId, WorkerName)> = self.live_targets(project).await?;
        let mut last_reason: Vec<(SandboxId, String)> = Vec::new();
        let mut round = 0;
        while !waiting.is_empty() {
            let Some(backoff) = policy.backoff_before(round) else {
                break;
            };
            if round > 0 {
                tokio::time::sleep(backoff).await;
                // A sandbox destroyed meanwhile has nothing left to deliver to.
                let live: HashSet<SandboxId> = self
                    .live_targets(project)
                    .await?
                    .into_iter()
                    .map(|(sandbox, _)| sandbox)
                    .collect();
                let (still, gone): (Vec<_>, Vec<_>) = waiting
                    .into_iter()
                    .partition(|(sandbox, _)| live.contains(sandbox));
                report
                    .gone
                    .extend(gone.into_iter().map(|(sandbox, _)| sandbox));
                waiting = still;
            }
            last_reason.clear();
            let mut retry = Vec::new();
            report.attempts += waiting.len() as u64;
            // Pushes of one round run side by side (bounded): a round costs about the slowest
            // worker's answer, not the sum of every sandbox's.
            let attempts: Vec<_> = stream::iter(waiting)
                .map(|(sandbox, worker)| async move {
                    let attempt = match change {
                        Change::Push(push) => pusher.push(&worker, sandbox, push).await,
                        Change::Remove(name) => pusher.remove(&worker, sandbox, name).await,
                    };
                    (sandbox, worker, attempt)
                })
                .buffer_unordered(PUSHES_IN_FLIGHT)
                .collect()
                .await;
            for (sandbox, worker, attempt) in attempts {
                match attempt {
                    Ok(true) => report.refreshed += 1,
                    Ok(false) => report.already_current += 1,
                    Err(reason) => {
                        tracing::debug!(%sandbox, %worker, round, reason, "secret change not acknowledged; retrying");
                        last_reason.push((sandbox, reason));
                        retry.push((sandbox, worker));
                    }
                }
            }
            waiting = retry;
            round += 1;
        }
        report.failed = last_reason
            .into_iter()
            .filter(|(sandbox, _)| waiting.iter().any(|(left, _)| left == sandbox))
            .collect();
        Ok(report)
    }

    async fn live_targets(
        &self,
        project: ProjectId,
    ) -> Result<Vec<(SandboxId, WorkerName)>, VaultError> {
        Ok(self
            .store()
            .list_live_sandboxes_of_project(project)
            .await?
            .into_iter()
            .filter_map(|sandbox| sandbox.worker_id.map(|worker| (sandbox.id, worker)))
            .collect())
    }
}
