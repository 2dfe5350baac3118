//! Keyset pages of every listing the API serves: projects, secrets and snapshots by name,
//! sandboxes and checkpoints newest first (ties broken by id). Each page is one index range
//! scan (`WHERE key > last ORDER BY key LIMIT n + 1`; migration m0006 adds the newest-first
//! indexes), so page 1000 costs what page 1 costs and an insert between two pages never makes
//! an item appear twice. Every query is scoped to its org (or project, or sandbox of the org).

use osb_proto::{CheckpointId, OrgId, ProjectId, SandboxId};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::checkpoints::{checkpoint_record, snapshot_record};
use super::projects::project_record;
use super::sandboxes::sandbox_record;
use super::secrets::sealed_row;
use crate::entities::{checkpoints, projects, sandboxes, secrets, snapshots};
use crate::error::StoreError;
use crate::records::{
    CheckpointRecord, NewestFirstKey, Page, ProjectRecord, SandboxRecord, SecretRecord,
    SnapshotRecord,
};
use crate::store::Store;

/// Splits `limit + 1` fetched rows into a page and whether more follow.
fn page_of<T>(mut items: Vec<T>, limit: u64) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = items.len() > limit;
    items.truncate(limit);
    Page { items, has_more }
}

/// `(created_at, id)` strictly before `key` in newest-first order.
fn older_than<C: ColumnTrait, I: ColumnTrait>(
    created_at: C,
    id: I,
    key: NewestFirstKey<uuid::Uuid>,
) -> Condition {
    Condition::any().add(created_at.lt(key.created_at)).add(
        Condition::all()
            .add(created_at.eq(key.created_at))
            .add(id.lt(key.id)),
    )
}

impl Store {
    /// Projects of the org by name, after `after` (exclusive).
    pub async fn page_projects(
        &self,
        org_id: OrgId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<ProjectRecord>, StoreError> {
        let mut query = projects::Entity::find()
            .filter(projects::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_asc(projects::Column::Name)
            .limit(limit.saturating_add(1));
        if let Some(after) = after {
            query = query.filter(projects::Column::Name.gt(after));
        }
        let rows = query.all(&self.db).await?;
        let items = rows
            .into_iter()
            .map(project_record)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, limit))
    }

    /// Secrets of a project by name (metadata only), after `after` (exclusive).
    pub async fn page_secrets(
        &self,
        project_id: ProjectId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<SecretRecord>, StoreError> {
        let mut query = secrets::Entity::find()
            .filter(secrets::Column::ProjectId.eq(project_id.as_uuid()))
            .order_by_asc(secrets::Column::Name)
            .limit(limit.saturating_add(1));
        if let Some(after) = after {
            query = query.filter(secrets::Column::Name.gt(after));
        }
        let rows = query.all(&self.db).await?;
        let items = rows
            .into_iter()
            .map(|row| sealed_row(row).map(|sealed| sealed.record))
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, limit))
    }

    /// Golden snapshots of the org by name, after `after` (exclusive).
    pub async fn page_snapshots(
        &self,
        org_id: OrgId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<SnapshotRecord>, StoreError> {
        let mut query = snapshots::Entity::find()
            .filter(snapshots::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_asc(snapshots::Column::Name)
            .limit(limit.saturating_add(1));
        if let Some(after) = after {
            query = query.filter(snapshots::Column::Name.gt(after));
        }
        let rows = query.all(&self.db).await?;
        Ok(page_of(
            rows.into_iter().map(snapshot_record).collect(),
            limit,
        ))
    }

    /// Sandboxes of the org, newest first, after `after` (exclusive).
    pub async fn page_sandboxes(
        &self,
        org_id: OrgId,
        after: Option<NewestFirstKey<SandboxId>>,
        limit: u64,
    ) -> Result<Page<SandboxRecord>, StoreError> {
        let mut query = sandboxes::Entity::find()
            .filter(sandboxes::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_desc(sandboxes::Column::CreatedAt)
            .order_by_desc(sandboxes::Column::Id)
            .limit(limit.saturating_add(1));
        if let Some(after) = after {
            query = query.filter(older_than(
                sandboxes::Column::CreatedAt,
                sandboxes::Column::Id,
                NewestFirstKey {
                    created_at: after.created_at,
                    id: after.id.as_uuid(),
                },
            ));
        }
        let rows = query.all(&self.db).await?;
        let items = rows
            .into_iter()
            .map(sandbox_record)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, limit))
    }

    /// Checkpoints of one sandbox of the org, newest first, after `after` (exclusive).
    pub async fn page_checkpoints(
        &self,
        org_id: OrgId,
        sandbox_id: SandboxId,
        after: Option<NewestFirstKey<CheckpointId>>,
        limit: u64,
    ) -> Result<Page<CheckpointRecord>, StoreError> {
        let mut query = checkpoints::Entity::find()
            .filter(checkpoints::Column::OrgId.eq(org_id.as_uuid()))
            .filter(checkpoints::Column::SandboxId.eq(sandbox_id.as_uuid()))
            .order_by_desc(checkpoints::Column::CreatedAt)
            .order_by_desc(checkpoints::Column::Id)
            .limit(limit.saturating_add(1));
        if let Some(after) = after {
            query = query.filter(older_than(
                checkpoints::Column::CreatedAt,
                checkpoints::Column::Id,
                NewestFirstKey {
                    created_at: after.created_at,
                    id: after.id.as_uuid(),
                },
            ));
        }
        let rows = query.all(&self.db).await?;
        let records = rows
            .into_iter()
            .map(checkpoint_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(records, limit))
    }
}
