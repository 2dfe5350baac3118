//! Checkpoints and golden snapshots: record (idempotently, for replayed saga steps, and within
//! the org's checkpoint-bytes quota), read and list within an org. A checkpoint row names the
//! worker holding its layer (in `storage_path`), so a fork or a snapshot boot is placed where
//! the layer is, and the bytes the worker measured there.

use osb_proto::{CheckpointId, OrgId, ProjectId, SandboxId, SnapshotId, WorkerName};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::entities::{checkpoints, snapshots};
use crate::error::StoreError;
use crate::records::{CheckpointRecord, SnapshotRecord};
use crate::store::Store;

impl Store {
    /// Records a checkpoint; recording the same id again changes nothing. The insert is one
    /// transaction with the org row locked: a checkpoint that would take the org past its
    /// checkpoint-bytes quota is refused (`QuotaExceeded`) and no row is written (ADR 0032).
    pub async fn insert_checkpoint(
        &self,
        record: &CheckpointRecord,
    ) -> Result<CheckpointRecord, StoreError> {
        let (transaction, org) = self.begin_with_org_locked(record.org_id).await?;
        let recorded = checkpoints::Entity::find_by_id(record.id.as_uuid())
            .one(&transaction)
            .await?
            .is_some();
        if !recorded {
            super::checkpoint_bytes::admit(&transaction, &org, record.size_bytes.unwrap_or(0))
                .await?;
            let row = checkpoints::ActiveModel {
                id: Set(record.id.as_uuid()),
                org_id: Set(record.org_id.as_uuid()),
                sandbox_id: Set(record.sandbox_id.map(|id| id.as_uuid())),
                project_id: Set(record.project_id.map(|id| id.as_uuid())),
                metadata: Set(record.metadata.clone()),
                storage_path: Set(record.worker.as_str().to_owned()),
                created_at: Set(super::convert::now()),
                size_bytes: Set(record.size_bytes.map(size_column)),
            };
            checkpoints::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(checkpoints::Column::Id)
                        .update_column(checkpoints::Column::Id)
                        .to_owned(),
                )
                .exec_without_returning(&transaction)
                .await?;
        }
        transaction.commit().await?;
        self.get_checkpoint(record.org_id, record.id).await
    }

    /// Loads a checkpoint of the org.
    pub async fn get_checkpoint(
        &self,
        org_id: OrgId,
        id: CheckpointId,
    ) -> Result<CheckpointRecord, StoreError> {
        checkpoints::Entity::find_by_id(id.as_uuid())
            .filter(checkpoints::Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db)
            .await?
            .map(checkpoint_record)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("checkpoint {id}")))
    }

    /// Checkpoints of one sandbox, newest first.
    pub async fn list_checkpoints(
        &self,
        org_id: OrgId,
        sandbox_id: SandboxId,
    ) -> Result<Vec<CheckpointRecord>, StoreError> {
        checkpoints::Entity::find()
            .filter(checkpoints::Column::OrgId.eq(org_id.as_uuid()))
            .filter(checkpoints::Column::SandboxId.eq(sandbox_id.as_uuid()))
            .order_by_desc(checkpoints::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(checkpoint_record)
            .collect()
    }

    /// Forgets a checkpoint row (undo of recording it); forgetting an unknown one is fine.
    pub async fn delete_checkpoint_row(&self, id: CheckpointId) -> Result<(), StoreError> {
        checkpoints::Entity::delete_by_id(id.as_uuid())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records a golden snapshot; the same id again changes nothing, another id with a name
    /// the org already uses is a `Conflict`.
    pub async fn insert_snapshot(
        &self,
        record: &SnapshotRecord,
    ) -> Result<SnapshotRecord, StoreError> {
        if let Ok(existing) = self.get_snapshot(record.org_id, &record.name).await {
            if existing.id == record.id {
                return Ok(existing);
            }
            return Err(StoreError::Conflict(format!("snapshot {}", record.name)));
        }
        let row = snapshots::ActiveModel {
            id: Set(record.id.as_uuid()),
            org_id: Set(record.org_id.as_uuid()),
            name: Set(record.name.clone()),
            checkpoint_id: Set(record.checkpoint_id.map(|id| id.as_uuid())),
            metadata: Set(record.metadata.clone()),
            created_at: Set(super::convert::now()),
            size_bytes: Set(record.size_bytes.map(size_column)),
        };
        snapshots::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, &format!("snapshot {}", record.name)))?;
        self.get_snapshot(record.org_id, &record.name).await
    }

    /// Loads a golden snapshot of the org by name.
    pub async fn get_snapshot(
        &self,
        org_id: OrgId,
        name: &str,
    ) -> Result<SnapshotRecord, StoreError> {
        snapshots::Entity::find()
            .filter(snapshots::Column::OrgId.eq(org_id.as_uuid()))
            .filter(snapshots::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(snapshot_record)
            .ok_or_else(|| StoreError::NotFound(format!("snapshot {name}")))
    }

    /// The org's golden snapshots, by name.
    pub async fn list_snapshots(&self, org_id: OrgId) -> Result<Vec<SnapshotRecord>, StoreError> {
        Ok(snapshots::Entity::find()
            .filter(snapshots::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_asc(snapshots::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(snapshot_record)
            .collect())
    }

    /// The golden snapshot of the org that boots from `checkpoint`, if any.
    pub async fn find_snapshot_of_checkpoint(
        &self,
        org_id: OrgId,
        checkpoint: CheckpointId,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        Ok(snapshots::Entity::find()
            .filter(snapshots::Column::OrgId.eq(org_id.as_uuid()))
            .filter(snapshots::Column::CheckpointId.eq(checkpoint.as_uuid()))
            .one(&self.db)
            .await?
            .map(snapshot_record))
    }

    /// Forgets a golden snapshot row of the org; forgetting an unknown one is fine.
    pub async fn delete_snapshot_row(&self, org_id: OrgId, name: &str) -> Result<(), StoreError> {
        snapshots::Entity::delete_many()
            .filter(snapshots::Column::OrgId.eq(org_id.as_uuid()))
            .filter(snapshots::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

pub(super) fn checkpoint_record(row: checkpoints::Model) -> Result<CheckpointRecord, StoreError> {
    Ok(CheckpointRecord {
        id: CheckpointId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        sandbox_id: row.sandbox_id.map(SandboxId::from_uuid),
        project_id: row.project_id.map(ProjectId::from_uuid),
        worker: WorkerName::new(&row.storage_path)
            .map_err(|error| StoreError::corrupt("checkpoint worker", error))?,
        metadata: row.metadata,
        created_at: row.created_at,
        size_bytes: row.size_bytes.map(size_of_column),
    })
}

pub(super) fn snapshot_record(row: snapshots::Model) -> SnapshotRecord {
    SnapshotRecord {
        id: SnapshotId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        name: row.name,
        checkpoint_id: row.checkpoint_id.map(CheckpointId::from_uuid),
        metadata: row.metadata,
        created_at: row.created_at,
        size_bytes: row.size_bytes.map(size_of_column),
    }
}

/// A size as the BIGINT column holds it (sizes past `i64::MAX` do not occur on a disk).
fn size_column(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

fn size_of_column(bytes: i64) -> u64 {
    u64::try_from(bytes).unwrap_or(0)
}
