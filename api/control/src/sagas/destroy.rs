//! The destroy saga: one irreversible step that destroys the sandbox on its worker (session
//! first, then namespace, rules and layer — the worker's order) and marks the row destroyed.
//! Replaying it is harmless: destroying a sandbox the worker does not know is a success. A
//! sandbox whose worker is lost is marked destroyed without a call: it ended with its worker,
//! whose reaper removes any leftovers when it starts again (ADR 0012).

use async_trait::async_trait;
use osb_saga::{SagaDefinition, SagaError, SagaStep, StepError, StepInputs, StepName, StepUndo};
use osb_store::{SandboxStatus, StoreError};
use serde_json::{json, Value};

use super::params::{Destroyed, SandboxParams};
use crate::commands::{self, StepCommand};
use crate::events::{transition_announcing, Announcement};
use crate::plane::{store_failed, to_output, ControlPlane};
use osb_bus::command::{self as cmd, CommandPayload};
use osb_bus::SagaAction;

/// The saga kind in the log.
pub const DESTROY_SAGA: &str = "sandbox_destroy";

/// How often the final transition reads a row that changed under it before giving up.
const STALE_READS: u32 = 3;

/// The destroy saga's one step.
pub const DESTROY_SANDBOX: StepName<Destroyed> = StepName::new("destroy_sandbox");

/// The destroy saga's definition.
pub fn destroy_saga() -> Result<SagaDefinition<ControlPlane>, SagaError> {
    SagaDefinition::new(DESTROY_SAGA, vec![Box::new(DestroySandbox)])
}

struct DestroySandbox;

#[async_trait]
impl SagaStep<ControlPlane> for DestroySandbox {
    fn name(&self) -> &'static str {
        DESTROY_SANDBOX.as_str()
    }

    fn irreversible(&self) -> bool {
        true
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: SandboxParams = inputs.params()?;
        let row = plane
            .store
            .find_sandbox(p.sandbox_id)
            .await
            .map_err(store_failed)?;
        if row.status == SandboxStatus::Destroyed {
            return to_output(&Destroyed { existed: false });
        }
        let mut existed = false;
        if let Some(worker) = row.worker_id.as_ref() {
            if plane.links.is_live(worker) {
                let step = StepCommand {
                    worker,
                    saga: inputs.saga(),
                    step: DESTROY_SANDBOX.as_str(),
                    action: SagaAction::Do,
                    what: "destroy the sandbox",
                };
                let payload = CommandPayload::DestroySandbox(cmd::DestroySandbox {
                    sandbox_id: p.sandbox_id,
                });
                let answer: cmd::ExistedOutput = commands::send(plane, &step, payload).await?;
                existed = answer.existed;
            } else {
                tracing::warn!(sandbox = %p.sandbox_id, %worker, "worker is not live; marking its sandbox destroyed");
            }
        }
        // The row may have changed while the worker destroyed the sandbox (a worker that
        // restarted meanwhile has its sandboxes reported failed): the destroy happened, so the
        // row is read again and ends destroyed whatever it says now.
        let mut row = row;
        let mut stale_reads = 0;
        loop {
            let reason = row.failure_reason.as_deref();
            let recorded = transition_announcing(
                plane,
                (p.sandbox_id, row.generation),
                SandboxStatus::Destroyed,
                (None, reason),
                Announcement {
                    org: p.org_id,
                    what: "destroyed",
                    dedupe: &p.request,
                    fields: json!({ "status": "destroyed", "workerID": row.worker_id }),
                },
            )
            .await;
            match recorded {
                Ok(_) => break,
                Err(StoreError::Stale(_)) if stale_reads < STALE_READS => {
                    stale_reads += 1;
                    row = plane
                        .store
                        .find_sandbox(p.sandbox_id)
                        .await
                        .map_err(store_failed)?;
                    if row.status == SandboxStatus::Destroyed {
                        break;
                    }
                }
                Err(other) => return Err(store_failed(other)),
            }
        }
        to_output(&Destroyed { existed })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        None
    }
}
