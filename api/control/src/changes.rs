//! Project changes reaching running sandboxes, as the gateway asks for them after committing a
//! write: a secret set or deleted goes through the supervised `SecretVaultActor`, an allowlist
//! change through the `ProjectActor`; both push over the worker links. Also the figures the
//! gateway's `/metrics` shows. This is the gateway's whole door to the actors and the links.
//!
//! Failures are logged and counted, never returned: the write is committed, and an unreachable
//! worker's sandboxes cannot use any value until it is back (it then re-registers from the
//! vault). Nothing here sees a value: the vault actor reads it and hands it to the link.

use osb_proto::{OrgId, ProjectId};
use osb_vault::{FanOutRemoval, FanOutSecret};

use super::metrics::ControlMetrics;
use super::sandboxes::SandboxService;

impl SandboxService {
    /// Pushes a changed secret (or removes a deleted one, `removed`) to every live sandbox of
    /// the project. Returns how many sandboxes now hold the change.
    pub async fn fan_out_secret(&self, project: ProjectId, name: &str, removed: bool) -> u64 {
        let actor = &self.plane().secret_vault;
        let report = if removed {
            actor
                .send(FanOutRemoval {
                    project,
                    name: name.to_owned(),
                })
                .await
        } else {
            actor
                .send(FanOutSecret {
                    project,
                    name: name.to_owned(),
                })
                .await
        };
        let report = match report {
            Ok(report) => report,
            Err(mailbox) => {
                tracing::warn!(secret = name, error = %mailbox, "the secret vault actor is unavailable");
                return 0;
            }
        };
        match report {
            Ok(report) => {
                let metrics = self.metrics();
                ControlMetrics::bump(&metrics.fanout_refreshed, report.refreshed);
                ControlMetrics::bump(&metrics.fanout_failed, report.failed.len() as u64);
                for (sandbox, reason) in &report.failed {
                    tracing::warn!(%sandbox, secret = name, reason, attempts = report.attempts, "secret change did not reach a sandbox after every retry");
                }
                for sandbox in &report.gone {
                    tracing::info!(%sandbox, secret = name, "sandbox ended while its secret change was retried");
                }
                report.refreshed
            }
            Err(error) => {
                tracing::warn!(secret = name, %error, "secret fan-out failed");
                0
            }
        }
    }

    /// Makes every running sandbox of the project follow its new egress allowlist at once (a
    /// removed host is closed now).
    pub async fn propagate_allowlist(&self, org: OrgId, project: ProjectId) {
        let change = osb_project::AllowlistChanged { org, project };
        match self.plane().projects.send(change).await {
            Ok(Ok(report)) => {
                for (sandbox, reason) in report.failed {
                    tracing::warn!(%sandbox, reason, "allowlist change did not reach a sandbox");
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "allowlist change not propagated"),
            Err(error) => tracing::warn!(%error, "the project actor is unavailable"),
        }
    }

    /// Workers with a recent heartbeat right now (0 for fixed links without placement).
    pub fn live_worker_count(&self) -> usize {
        self.plane()
            .links
            .placement()
            .map_or(0, |placement| placement.live_worker_names().len())
    }
}
