//! Deleting checkpoints and golden snapshots, so storage does not only grow. A golden snapshot
//! is a named checkpoint: deleting it deletes that checkpoint too, and deleting a checkpoint a
//! snapshot still uses is a conflict (delete the snapshot). A checkpoint a running restore or
//! fork (or snapshot boot) is using is a conflict too; the worker additionally serialises layer
//! removal with restores and forks, so a race past this check fails that restore or fork
//! cleanly instead of copying a half-removed layer.
//!
//! Order: the worker's files first, then the rows. A failure in between leaves the rows (the
//! checkpoint is still listed) and a retried DELETE finishes the job — it never leaves files no
//! row points at. A worker that cannot be reached is 503 and nothing changes.

use osb_bus::command::{self as cmd, CommandPayload};
use osb_bus::SagaAction;
use osb_proto::{CheckpointId, OrgId, SagaId, SandboxId};
use osb_store::{CheckpointRecord, SagaStatus, StoreError};

use super::commands::{self, StepCommand};
use super::error::ControlError;
use super::sagas::params::{BootFrom, CreateParams, SandboxParams};
use super::sagas::{CREATE_SAGA, RESTORE_SAGA};
use super::sandboxes::SandboxService;

/// The "step" of a checkpoint deletion's command (its saga id is the checkpoint's).
const DELETE_CHECKPOINT: &str = "delete_checkpoint";

impl SandboxService {
    /// Deletes a checkpoint of a sandbox of the org (404 when either is not the caller's).
    pub async fn delete_checkpoint(
        &self,
        org: OrgId,
        sandbox: SandboxId,
        checkpoint: CheckpointId,
    ) -> Result<(), ControlError> {
        let record = self.owned_checkpoint(org, checkpoint).await?;
        if record.sandbox_id != Some(sandbox) {
            return Err(ControlError::NotFound(format!(
                "checkpoint {checkpoint} not found in sandbox {sandbox}; list them with GET /api/sandboxes/{sandbox}/checkpoints"
            )));
        }
        if let Some(snapshot) = self
            .plane()
            .store
            .find_snapshot_of_checkpoint(org, checkpoint)
            .await?
        {
            return Err(ControlError::Conflict(format!(
                "checkpoint {checkpoint} is golden snapshot {}; delete the snapshot (DELETE /api/snapshots/{}) to delete both",
                snapshot.name, snapshot.name
            )));
        }
        self.remove_checkpoint(&record).await?;
        Ok(())
    }

    /// Deletes a golden snapshot of the org and the checkpoint behind it.
    pub async fn delete_snapshot(&self, org: OrgId, name: &str) -> Result<(), ControlError> {
        let store = &self.plane().store;
        let snapshot = store
            .get_snapshot(org, name)
            .await
            .map_err(|error| match error {
                StoreError::NotFound(_) => ControlError::NotFound(format!(
                    "snapshot {name} not found; list them with GET /api/snapshots"
                )),
                other => other.into(),
            })?;
        if let Some(checkpoint) = snapshot.checkpoint_id {
            if let Ok(record) = store.get_checkpoint(org, checkpoint).await {
                self.remove_checkpoint(&record).await?;
            }
        }
        store.delete_snapshot_row(org, name).await?;
        Ok(())
    }

    async fn owned_checkpoint(
        &self,
        org: OrgId,
        checkpoint: CheckpointId,
    ) -> Result<CheckpointRecord, ControlError> {
        self.plane()
            .store
            .get_checkpoint(org, checkpoint)
            .await
            .map_err(|error| match error {
                StoreError::NotFound(_) => {
                    ControlError::NotFound(format!("checkpoint {checkpoint} not found"))
                }
                other => other.into(),
            })
    }

    /// Refuses while a saga uses the checkpoint, then removes its files and its row.
    async fn remove_checkpoint(&self, record: &CheckpointRecord) -> Result<(), ControlError> {
        if let Some(kind) = self.saga_using(record.id).await? {
            return Err(ControlError::Conflict(format!(
                "checkpoint {} is in use by a running {kind}; retry when it has finished",
                record.id
            )));
        }
        let plane = self.plane();
        // A command like any saga step's, keyed by the checkpoint (one deletion per
        // checkpoint: a retried deletion is answered from the worker's record).
        let step = StepCommand {
            worker: &record.worker,
            saga: SagaId::from_uuid(record.id.as_uuid()),
            step: DELETE_CHECKPOINT,
            action: SagaAction::Do,
            what: "delete the checkpoint",
        };
        let payload = CommandPayload::DeleteCheckpoint(cmd::DeleteCheckpoint {
            checkpoint_id: Some(record.id),
            made_under: None,
        });
        let _: cmd::ExistedOutput =
            commands::send(plane, &step, payload)
                .await
                .map_err(|error| {
                    ControlError::Unavailable(format!(
                        "checkpoint {} was not deleted: {}; nothing else changed, retry later",
                        record.id, error.message
                    ))
                })?;
        plane.store.delete_checkpoint_row(record.id).await?;
        Ok(())
    }

    /// The kind of a running saga (restore, or a fork or snapshot boot) that uses `checkpoint`.
    async fn saga_using(
        &self,
        checkpoint: CheckpointId,
    ) -> Result<Option<&'static str>, ControlError> {
        for saga in self.plane().store.list_unfinished_sagas().await? {
            if !matches!(saga.status, SagaStatus::Running | SagaStatus::Unwinding) {
                continue;
            }
            let uses = match saga.kind.as_str() {
                CREATE_SAGA => serde_json::from_value::<CreateParams>(saga.params)
                    .is_ok_and(|params| {
                        matches!(params.boot, BootFrom::Checkpoint { checkpoint_id, .. } if checkpoint_id == checkpoint)
                    })
                    .then_some("fork or snapshot boot"),
                RESTORE_SAGA => serde_json::from_value::<SandboxParams>(saga.params)
                    .is_ok_and(|params| params.checkpoint_id == Some(checkpoint))
                    .then_some("restore"),
                _ => None,
            };
            if uses.is_some() {
                return Ok(uses);
            }
        }
        Ok(None)
    }
}
