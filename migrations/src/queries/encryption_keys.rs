//! The master-key registry: which fingerprint got which version number.

use sea_orm::{EntityTrait, QueryOrder, Set};

use super::convert::to_u16;
use crate::entities::encryption_keys;
use crate::error::StoreError;
use crate::records::EncryptionKeyRecord;
use crate::store::Store;

impl Store {
    /// All registered keys, oldest version first.
    pub async fn list_encryption_keys(&self) -> Result<Vec<EncryptionKeyRecord>, StoreError> {
        let rows = encryption_keys::Entity::find()
            .order_by_asc(encryption_keys::Column::Version)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(EncryptionKeyRecord {
                    version: to_u16(row.version, "encryption key version")?,
                    fingerprint: row.fingerprint,
                    created_at: row.created_at,
                })
            })
            .collect()
    }

    /// Registers a fingerprint under a version. `Conflict` when another process registered the
    /// same version or fingerprint first; the caller re-reads the registry and retries.
    pub async fn register_encryption_key(
        &self,
        version: u16,
        fingerprint: &str,
    ) -> Result<EncryptionKeyRecord, StoreError> {
        let record = EncryptionKeyRecord {
            version,
            fingerprint: fingerprint.to_owned(),
            created_at: super::convert::now(),
        };
        let row = encryption_keys::ActiveModel {
            version: Set(i32::from(version)),
            fingerprint: Set(record.fingerprint.clone()),
            created_at: Set(record.created_at),
        };
        encryption_keys::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, &format!("encryption key v{version}")))?;
        Ok(record)
    }
}
