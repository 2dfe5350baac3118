//! Sandboxes: record, read, and move through states with a generation check so a replayed saga
//! step sees "already done" instead of clobbering a newer state.

use std::collections::BTreeMap;

use osb_proto::{OrgId, ProjectId, SandboxId, WorkerName};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::convert::{to_i32, to_u32, to_u64};
use crate::entities::sandboxes;
use crate::error::StoreError;
use crate::listing_epochs::ListingWrite;
use crate::records::{NewSandbox, SandboxRecord, SandboxStatus};
use crate::store::Store;

impl Store {
    /// Records a sandbox in `creating` state at generation 0.
    pub async fn insert_sandbox(&self, new: NewSandbox) -> Result<SandboxRecord, StoreError> {
        let _write = ListingWrite::of(new.org_id);
        let now = super::convert::now();
        let row = sandboxes::ActiveModel {
            id: Set(new.id.as_uuid()),
            org_id: Set(new.org_id.as_uuid()),
            project_id: Set(new.project_id.map(|id| id.as_uuid())),
            project_name: Set(new.project_name.clone()),
            worker_id: Set(None),
            status: Set(SandboxStatus::Creating.as_str().to_owned()),
            generation: Set(0),
            template: Set(new.template.clone()),
            cpu_count: Set(to_i32(new.cpu_count, "cpuCount")?),
            memory_mb: Set(to_i32(new.memory_mb, "memoryMB")?),
            timeout_sec: Set(to_i32(new.timeout_sec, "timeoutSec")?),
            failure_reason: Set(None),
            runtime: Set(None),
            egress: Set(None),
            metadata: Set(Some(metadata_to_json(&new.metadata))),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // The org's quotas are checked and the row (the reservation) inserted in one
        // transaction (ADR 0027).
        let transaction = self
            .begin_within_quota(new.org_id, new.cpu_count, new.memory_mb)
            .await?;
        sandboxes::Entity::insert(row)
            .exec_without_returning(&transaction)
            .await
            .map_err(|error| StoreError::from_db(error, &format!("sandbox {}", new.id)))?;
        transaction.commit().await?;
        self.get_sandbox(new.org_id, new.id).await
    }

    /// Loads a sandbox of the org.
    pub async fn get_sandbox(
        &self,
        org_id: OrgId,
        id: SandboxId,
    ) -> Result<SandboxRecord, StoreError> {
        sandboxes::Entity::find_by_id(id.as_uuid())
            .filter(sandboxes::Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db)
            .await?
            .map(sandbox_record)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("sandbox {id}")))
    }

    /// All sandboxes of the org, newest first.
    pub async fn list_sandboxes(&self, org_id: OrgId) -> Result<Vec<SandboxRecord>, StoreError> {
        sandboxes::Entity::find()
            .filter(sandboxes::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_desc(sandboxes::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(sandbox_record)
            .collect()
    }

    /// Sandboxes of a project (any org: the project id is unique) that hold or are about to
    /// hold a proxy session: running ones, and ones still being created that already have a
    /// worker. Secret fan-out pushes to all of them, so an update made while a sandbox boots
    /// is not lost (the worker ignores a push for a session it does not have yet, and the
    /// create saga catches up after registering).
    pub async fn list_live_sandboxes_of_project(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        sandboxes::Entity::find()
            .filter(sandboxes::Column::ProjectId.eq(project_id.as_uuid()))
            .filter(sandboxes::Column::Status.is_in([
                SandboxStatus::Running.as_str(),
                SandboxStatus::Creating.as_str(),
            ]))
            .filter(sandboxes::Column::WorkerId.is_not_null())
            .order_by_asc(sandboxes::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(sandbox_record)
            .collect()
    }

    /// Running sandboxes past their timeout: `created_at + timeout_sec` is not after `now`
    /// (any org).
    pub async fn list_expired_sandboxes(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        // The longest timeout bounds the scan; the exact check is per row.
        let oldest_possible = now - chrono::Duration::seconds(1);
        let rows = sandboxes::Entity::find()
            .filter(sandboxes::Column::Status.eq(SandboxStatus::Running.as_str()))
            .filter(sandboxes::Column::CreatedAt.lt(oldest_possible))
            .order_by_asc(sandboxes::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut expired = Vec::new();
        for row in rows {
            let record = sandbox_record(row)?;
            let ends = record.created_at + chrono::Duration::seconds(i64::from(record.timeout_sec));
            if ends <= now {
                expired.push(record);
            }
        }
        Ok(expired)
    }

    /// Every sandbox on a worker that is not over (creating, running or stopped).
    pub async fn list_active_sandboxes_on_worker(
        &self,
        worker: &WorkerName,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        sandboxes::Entity::find()
            .filter(sandboxes::Column::WorkerId.eq(worker.as_str()))
            .filter(sandboxes::Column::Status.is_in([
                SandboxStatus::Running.as_str(),
                SandboxStatus::Creating.as_str(),
                SandboxStatus::Stopped.as_str(),
            ]))
            .all(&self.db)
            .await?
            .into_iter()
            .map(sandbox_record)
            .collect()
    }

    /// Records which worker a sandbox is being placed on (or `None` when placement is undone),
    /// without changing its status or generation.
    pub async fn set_sandbox_worker(
        &self,
        id: SandboxId,
        worker: Option<&WorkerName>,
    ) -> Result<(), StoreError> {
        let _write = ListingWrite::of_unknown_org();
        sandboxes::Entity::update_many()
            .col_expr(
                sandboxes::Column::WorkerId,
                Expr::value(worker.map(|name| name.as_str().to_owned())),
            )
            .col_expr(
                sandboxes::Column::UpdatedAt,
                Expr::value(super::convert::now()),
            )
            .filter(sandboxes::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records how a booted sandbox runs (runtime name and egress confinement).
    pub async fn set_sandbox_runtime(
        &self,
        id: SandboxId,
        runtime: &str,
        egress: &str,
    ) -> Result<(), StoreError> {
        let _write = ListingWrite::of_unknown_org();
        sandboxes::Entity::update_many()
            .col_expr(sandboxes::Column::Runtime, Expr::value(runtime))
            .col_expr(sandboxes::Column::Egress, Expr::value(egress))
            .filter(sandboxes::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Loads a sandbox by id alone (saga steps, which carry the org in their parameters but
    /// may run before the row's org is known to them).
    pub async fn find_sandbox(&self, id: SandboxId) -> Result<SandboxRecord, StoreError> {
        sandboxes::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await?
            .map(sandbox_record)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("sandbox {id}")))
    }

    /// How many sandboxes are in each status, over all orgs (for `/metrics`).
    pub async fn count_sandboxes_by_status(&self) -> Result<Vec<(String, u64)>, StoreError> {
        use sea_orm::QuerySelect;
        let rows: Vec<(String, i64)> = sandboxes::Entity::find()
            .select_only()
            .column(sandboxes::Column::Status)
            .column_as(sandboxes::Column::Id.count(), "count")
            .group_by(sandboxes::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(status, count)| Ok((status, to_u64(count, "count")?)))
            .collect()
    }

    /// Moves a sandbox to `status` if it is still at `expected_generation`, bumping the
    /// generation. Returns the new generation; `Stale` if the row moved on.
    pub async fn transition_sandbox(
        &self,
        id: SandboxId,
        expected_generation: u64,
        status: SandboxStatus,
        worker_id: Option<&WorkerName>,
        failure_reason: Option<&str>,
    ) -> Result<u64, StoreError> {
        let _write = ListingWrite::of_unknown_org();
        transition_on(
            &self.db,
            id,
            expected_generation,
            status,
            worker_id,
            failure_reason,
        )
        .await
    }
}

/// The conditional transition on any connection (a transaction, for the outbox).
pub(super) async fn transition_on<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: SandboxId,
    expected_generation: u64,
    status: SandboxStatus,
    worker_id: Option<&WorkerName>,
    failure_reason: Option<&str>,
) -> Result<u64, StoreError> {
    let expected = i64::try_from(expected_generation)
        .map_err(|_| StoreError::corrupt("generation", "too large"))?;
    let mut update = sandboxes::Entity::update_many()
        .col_expr(sandboxes::Column::Status, Expr::value(status.as_str()))
        .col_expr(sandboxes::Column::Generation, Expr::value(expected + 1))
        .col_expr(
            sandboxes::Column::UpdatedAt,
            Expr::value(super::convert::now()),
        )
        .col_expr(
            sandboxes::Column::FailureReason,
            Expr::value(failure_reason.map(str::to_owned)),
        );
    if let Some(worker_id) = worker_id {
        update = update.col_expr(
            sandboxes::Column::WorkerId,
            Expr::value(worker_id.as_str().to_owned()),
        );
    }
    let result = update
        .filter(sandboxes::Column::Id.eq(id.as_uuid()))
        .filter(sandboxes::Column::Generation.eq(expected))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(StoreError::Stale(format!("sandbox {id}")));
    }
    Ok(expected_generation + 1)
}

fn metadata_to_json(metadata: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        metadata
            .iter()
            .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
            .collect(),
    )
}

fn metadata_from_json(
    value: Option<serde_json::Value>,
) -> Result<BTreeMap<String, String>, StoreError> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let object = value
        .as_object()
        .ok_or_else(|| StoreError::corrupt("sandbox metadata", "not a JSON object"))?;
    object
        .iter()
        .map(|(key, value)| {
            value
                .as_str()
                .map(|text| (key.clone(), text.to_owned()))
                .ok_or_else(|| StoreError::corrupt("sandbox metadata", "a value is not a string"))
        })
        .collect()
}

pub(super) fn sandbox_record(row: sandboxes::Model) -> Result<SandboxRecord, StoreError> {
    Ok(SandboxRecord {
        id: SandboxId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        project_id: row.project_id.map(ProjectId::from_uuid),
        project_name: row.project_name,
        worker_id: row
            .worker_id
            .as_deref()
            .map(WorkerName::new)
            .transpose()
            .map_err(|error| StoreError::corrupt("sandbox worker", error))?,
        status: SandboxStatus::parse(&row.status)
            .ok_or_else(|| StoreError::corrupt("sandbox status", &row.status))?,
        generation: to_u64(row.generation, "generation")?,
        template: row.template,
        cpu_count: to_u32(row.cpu_count, "cpuCount")?,
        memory_mb: to_u32(row.memory_mb, "memoryMB")?,
        timeout_sec: to_u32(row.timeout_sec, "timeoutSec")?,
        failure_reason: row.failure_reason,
        runtime: row.runtime,
        egress: row.egress,
        metadata: metadata_from_json(row.metadata)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
