//! The restore-in-place saga: `check_restorable → restore_on_worker`. The sandbox keeps its id,
//! address and tokens; its writable layer goes back to the checkpoint and its processes start
//! again. The proxy session is untouched, so the tokens resolve to the project's *current*
//! values (never the values of checkpoint time, which the checkpoint never held).

use async_trait::async_trait;
use osb_bus::SagaAction;
use osb_saga::{SagaDefinition, SagaError, SagaStep, StepError, StepInputs, StepName, StepUndo};
use osb_store::{SandboxStatus, StoreError};
use serde_json::{json, Value};

use super::params::{Done, Restorable, SandboxParams};
use crate::commands::{self, StepCommand};
use crate::events::publish_sandbox_event;
use crate::plane::{store_failed, to_output, ControlPlane};
use osb_bus::command::{self as cmd, CommandPayload};

/// The saga kind in the log.
pub const RESTORE_SAGA: &str = "sandbox_restore";

/// The restore saga's steps, each typed by the output it records.
pub const CHECK_RESTORABLE: StepName<Restorable> = StepName::new("check_restorable");
pub const RESTORE_ON_WORKER: StepName<Done> = StepName::new("restore_on_worker");

/// The restore saga's definition.
pub fn restore_saga() -> Result<SagaDefinition<ControlPlane>, SagaError> {
    SagaDefinition::new(
        RESTORE_SAGA,
        vec![Box::new(CheckRestorable), Box::new(RestoreOnWorker)],
    )
}

struct CheckRestorable;

#[async_trait]
impl SagaStep<ControlPlane> for CheckRestorable {
    fn name(&self) -> &'static str {
        CHECK_RESTORABLE.as_str()
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: SandboxParams = inputs.params()?;
        let checkpoint_id = p
            .checkpoint_id
            .ok_or_else(|| StepError::new("the saga has no checkpoint to restore"))?;
        let sandbox = plane
            .store
            .find_sandbox(p.sandbox_id)
            .await
            .map_err(store_failed)?;
        if sandbox.status != SandboxStatus::Running {
            return Err(StepError::new(format!(
                "sandbox {} is {}, not running",
                p.sandbox_id,
                sandbox.status.as_str()
            )));
        }
        let checkpoint = plane
            .store
            .get_checkpoint(p.org_id, checkpoint_id)
            .await
            .map_err(|error| match error {
                StoreError::NotFound(_) => {
                    StepError::new(format!("checkpoint {checkpoint_id} does not exist"))
                }
                other => store_failed(other),
            })?;
        if checkpoint.sandbox_id != Some(p.sandbox_id) {
            return Err(StepError::new(format!(
                "checkpoint {checkpoint_id} was taken from another sandbox; fork it instead"
            )));
        }
        to_output(&Restorable {
            worker: checkpoint.worker,
        })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        // A check: it changed nothing.
        None
    }
}

struct RestoreOnWorker;

#[async_trait]
impl SagaStep<ControlPlane> for RestoreOnWorker {
    fn name(&self) -> &'static str {
        RESTORE_ON_WORKER.as_str()
    }

    fn irreversible(&self) -> bool {
        true
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: SandboxParams = inputs.params()?;
        let Restorable { worker } = inputs.output(CHECK_RESTORABLE)?;
        let checkpoint_id = p
            .checkpoint_id
            .ok_or_else(|| StepError::new("the saga has no checkpoint to restore"))?;
        let step = StepCommand {
            worker: &worker,
            saga: inputs.saga(),
            step: RESTORE_ON_WORKER.as_str(),
            action: SagaAction::Do,
            what: "restore the sandbox",
        };
        let payload = CommandPayload::Restore(cmd::RestoreSandbox {
            sandbox_id: p.sandbox_id,
            checkpoint_id,
        });
        let _: serde_json::Value = commands::send(plane, &step, payload).await?;
        publish_sandbox_event(
            plane,
            p.org_id,
            p.sandbox_id,
            "restored",
            &p.request,
            json!({ "checkpointID": checkpoint_id, "workerID": worker }),
        )
        .await;
        to_output(&Done {})
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        None
    }
}
