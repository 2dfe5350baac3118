//! The checkpoint saga (`checkpoint_on_worker → record_checkpoint`) and the golden-snapshot
//! saga (`checkpoint_on_worker → record_checkpoint → record_snapshot`). The worker copies the
//! sandbox's writable layer with metadata holding names and token ids only, and reports the
//! bytes it wrote; the rows record which worker holds it, so forks and snapshot boots are
//! placed there, and its size. `record_checkpoint` is where the org's checkpoint-bytes quota
//! binds (ADR 0032): the row is inserted only within it, in one transaction with the org row
//! locked. Undo removes the worker's copy and the row, so a failed snapshot (a name taken
//! meanwhile) or a checkpoint over the quota leaves nothing behind.

use async_trait::async_trait;
use osb_bus::SagaAction;
use osb_proto::CheckpointId;
use osb_saga::{SagaDefinition, SagaError, SagaStep, StepError, StepInputs, StepName, StepUndo};
use osb_store::{CheckpointRecord, SandboxStatus, SnapshotRecord, StoreError};
use serde_json::{json, Value};

use super::params::{Checkpointed, Done, SandboxParams};
use crate::commands::{self, StepCommand};
use crate::events::publish_sandbox_event;
use crate::plane::{store_failed, to_output, ControlPlane};
use osb_bus::command::{self as cmd, CommandPayload};

/// The saga kinds in the log.
pub const CHECKPOINT_SAGA: &str = "sandbox_checkpoint";
pub const SNAPSHOT_SAGA: &str = "golden_snapshot";

/// The steps of both sagas, each typed by the output it records.
pub const CHECKPOINT_ON_WORKER: StepName<Checkpointed> = StepName::new("checkpoint_on_worker");
pub const RECORD_CHECKPOINT: StepName<Done> = StepName::new("record_checkpoint");
pub const RECORD_SNAPSHOT: StepName<Done> = StepName::new("record_snapshot");

/// The checkpoint saga's definition.
pub fn checkpoint_saga() -> Result<SagaDefinition<ControlPlane>, SagaError> {
    SagaDefinition::new(
        CHECKPOINT_SAGA,
        vec![
            Box::new(CheckpointOnWorker),
            Box::new(RecordCheckpoint { last: true }),
        ],
    )
}

/// The golden-snapshot saga's definition.
pub fn snapshot_saga() -> Result<SagaDefinition<ControlPlane>, SagaError> {
    SagaDefinition::new(
        SNAPSHOT_SAGA,
        vec![
            Box::new(CheckpointOnWorker),
            Box::new(RecordCheckpoint { last: false }),
            Box::new(RecordSnapshot),
        ],
    )
}

struct CheckpointOnWorker;

#[async_trait]
impl SagaStep<ControlPlane> for CheckpointOnWorker {
    fn name(&self) -> &'static str {
        CHECKPOINT_ON_WORKER.as_str()
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: SandboxParams = inputs.params()?;
        let row = plane
            .store
            .find_sandbox(p.sandbox_id)
            .await
            .map_err(store_failed)?;
        let worker = match (&row.status, row.worker_id) {
            (SandboxStatus::Running, Some(worker)) => worker,
            (status, _) => {
                return Err(StepError::new(format!(
                    "sandbox {} is {}, not running: only a running sandbox can be checkpointed",
                    p.sandbox_id,
                    status.as_str()
                )))
            }
        };
        let step = StepCommand {
            worker: &worker,
            saga: inputs.saga(),
            step: CHECKPOINT_ON_WORKER.as_str(),
            action: SagaAction::Do,
            what: "checkpoint the sandbox",
        };
        let payload = CommandPayload::Checkpoint(cmd::CheckpointSandbox {
            sandbox_id: p.sandbox_id,
        });
        let answer: cmd::CheckpointOutput = commands::send(plane, &step, payload).await?;
        let checkpoint_id: CheckpointId = answer.checkpoint_id;
        to_output(&Checkpointed {
            checkpoint_id,
            worker,
            size_bytes: answer.size_bytes,
        })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        Some(self)
    }
}

#[async_trait]
impl StepUndo<ControlPlane> for CheckpointOnWorker {
    async fn undo(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<(), StepError> {
        let p: SandboxParams = inputs.params()?;
        // With the output we know the checkpoint; without it (the action ran but its output
        // was never logged) the worker finds it by the action's idempotency key.
        let do_key =
            osb_bus::idempotency_key(inputs.saga(), CHECKPOINT_ON_WORKER.as_str(), SagaAction::Do);
        let (worker, delete) = match inputs.output_if_any(CHECKPOINT_ON_WORKER) {
            Some(done) => (
                done.worker,
                cmd::DeleteCheckpoint {
                    checkpoint_id: Some(done.checkpoint_id),
                    made_under: None,
                },
            ),
            None => {
                let row = plane
                    .store
                    .find_sandbox(p.sandbox_id)
                    .await
                    .map_err(store_failed)?;
                let Some(worker) = row.worker_id else {
                    return Ok(());
                };
                (
                    worker,
                    cmd::DeleteCheckpoint {
                        checkpoint_id: None,
                        made_under: Some(do_key),
                    },
                )
            }
        };
        if !plane.links.is_live(&worker) {
            // The layer went with the worker's data, or is reaped with it.
            return Ok(());
        }
        let step = StepCommand {
            worker: &worker,
            saga: inputs.saga(),
            step: CHECKPOINT_ON_WORKER.as_str(),
            action: SagaAction::Undo,
            what: "remove the checkpoint",
        };
        let payload = CommandPayload::DeleteCheckpoint(delete);
        let _: cmd::ExistedOutput = commands::send(plane, &step, payload).await?;
        Ok(())
    }
}

struct RecordCheckpoint {
    last: bool,
}

#[async_trait]
impl SagaStep<ControlPlane> for RecordCheckpoint {
    fn name(&self) -> &'static str {
        RECORD_CHECKPOINT.as_str()
    }

    fn irreversible(&self) -> bool {
        self.last
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: SandboxParams = inputs.params()?;
        let done = inputs.output(CHECKPOINT_ON_WORKER)?;
        let row = plane
            .store
            .find_sandbox(p.sandbox_id)
            .await
            .map_err(store_failed)?;
        let secret_names = match row.project_id {
            Some(project) => plane
                .store
                .list_secrets(project)
                .await
                .map_err(store_failed)?
                .into_iter()
                .map(|record| record.name)
                .collect(),
            None => Vec::new(),
        };
        plane
            .store
            .insert_checkpoint(&CheckpointRecord {
                id: done.checkpoint_id,
                org_id: p.org_id,
                sandbox_id: Some(p.sandbox_id),
                project_id: row.project_id,
                worker: done.worker.clone(),
                metadata: json!({
                    "workerID": done.worker,
                    "template": row.template,
                    "secretNames": secret_names,
                }),
                created_at: chrono::Utc::now(),
                size_bytes: done.size_bytes,
            })
            .await
            .map_err(store_failed)?;
        if self.last {
            publish_sandbox_event(
                plane,
                p.org_id,
                p.sandbox_id,
                "checkpointed",
                &p.request,
                json!({ "checkpointID": done.checkpoint_id, "workerID": done.worker }),
            )
            .await;
        }
        to_output(&Done {})
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        // Last step of the checkpoint saga: irreversible. In the snapshot saga the row goes
        // again when the snapshot cannot be recorded.
        if self.last {
            None
        } else {
            Some(self)
        }
    }
}

#[async_trait]
impl StepUndo<ControlPlane> for RecordCheckpoint {
    async fn undo(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<(), StepError> {
        let Some(done) = inputs.output_if_any(CHECKPOINT_ON_WORKER) else {
            return Ok(());
        };
        plane
            .store
            .delete_checkpoint_row(done.checkpoint_id)
            .await
            .map_err(store_failed)
    }
}

struct RecordSnapshot;

#[async_trait]
impl SagaStep<ControlPlane> for RecordSnapshot {
    fn name(&self) -> &'static str {
        RECORD_SNAPSHOT.as_str()
    }

    fn irreversible(&self) -> bool {
        true
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: SandboxParams = inputs.params()?;
        let done = inputs.output(CHECKPOINT_ON_WORKER)?;
        let (Some(name), Some(id)) = (p.snapshot_name.clone(), p.snapshot_id) else {
            return Err(StepError::new(
                "snapshot name and id are missing from the saga",
            ));
        };
        plane
            .store
            .insert_snapshot(&SnapshotRecord {
                id,
                org_id: p.org_id,
                name: name.clone(),
                checkpoint_id: Some(done.checkpoint_id),
                metadata: json!({ "workerID": done.worker, "sandboxID": p.sandbox_id }),
                created_at: chrono::Utc::now(),
                size_bytes: done.size_bytes,
            })
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => StepError::new(format!(
                    "a snapshot named {name} already exists; choose another name"
                )),
                other => store_failed(other),
            })?;
        publish_sandbox_event(
            plane,
            p.org_id,
            p.sandbox_id,
            "snapshotted",
            &p.request,
            json!({ "snapshot": name, "checkpointID": done.checkpoint_id, "workerID": done.worker }),
        )
        .await;
        to_output(&Done {})
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        None
    }
}
