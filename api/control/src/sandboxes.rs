//! `SandboxService`: the control plane's sandbox operations, each a saga run to its end on
//! behalf of one caller (create, fork, destroy, checkpoint, golden snapshot, restore); exec
//! (a direct call to the sandbox's worker) is in `exec`, the fan-out of project changes in
//! `changes`. On start, `resume_unfinished` claims every saga a crashed control plane left
//! behind and drives it on or unwinds it.
//!
//! It must never return a row of another org: every lookup is by `(org, id)`.

use std::collections::BTreeMap;
use std::time::Duration;

use osb_proto::{CheckpointId, OrgId, SagaId, SandboxId, SnapshotId};
use osb_saga::{ExecutorOptions, SagaDefinition, SagaExecutor, SagaOutcome};
use osb_store::{
    CheckpointRecord, SagaRecord, SandboxRecord, SandboxStatus, SnapshotRecord, StoreError,
};
use serde_json::json;
use tracing::Instrument;

use super::error::ControlError;
use super::events::{publish_sandbox_event, transition_announcing, Announcement};
use super::in_flight::InFlight;
use super::metrics::ControlMetrics;
use super::plane::ControlPlane;
use super::sagas::params::{BootFrom, CreateParams, SandboxParams};
use super::sagas::{self, CHECKPOINT_SAGA, CREATE_SAGA, DESTROY_SAGA, RESTORE_SAGA, SNAPSHOT_SAGA};

/// The sandbox operations of one control-plane process.
pub struct SandboxService {
    plane: ControlPlane,
    executor: SagaExecutor,
    create: SagaDefinition<ControlPlane>,
    destroy: SagaDefinition<ControlPlane>,
    checkpoint: SagaDefinition<ControlPlane>,
    snapshot: SagaDefinition<ControlPlane>,
    restore: SagaDefinition<ControlPlane>,
    metrics: ControlMetrics,
    in_flight: InFlight,
    /// Failpoint: abort the process when the executor's `stop_after` hook fires (a kill -9 at
    /// that exact point), for crash tests of whole processes. Never set in production.
    abort_on_stop: bool,
}

impl std::fmt::Debug for SandboxService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxService")
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

impl SandboxService {
    /// The service of control-plane instance `owner` (unique per process).
    pub fn new(
        plane: ControlPlane,
        owner: &str,
        mut options: ExecutorOptions,
    ) -> Result<Self, ControlError> {
        // Saga progress goes on the bus (`osb.saga.…`) unless the caller chose a sink.
        if options.progress.is_none() && tokio::runtime::Handle::try_current().is_ok() {
            options.progress = Some(super::saga_progress::BusProgressSink::start(
                plane.bus.clone(),
            ));
        }
        Ok(Self {
            executor: SagaExecutor::new(plane.store.clone(), owner, options),
            plane,
            create: sagas::create_saga()?,
            destroy: sagas::destroy_saga()?,
            checkpoint: sagas::checkpoint_saga()?,
            snapshot: sagas::snapshot_saga()?,
            restore: sagas::restore_saga()?,
            metrics: ControlMetrics::default(),
            in_flight: InFlight::default(),
            abort_on_stop: false,
        })
    }

    /// Arms the crash failpoint: the process aborts right after `step`'s action ran, before it
    /// is logged (see `OPENSANDBOX_FAILPOINT` in `osbd`).
    pub fn with_crash_after(
        plane: ControlPlane,
        owner: &str,
        mut options: ExecutorOptions,
        step: &str,
    ) -> Result<Self, ControlError> {
        options.hooks.stop_after = Some(step.to_owned());
        let mut service = Self::new(plane, owner, options)?;
        service.abort_on_stop = true;
        Ok(service)
    }

    /// The control plane's counters.
    pub fn metrics(&self) -> &ControlMetrics {
        &self.metrics
    }

    /// The saga context (store, vault, links, bus).
    pub fn plane(&self) -> &ControlPlane {
        &self.plane
    }

    /// The create saga's id for a sandbox (one create per sandbox: replays find it).
    pub fn create_saga_id(sandbox: SandboxId) -> SagaId {
        SagaId::from_uuid(sandbox.as_uuid())
    }

    /// Creates (or forks, or boots from a snapshot) a sandbox.
    pub async fn create(&self, params: CreateParams) -> Result<SandboxRecord, ControlError> {
        self.create_or_replay(params)
            .await
            .map(|(record, _)| record)
    }

    /// Like `create`, and says whether the sandbox is new. A sandbox id that exists already
    /// (a repeated `Idempotency-Key`) returns that sandbox as it is now, provided the request
    /// is the same one; the same key with another request is a conflict.
    pub async fn create_or_replay(
        &self,
        params: CreateParams,
    ) -> Result<(SandboxRecord, bool), ControlError> {
        self.create_or_replay_inner(params)
            .instrument(tracing::info_span!("control.create"))
            .await
    }

    async fn create_or_replay_inner(
        &self,
        params: CreateParams,
    ) -> Result<(SandboxRecord, bool), ControlError> {
        let org = params.org_id;
        let sandbox = params.sandbox_id;
        let saga = Self::create_saga_id(sandbox);
        let value = serde_json::to_value(&params)
            .map_err(|error| ControlError::Failed(error.to_string()))?;
        // No read first: a fresh key (the common case) goes straight to the saga's insert, and
        // only a key that exists already (the insert's conflict) is compared (ADR 0034).
        let Some(_driving) = self.in_flight.enter(saga) else {
            return Ok((self.replay(org, sandbox, saga, &value).await?, false));
        };
        let outcome = match self
            .executor
            .start(&self.create, &self.plane, saga, value.clone())
            .await
        {
            // The key was used before (or two requests raced): the saga that holds it answers.
            Err(osb_saga::SagaError::Store(StoreError::Conflict(_))) => {
                return Ok((self.replay(org, sandbox, saga, &value).await?, false))
            }
            Err(osb_saga::SagaError::Stopped { step }) if self.abort_on_stop => {
                tracing::error!(step, "failpoint: aborting the process mid-saga");
                std::process::abort()
            }
            other => other?,
        };
        Ok((self.after_create(org, sandbox, outcome).await?, true))
    }

    /// The sandbox of a create whose saga exists already, once it is no longer `creating`;
    /// a conflict when that saga was started for a different request.
    async fn replay(
        &self,
        org: OrgId,
        sandbox: SandboxId,
        saga: SagaId,
        value: &serde_json::Value,
    ) -> Result<SandboxRecord, ControlError> {
        match self.plane.store.get_saga(saga).await {
            Ok(existing) if existing.params != *value => Err(ControlError::Conflict(
                "this Idempotency-Key was used for a different request; use a new key".into(),
            )),
            // Not inserted yet: a request of this process is about to.
            Ok(_) | Err(StoreError::NotFound(_)) => self.wait_for_creation(org, sandbox).await,
            Err(other) => Err(other.into()),
        }
    }

    async fn after_create(
        &self,
        org: OrgId,
        sandbox: SandboxId,
        outcome: SagaOutcome,
    ) -> Result<SandboxRecord, ControlError> {
        match outcome {
            SagaOutcome::Completed { .. } => {
                ControlMetrics::bump(&self.metrics.creates_completed, 1);
                Ok(self
                    .plane
                    .store
                    .get_sandbox(org, sandbox)
                    .instrument(tracing::info_span!("control.read_created"))
                    .await?)
            }
            SagaOutcome::Unwound {
                failed_step, error, ..
            }
            | SagaOutcome::Stuck {
                step: failed_step,
                error,
                ..
            } => {
                ControlMetrics::bump(&self.metrics.creates_failed, 1);
                let reason = format!("{failed_step}: {error}");
                self.record_failure(org, sandbox, &reason).await;
                Err(unwound_error(&failed_step, &error))
            }
        }
    }

    async fn record_failure(&self, org: OrgId, sandbox: SandboxId, reason: &str) {
        if let Ok(row) = self.plane.store.find_sandbox(sandbox).await {
            if matches!(row.status, SandboxStatus::Failed | SandboxStatus::Creating) {
                let recorded = transition_announcing(
                    &self.plane,
                    (sandbox, row.generation),
                    SandboxStatus::Failed,
                    (None, Some(reason)),
                    Announcement {
                        org,
                        what: "failed",
                        dedupe: "create",
                        fields: json!({ "status": "failed", "reason": reason }),
                    },
                )
                .await;
                if let Err(error) = recorded {
                    tracing::warn!(%sandbox, %error, "failed create not recorded");
                }
            }
        }
    }

    async fn wait_for_creation(
        &self,
        org: OrgId,
        sandbox: SandboxId,
    ) -> Result<SandboxRecord, ControlError> {
        for _ in 0..600 {
            match self.plane.store.get_sandbox(org, sandbox).await {
                Ok(row) if row.status != SandboxStatus::Creating => return Ok(row),
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(self.plane.store.get_sandbox(org, sandbox).await?)
    }

    /// Forks a checkpoint into a new sandbox with fresh tokens. `params.boot` is replaced by
    /// the checkpoint and its worker.
    pub async fn fork(
        &self,
        checkpoint: CheckpointId,
        mut params: CreateParams,
    ) -> Result<SandboxRecord, ControlError> {
        let record = self.find_checkpoint(params.org_id, checkpoint).await?;
        let runtime = self.runtime_of_checkpoint(&record).await;
        params.boot = BootFrom::Checkpoint {
            checkpoint_id: record.id,
            worker: record.worker,
            runtime,
        };
        self.create(params).await
    }

    /// The checkpoint behind a golden snapshot of the org (for `POST /sandboxes {snapshot}`).
    pub async fn snapshot_boot(&self, org: OrgId, name: &str) -> Result<BootFrom, ControlError> {
        let snapshot =
            self.plane
                .store
                .get_snapshot(org, name)
                .await
                .map_err(|error| match error {
                    StoreError::NotFound(_) => ControlError::NotFound(format!(
                        "snapshot {name} does not exist; list them with GET /api/snapshots"
                    )),
                    other => other.into(),
                })?;
        let checkpoint = snapshot.checkpoint_id.ok_or_else(|| {
            ControlError::Conflict(format!(
                "snapshot {name} lost its checkpoint; create it again"
            ))
        })?;
        let record = self.find_checkpoint(org, checkpoint).await?;
        let runtime = self.runtime_of_checkpoint(&record).await;
        Ok(BootFrom::Checkpoint {
            checkpoint_id: record.id,
            worker: record.worker,
            runtime,
        })
    }

    /// The runtime a checkpoint's sandbox ran on (its copies boot there too).
    async fn runtime_of_checkpoint(&self, record: &CheckpointRecord) -> osb_proto::RuntimeName {
        let row = match record.sandbox_id {
            Some(id) => self.plane.store.find_sandbox(id).await.ok(),
            None => None,
        };
        super::sagas::params::runtime_of_row(row.as_ref().and_then(|row| row.runtime.as_deref()))
    }

    async fn find_checkpoint(
        &self,
        org: OrgId,
        checkpoint: CheckpointId,
    ) -> Result<CheckpointRecord, ControlError> {
        self.plane
            .store
            .get_checkpoint(org, checkpoint)
            .await
            .map_err(|error| not_found(error, format!("checkpoint {checkpoint} not found")))
    }

    /// A sandbox of the org.
    pub async fn get(&self, org: OrgId, id: SandboxId) -> Result<SandboxRecord, ControlError> {
        self.plane
            .store
            .get_sandbox(org, id)
            .await
            .map_err(|error| not_found(error, format!("sandbox {id} not found")))
    }

    /// Destroys a sandbox (idempotent: a destroyed sandbox is returned as it is).
    pub async fn destroy(&self, org: OrgId, id: SandboxId) -> Result<SandboxRecord, ControlError> {
        let row = self.get(org, id).await?;
        if row.status == SandboxStatus::Destroyed {
            return Ok(row);
        }
        if row.status == SandboxStatus::Creating {
            return Err(ControlError::Conflict(format!(
                "sandbox {id} is still being created; delete it once it is running or failed"
            )));
        }
        let params = SandboxParams::new(id, org);
        self.run_simple(&self.destroy, &params).await?;
        self.get(org, id).await
    }

    /// Takes a checkpoint of a running sandbox.
    pub async fn checkpoint(
        &self,
        org: OrgId,
        id: SandboxId,
    ) -> Result<CheckpointRecord, ControlError> {
        self.require_running(org, id).await?;
        // An org already at its checkpoint-bytes quota does not make a worker write (ADR 0032).
        self.plane.store.check_checkpoint_room(org).await?;
        let params = SandboxParams::new(id, org);
        let outputs = self.run_simple(&self.checkpoint, &params).await?;
        let checkpoint = checkpoint_of(&outputs)?;
        self.find_checkpoint(org, checkpoint).await
    }

    /// Checkpoints of a sandbox of the org.
    pub async fn checkpoints(
        &self,
        org: OrgId,
        id: SandboxId,
    ) -> Result<Vec<CheckpointRecord>, ControlError> {
        self.get(org, id).await?;
        Ok(self.plane.store.list_checkpoints(org, id).await?)
    }

    /// Registers a golden snapshot of a running sandbox under an org-unique name.
    pub async fn snapshot(
        &self,
        org: OrgId,
        id: SandboxId,
        name: &str,
    ) -> Result<SnapshotRecord, ControlError> {
        self.require_running(org, id).await?;
        if self.plane.store.get_snapshot(org, name).await.is_ok() {
            return Err(ControlError::Conflict(format!(
                "a snapshot named {name} already exists; choose another name"
            )));
        }
        self.plane.store.check_checkpoint_room(org).await?;
        let mut params = SandboxParams::new(id, org);
        params.snapshot_name = Some(name.to_owned());
        params.snapshot_id = Some(SnapshotId::new());
        self.run_simple(&self.snapshot, &params).await?;
        Ok(self.plane.store.get_snapshot(org, name).await?)
    }

    /// Restores a running sandbox in place from one of its checkpoints.
    pub async fn restore(
        &self,
        org: OrgId,
        id: SandboxId,
        checkpoint: CheckpointId,
    ) -> Result<SandboxRecord, ControlError> {
        self.require_running(org, id).await?;
        let record = self.find_checkpoint(org, checkpoint).await?;
        if record.sandbox_id != Some(id) {
            return Err(ControlError::Invalid(format!(
                "checkpoint {checkpoint} was taken from another sandbox; fork it with POST /api/sandboxes/from-checkpoint/{checkpoint}"
            )));
        }
        let mut params = SandboxParams::new(id, org);
        params.checkpoint_id = Some(checkpoint);
        self.run_simple(&self.restore, &params).await?;
        self.get(org, id).await
    }

    /// Destroys every running sandbox whose `timeoutSec` has run out since it was created.
    /// Returns how many were destroyed.
    pub async fn expire_timed_out(&self) -> usize {
        let Ok(expired) = self
            .plane
            .store
            .list_expired_sandboxes(chrono::Utc::now())
            .await
        else {
            return 0;
        };
        let mut destroyed = 0;
        for sandbox in expired {
            match self.destroy(sandbox.org_id, sandbox.id).await {
                Ok(_) => {
                    destroyed += 1;
                    publish_sandbox_event(
                        &self.plane,
                        sandbox.org_id,
                        sandbox.id,
                        "expired",
                        "timeout",
                        json!({ "timeoutSec": sandbox.timeout_sec }),
                    )
                    .await;
                }
                Err(error) => {
                    tracing::warn!(sandbox = %sandbox.id, %error, "timed-out sandbox not destroyed yet")
                }
            }
        }
        destroyed
    }

    /// Claims and finishes every unfinished saga (a crashed control plane's, or this one's
    /// from before a restart). Returns how many were driven to an end.
    pub async fn resume_unfinished(&self) -> Result<usize, ControlError> {
        let listed = self.plane.store.list_unfinished_sagas().await?;
        Ok(self.resume_listed(listed).await)
    }

    /// Drives the sagas of a listing of unfinished ones to an end, leaving alone those this
    /// process is still driving and those finished since the listing was read (it may be
    /// stale by the time each saga's turn comes). Returns how many it drove to an end.
    pub async fn resume_listed(&self, listed: Vec<SagaRecord>) -> usize {
        let mut finished = 0;
        for saga in listed {
            let definition = match saga.kind.as_str() {
                CREATE_SAGA => &self.create,
                DESTROY_SAGA => &self.destroy,
                CHECKPOINT_SAGA => &self.checkpoint,
                SNAPSHOT_SAGA => &self.snapshot,
                RESTORE_SAGA => &self.restore,
                other => {
                    tracing::warn!(saga = %saga.id, kind = other, "unknown saga kind left alone");
                    continue;
                }
            };
            // A saga this process is driving (a request still running it) is not a leftover.
            let Some(_driving) = self.in_flight.enter(saga.id) else {
                continue;
            };
            // The request that drove it may have finished it (and left) since the list was read:
            // resuming a finished saga would be a no-op, but it is not one this loop finished.
            match self.plane.store.get_saga(saga.id).await {
                Ok(record) if record.status.is_unfinished() => {}
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(saga = %saga.id, %error, "saga could not be read back; left for the next pass");
                    continue;
                }
            }
            match self.executor.resume(definition, &self.plane, saga.id).await {
                Ok(outcome) => {
                    if saga.kind == CREATE_SAGA {
                        if let Ok(params) =
                            serde_json::from_value::<CreateParams>(saga.params.clone())
                        {
                            let _ = self
                                .after_create(params.org_id, params.sandbox_id, outcome)
                                .await;
                        }
                    }
                    finished += 1;
                    ControlMetrics::bump(&self.metrics.sagas_resumed, 1);
                }
                Err(osb_saga::SagaError::ClaimLost { .. }) => {}
                Err(error) => {
                    tracing::warn!(saga = %saga.id, %error, "saga could not be resumed");
                }
            }
        }
        finished
    }

    pub(crate) async fn require_running(
        &self,
        org: OrgId,
        id: SandboxId,
    ) -> Result<SandboxRecord, ControlError> {
        let row = self.get(org, id).await?;
        if row.status != SandboxStatus::Running {
            return Err(ControlError::Conflict(format!(
                "sandbox {id} is {}; only a running sandbox can do this",
                row.status.as_str()
            )));
        }
        Ok(row)
    }

    async fn run_simple(
        &self,
        definition: &SagaDefinition<ControlPlane>,
        params: &SandboxParams,
    ) -> Result<BTreeMap<String, serde_json::Value>, ControlError> {
        let value = serde_json::to_value(params)
            .map_err(|error| ControlError::Failed(error.to_string()))?;
        let saga = SagaId::new();
        let _driving = self.in_flight.enter(saga);
        match self
            .executor
            .start(definition, &self.plane, saga, value)
            .await?
        {
            SagaOutcome::Completed { outputs, .. } => Ok(outputs),
            SagaOutcome::Unwound {
                failed_step, error, ..
            }
            | SagaOutcome::Stuck {
                step: failed_step,
                error,
                ..
            } => Err(unwound_error(&failed_step, &error)),
        }
    }
}

fn checkpoint_of(
    outputs: &BTreeMap<String, serde_json::Value>,
) -> Result<CheckpointId, ControlError> {
    sagas::CHECKPOINT_ON_WORKER
        .find(outputs)
        .map(|done| done.checkpoint_id)
        .ok_or_else(|| ControlError::Failed("the checkpoint saga recorded no checkpoint".into()))
}

/// A store error, with "not found" said in the caller's words.
fn not_found(error: StoreError, message: String) -> ControlError {
    match error {
        StoreError::NotFound(_) => ControlError::NotFound(message),
        other => other.into(),
    }
}

/// Maps a saga's failure to an error class by what the message says.
fn unwound_error(step: &str, error: &str) -> ControlError {
    let message = format!("{error} (at step {step}; nothing was left behind)");
    if error.contains("is not live")
        || error.contains("no worker is running")
        || error.contains("cannot reach worker")
        || error.contains("no live worker has room")
        || error.contains("no live worker offers")
    {
        ControlError::Unavailable(message)
    } else if error.contains("already exists") || error.contains("the org's quota is") {
        ControlError::Conflict(message)
    } else {
        ControlError::Failed(message)
    }
}
