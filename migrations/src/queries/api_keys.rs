//! API keys: stored as a hash plus a short display prefix; looked up by hash.

use osb_proto::OrgId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::entities::api_keys;
use crate::error::StoreError;
use crate::records::ApiKeyRecord;
use crate::store::Store;

impl Store {
    /// Records a new API key by its hash (the caller hashes; the key never reaches the store).
    pub async fn insert_api_key(
        &self,
        org_id: OrgId,
        name: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<ApiKeyRecord, StoreError> {
        let record = ApiKeyRecord {
            id: uuid::Uuid::new_v4(),
            org_id,
            name: name.to_owned(),
            key_prefix: key_prefix.to_owned(),
            created_at: super::convert::now(),
            revoked_at: None,
        };
        let row = api_keys::ActiveModel {
            id: Set(record.id),
            org_id: Set(org_id.as_uuid()),
            name: Set(record.name.clone()),
            key_hash: Set(key_hash.to_owned()),
            key_prefix: Set(record.key_prefix.clone()),
            created_at: Set(record.created_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
        };
        api_keys::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, "api key"))?;
        Ok(record)
    }

    /// Finds a non-revoked key by its hash.
    pub async fn find_active_api_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(key_hash))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?;
        Ok(row.map(|row| ApiKeyRecord {
            id: row.id,
            org_id: OrgId::from_uuid(row.org_id),
            name: row.name,
            key_prefix: row.key_prefix,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }))
    }
}
