//! Fan-out of a secret update: after a secret changes, every running sandbox of its project
//! must get the new value in its proxy session, under the same token. The vault decrypts once
//! and hands the value to a `SecretPusher` per sandbox (the worker gRPC link in production);
//! the value never leaves this function any other way. Failures are collected, not fatal: one
//! unreachable worker must not keep the others on the old value.

use async_trait::async_trait;
use osb_proto::{ProjectId, SandboxId, WorkerName};

use crate::error::VaultError;
use crate::secret_value::SecretValue;
use crate::vault::Vault;

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
    /// has no session for the sandbox yet).
    async fn push(
        &self,
        worker: &WorkerName,
        sandbox: SandboxId,
        secret: &SecretPush<'_>,
    ) -> Result<bool, String>;

    /// Removes the secret from the sandbox's session: its token is refused from then on.
    /// Returns whether the session held it.
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
    /// Sandboxes whose session now holds the new value.
    pub refreshed: u64,
    /// Sandboxes whose worker already had this or a newer version.
    pub already_current: u64,
    /// Sandboxes that could not be reached: (sandbox, reason). Retried by the next update or a
    /// session re-registration.
    pub failed: Vec<(SandboxId, String)>,
}

impl Vault {
    /// Pushes the current value of `name` to every live sandbox of `project` (running, or
    /// being created on a known worker).
    pub async fn fan_out_secret(
        &self,
        project: ProjectId,
        name: &str,
        pusher: &dyn SecretPusher,
    ) -> Result<FanoutReport, VaultError> {
        let mut report = FanoutReport::default();
        let Some((record, value)) = self.reveal_secret(project, name).await? else {
            return Ok(report);
        };
        for sandbox in self.store().list_live_sandboxes_of_project(project).await? {
            let Some(worker) = sandbox.worker_id.as_ref() else {
                continue;
            };
            let push = SecretPush {
                name,
                value: &value,
                version: record.secret_version,
                allowed_hosts: record.allowed_hosts.as_deref().unwrap_or(&[]),
            };
            match pusher.push(worker, sandbox.id, &push).await {
                Ok(true) => report.refreshed += 1,
                Ok(false) => report.already_current += 1,
                Err(reason) => report.failed.push((sandbox.id, reason)),
            }
        }
        Ok(report)
    }
}

impl Vault {
    /// Removes a deleted secret from every live sandbox of `project`: `refreshed` counts the
    /// sessions that held it.
    pub async fn fan_out_removal(
        &self,
        project: ProjectId,
        name: &str,
        pusher: &dyn SecretPusher,
    ) -> Result<FanoutReport, VaultError> {
        let mut report = FanoutReport::default();
        for sandbox in self.store().list_live_sandboxes_of_project(project).await? {
            let Some(worker) = sandbox.worker_id.as_ref() else {
                continue;
            };
            match pusher.remove(worker, sandbox.id, name).await {
                Ok(true) => report.refreshed += 1,
                Ok(false) => report.already_current += 1,
                Err(reason) => report.failed.push((sandbox.id, reason)),
            }
        }
        Ok(report)
    }
}
