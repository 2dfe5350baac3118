//! Orgs: create and look up.

use osb_proto::OrgId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::entities::orgs;
use crate::error::StoreError;
use crate::records::{OrgQuotas, OrgRecord};
use crate::store::Store;

impl Store {
    /// Creates an org; a duplicate name is `Conflict`.
    pub async fn create_org(&self, name: &str) -> Result<OrgRecord, StoreError> {
        let record = OrgRecord {
            id: OrgId::new(),
            name: name.to_owned(),
            created_at: super::convert::now(),
            development_runtime: false,
            quotas: OrgQuotas::default(),
        };
        let row = orgs::ActiveModel {
            id: Set(record.id.as_uuid()),
            name: Set(record.name.clone()),
            created_at: Set(record.created_at),
            development_runtime: Set(false),
            max_sandboxes: Set(None),
            max_cpus: Set(None),
            max_memory_mb: Set(None),
            max_checkpoint_bytes: Set(None),
        };
        orgs::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, &format!("org {name:?}")))?;
        Ok(record)
    }

    /// Finds an org by its unique name.
    pub async fn find_org_by_name(&self, name: &str) -> Result<Option<OrgRecord>, StoreError> {
        let row = orgs::Entity::find()
            .filter(orgs::Column::Name.eq(name))
            .one(&self.db)
            .await?;
        Ok(row.map(org_record))
    }

    /// Opts the org in to (or out of) development workers, whose egress control is
    /// cooperative (ADR 0025). `NotFound` if the org does not exist.
    pub async fn set_org_development_runtime(
        &self,
        id: OrgId,
        allowed: bool,
    ) -> Result<(), StoreError> {
        let result = orgs::Entity::update_many()
            .col_expr(
                orgs::Column::DevelopmentRuntime,
                sea_orm::sea_query::Expr::value(allowed),
            )
            .filter(orgs::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("org {id}")));
        }
        Ok(())
    }

    /// Loads an org by id.
    pub async fn get_org(&self, id: OrgId) -> Result<OrgRecord, StoreError> {
        orgs::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await?
            .map(org_record)
            .ok_or_else(|| StoreError::NotFound(format!("org {id}")))
    }
}

fn org_record(row: orgs::Model) -> OrgRecord {
    let quotas = super::quotas::quotas_of(&row);
    OrgRecord {
        id: OrgId::from_uuid(row.id),
        name: row.name,
        created_at: row.created_at,
        development_runtime: row.development_runtime,
        quotas,
    }
}
