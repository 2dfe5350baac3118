//! Projects: create, read, list (sorted by name), partial update and delete, all scoped to an
//! org. Deleting a project cascades to its secrets and detaches historic sandboxes.

use osb_proto::{OrgId, ProjectId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::convert::{json_to_string_list, string_list_to_json, to_i32, to_u32};
use crate::entities::projects;
use crate::error::StoreError;
use crate::listing_epochs::ListingWrite;
use crate::records::{NewProject, ProjectPatch, ProjectRecord};
use crate::store::Store;

impl Store {
    /// Creates a project; a name already used in the org is `Conflict`.
    pub async fn create_project(&self, new: NewProject) -> Result<ProjectRecord, StoreError> {
        let _write = ListingWrite::of(new.org_id);
        let now = super::convert::now();
        let record = ProjectRecord {
            id: ProjectId::new(),
            org_id: new.org_id,
            name: new.name,
            template: new.template,
            cpu_count: new.cpu_count,
            memory_mb: new.memory_mb,
            timeout_sec: new.timeout_sec,
            egress_allowlist: new.egress_allowlist,
            created_at: now,
            updated_at: now,
            runtime: new.runtime,
        };
        let row = projects::ActiveModel {
            id: Set(record.id.as_uuid()),
            org_id: Set(record.org_id.as_uuid()),
            name: Set(record.name.clone()),
            template: Set(record.template.clone()),
            cpu_count: Set(to_i32(record.cpu_count, "cpuCount")?),
            memory_mb: Set(to_i32(record.memory_mb, "memoryMB")?),
            timeout_sec: Set(to_i32(record.timeout_sec, "timeoutSec")?),
            egress_allowlist: Set(string_list_to_json(&record.egress_allowlist)),
            created_at: Set(now),
            updated_at: Set(now),
            runtime: Set(record.runtime.clone()),
        };
        projects::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, &format!("project {:?}", record.name)))?;
        Ok(record)
    }

    /// Loads a project of the org by id.
    pub async fn get_project(
        &self,
        org_id: OrgId,
        id: ProjectId,
    ) -> Result<ProjectRecord, StoreError> {
        let row = projects::Entity::find_by_id(id.as_uuid())
            .filter(projects::Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("project {id}")))?;
        project_record(row)
    }

    /// Finds a project of the org by name.
    pub async fn find_project_by_name(
        &self,
        org_id: OrgId,
        name: &str,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        projects::Entity::find()
            .filter(projects::Column::OrgId.eq(org_id.as_uuid()))
            .filter(projects::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(project_record)
            .transpose()
    }

    /// All projects of the org, sorted by name.
    pub async fn list_projects(&self, org_id: OrgId) -> Result<Vec<ProjectRecord>, StoreError> {
        projects::Entity::find()
            .filter(projects::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_asc(projects::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(project_record)
            .collect()
    }

    /// Applies a partial update; fields left `None` keep their stored value.
    pub async fn update_project(
        &self,
        org_id: OrgId,
        id: ProjectId,
        patch: ProjectPatch,
    ) -> Result<ProjectRecord, StoreError> {
        let _write = ListingWrite::of(org_id);
        let row = projects::Entity::find_by_id(id.as_uuid())
            .filter(projects::Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("project {id}")))?;
        let mut active: projects::ActiveModel = row.into();
        if let Some(name) = patch.name {
            active.name = Set(name);
        }
        if let Some(template) = patch.template {
            active.template = Set(template);
        }
        if let Some(cpu_count) = patch.cpu_count {
            active.cpu_count = Set(to_i32(cpu_count, "cpuCount")?);
        }
        if let Some(memory_mb) = patch.memory_mb {
            active.memory_mb = Set(to_i32(memory_mb, "memoryMB")?);
        }
        if let Some(timeout_sec) = patch.timeout_sec {
            active.timeout_sec = Set(to_i32(timeout_sec, "timeoutSec")?);
        }
        if let Some(allowlist) = patch.egress_allowlist {
            active.egress_allowlist = Set(string_list_to_json(&allowlist));
        }
        if let Some(runtime) = patch.runtime {
            active.runtime = Set(runtime);
        }
        active.updated_at = Set(super::convert::now());
        let updated = active
            .update(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, "project name"))?;
        project_record(updated)
    }

    /// Deletes a project of the org (its secrets go with it). `NotFound` if absent.
    pub async fn delete_project(&self, org_id: OrgId, id: ProjectId) -> Result<(), StoreError> {
        // The org's sandboxes of the project lose their project id too (ON DELETE SET NULL).
        let _write = ListingWrite::of(org_id);
        let result = projects::Entity::delete_many()
            .filter(projects::Column::Id.eq(id.as_uuid()))
            .filter(projects::Column::OrgId.eq(org_id.as_uuid()))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("project {id}")));
        }
        Ok(())
    }
}

pub(super) fn project_record(row: projects::Model) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: ProjectId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        egress_allowlist: json_to_string_list(&row.egress_allowlist, "egressAllowlist")?,
        name: row.name,
        template: row.template,
        cpu_count: to_u32(row.cpu_count, "cpuCount")?,
        memory_mb: to_u32(row.memory_mb, "memoryMB")?,
        timeout_sec: to_u32(row.timeout_sec, "timeoutSec")?,
        created_at: row.created_at,
        updated_at: row.updated_at,
        runtime: row.runtime,
    })
}
