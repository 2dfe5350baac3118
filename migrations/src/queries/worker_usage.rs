//! One org's footprint on the shared workers: how many of its sandboxes are active (creating,
//! running or stopped) on each worker. The gateway's workers view shows an org this and never
//! other orgs' counts.

use osb_proto::OrgId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::convert::to_u64;
use crate::entities::sandboxes;
use crate::error::StoreError;
use crate::records::SandboxStatus;
use crate::store::Store;

impl Store {
    /// `(worker name, active sandboxes of org)` for every worker the org has one on.
    pub async fn count_active_sandboxes_by_worker(
        &self,
        org_id: OrgId,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(Option<String>, i64)> = sandboxes::Entity::find()
            .select_only()
            .column(sandboxes::Column::WorkerId)
            .column_as(sandboxes::Column::Id.count(), "count")
            .filter(sandboxes::Column::OrgId.eq(org_id.as_uuid()))
            .filter(sandboxes::Column::WorkerId.is_not_null())
            .filter(sandboxes::Column::Status.is_in([
                SandboxStatus::Running.as_str(),
                SandboxStatus::Creating.as_str(),
                SandboxStatus::Stopped.as_str(),
            ]))
            .group_by(sandboxes::Column::WorkerId)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .filter_map(|(worker, count)| Some((worker?, count)))
            .map(|(worker, count)| Ok((worker, to_u64(count, "count")?)))
            .collect()
    }
}
