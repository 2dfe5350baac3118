//! Orgs: create and look up.

use osb_proto::OrgId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::entities::orgs;
use crate::error::StoreError;
use crate::records::OrgRecord;
use crate::store::Store;

impl Store {
    /// Creates an org; a duplicate name is `Conflict`.
    pub async fn create_org(&self, name: &str) -> Result<OrgRecord, StoreError> {
        let record = OrgRecord {
            id: OrgId::new(),
            name: name.to_owned(),
            created_at: super::convert::now(),
        };
        let row = orgs::ActiveModel {
            id: Set(record.id.as_uuid()),
            name: Set(record.name.clone()),
            created_at: Set(record.created_at),
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
    OrgRecord {
        id: OrgId::from_uuid(row.id),
        name: row.name,
        created_at: row.created_at,
    }
}
