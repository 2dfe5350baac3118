//! API keys: stored as a hash plus a short display prefix; looked up by hash; listed, revoked
//! and rotated per org; `last_used_at` written in batches (ADR 0026). The key itself never
//! reaches the store.

use chrono::{DateTime, Utc};
use osb_proto::OrgId;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::entities::api_keys;
use crate::error::StoreError;
use crate::records::{ApiKeyRecord, NewApiKey};
use crate::store::Store;

/// The scope keys had before scopes existed: everything.
const ADMIN_SCOPE: &str = "admin";

impl Store {
    /// Records a new `admin` key without expiry (org bootstrap).
    pub async fn insert_api_key(
        &self,
        org_id: OrgId,
        name: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.create_api_key(NewApiKey {
            org_id,
            name: name.to_owned(),
            key_hash: key_hash.to_owned(),
            key_prefix: key_prefix.to_owned(),
            scope: ADMIN_SCOPE.to_owned(),
            expires_at: None,
        })
        .await
    }

    /// Records a new key with its scope and optional expiry.
    pub async fn create_api_key(&self, new: NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        let (record, row) = new_row(new);
        api_keys::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, "api key"))?;
        Ok(record)
    }

    /// Finds a non-revoked key by its hash (expired keys included: the caller decides).
    pub async fn find_active_api_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .find_api_key_by_hash(key_hash)
            .await?
            .filter(|record| record.revoked_at.is_none()))
    }

    /// Finds a key by its hash, revoked or not (so a revoked key can be told apart from an
    /// unknown one).
    pub async fn find_api_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(key_hash))
            .one(&self.db)
            .await?;
        Ok(row.map(record))
    }

    /// Every key of the org, oldest first.
    pub async fn list_api_keys(&self, org_id: OrgId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(api_keys::Entity::find()
            .filter(api_keys::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_asc(api_keys::Column::CreatedAt)
            .order_by_asc(api_keys::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(record)
            .collect())
    }

    /// One key of the org, or `NotFound`.
    pub async fn get_api_key(
        &self,
        org_id: OrgId,
        id: uuid::Uuid,
    ) -> Result<ApiKeyRecord, StoreError> {
        api_keys::Entity::find_by_id(id)
            .filter(api_keys::Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db)
            .await?
            .map(record)
            .ok_or_else(|| StoreError::NotFound(format!("api key {id}")))
    }

    /// Revokes a key of the org (a revoked key stays revoked at its first time).
    pub async fn revoke_api_key(
        &self,
        org_id: OrgId,
        id: uuid::Uuid,
    ) -> Result<ApiKeyRecord, StoreError> {
        api_keys::Entity::update_many()
            .col_expr(
                api_keys::Column::RevokedAt,
                Expr::value(super::convert::now()),
            )
            .filter(api_keys::Column::Id.eq(id))
            .filter(api_keys::Column::OrgId.eq(org_id.as_uuid()))
            .filter(api_keys::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        self.get_api_key(org_id, id).await
    }

    /// Rotates a live key of the org: one transaction records `replacement` (same name, scope
    /// and expiry as the old key unless the caller chose others) and revokes the old key, so
    /// exactly one of them works at any time. A revoked key cannot be rotated (`Conflict`).
    pub async fn rotate_api_key(
        &self,
        org_id: OrgId,
        id: uuid::Uuid,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<ApiKeyRecord, StoreError> {
        let transaction = self.db.begin().await?;
        // The revoking write comes first: a SQLite transaction that reads before it writes
        // cannot wait for another writer ("database is locked"); one that writes first can.
        let revoked = api_keys::Entity::update_many()
            .col_expr(
                api_keys::Column::RevokedAt,
                Expr::value(super::convert::now()),
            )
            .filter(api_keys::Column::Id.eq(id))
            .filter(api_keys::Column::OrgId.eq(org_id.as_uuid()))
            .filter(api_keys::Column::RevokedAt.is_null())
            .exec(&transaction)
            .await?;
        let old = api_keys::Entity::find_by_id(id)
            .filter(api_keys::Column::OrgId.eq(org_id.as_uuid()))
            .one(&transaction)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("api key {id}")))?;
        if revoked.rows_affected == 0 {
            return Err(StoreError::Conflict(format!(
                "api key {id} is revoked; create a new key instead"
            )));
        }
        let (replacement, row) = new_row(NewApiKey {
            org_id,
            name: old.name,
            key_hash: key_hash.to_owned(),
            key_prefix: key_prefix.to_owned(),
            scope: old.scope,
            expires_at: old.expires_at,
        });
        api_keys::Entity::insert(row)
            .exec_without_returning(&transaction)
            .await
            .map_err(|error| StoreError::from_db(error, "api key"))?;
        transaction.commit().await?;
        Ok(replacement)
    }

    /// Writes a batch of `last_used_at` times (one statement per key; keys that were used
    /// later already are left alone).
    pub async fn record_api_key_use(
        &self,
        uses: &[(uuid::Uuid, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        for (id, at) in uses {
            api_keys::Entity::update_many()
                .col_expr(api_keys::Column::LastUsedAt, Expr::value(*at))
                .filter(api_keys::Column::Id.eq(*id))
                .filter(
                    Condition::any()
                        .add(api_keys::Column::LastUsedAt.is_null())
                        .add(api_keys::Column::LastUsedAt.lt(*at)),
                )
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }
}

fn new_row(new: NewApiKey) -> (ApiKeyRecord, api_keys::ActiveModel) {
    let record = ApiKeyRecord {
        id: uuid::Uuid::new_v4(),
        org_id: new.org_id,
        name: new.name,
        key_prefix: new.key_prefix,
        created_at: super::convert::now(),
        revoked_at: None,
        scope: new.scope,
        expires_at: new.expires_at,
        last_used_at: None,
    };
    let row = api_keys::ActiveModel {
        id: Set(record.id),
        org_id: Set(new.org_id.as_uuid()),
        name: Set(record.name.clone()),
        key_hash: Set(new.key_hash),
        key_prefix: Set(record.key_prefix.clone()),
        created_at: Set(record.created_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        scope: Set(record.scope.clone()),
        expires_at: Set(record.expires_at),
    };
    (record, row)
}

fn record(row: api_keys::Model) -> ApiKeyRecord {
    ApiKeyRecord {
        id: row.id,
        org_id: OrgId::from_uuid(row.org_id),
        name: row.name,
        key_prefix: row.key_prefix,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
        scope: row.scope,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
    }
}
