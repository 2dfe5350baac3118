//! Secrets: ciphertext rows. Writes are conditional on the version the vault read, so two
//! concurrent updates cannot silently overwrite each other, and a rewrap never clobbers a
//! newer value written meanwhile.

use osb_proto::{OrgId, ProjectId, SecretId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::convert::{json_to_string_list, string_list_to_json, to_i16, to_i64, to_u16, to_u64};
use crate::entities::secrets;
use crate::error::StoreError;
use crate::records::{SealedSecretRow, SecretRecord, SecretWrite};
use crate::store::Store;

impl Store {
    /// Metadata of every secret in a project, sorted by name (never ciphertext, never values).
    pub async fn list_secrets(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<SecretRecord>, StoreError> {
        secrets::Entity::find()
            .filter(secrets::Column::ProjectId.eq(project_id.as_uuid()))
            .order_by_asc(secrets::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| sealed_row(row).map(|sealed| sealed.record))
            .collect()
    }

    /// One secret with its ciphertext, for the vault.
    pub async fn get_sealed_secret(
        &self,
        project_id: ProjectId,
        name: &str,
    ) -> Result<Option<SealedSecretRow>, StoreError> {
        secrets::Entity::find()
            .filter(secrets::Column::ProjectId.eq(project_id.as_uuid()))
            .filter(secrets::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(sealed_row)
            .transpose()
    }

    /// Every secret of a project with ciphertext (to seal a sandbox's session).
    pub async fn list_sealed_secrets(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<SealedSecretRow>, StoreError> {
        secrets::Entity::find()
            .filter(secrets::Column::ProjectId.eq(project_id.as_uuid()))
            .order_by_asc(secrets::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(sealed_row)
            .collect()
    }

    /// Inserts the first version of a secret. `Conflict` if the name exists in the project.
    pub async fn insert_secret(&self, write: SecretWrite) -> Result<SecretRecord, StoreError> {
        let now = super::convert::now();
        let id = write.id;
        let row = secrets::ActiveModel {
            id: Set(id.as_uuid()),
            org_id: Set(write.org_id.as_uuid()),
            project_id: Set(write.project_id.as_uuid()),
            name: Set(write.name.clone()),
            ciphertext: Set(write.ciphertext.clone()),
            key_version: Set(i32::from(write.key_version)),
            secret_version: Set(to_i64(write.secret_version, "secret version")?),
            allowed_hosts: Set(write.allowed_hosts.as_deref().map(string_list_to_json)),
            created_at: Set(now),
            updated_at: Set(now),
            row_binding: Set(to_i16(write.row_binding, "row binding")?),
        };
        secrets::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, &format!("secret {}", write.name)))?;
        Ok(SecretRecord {
            id,
            org_id: write.org_id,
            project_id: write.project_id,
            name: write.name,
            key_version: write.key_version,
            secret_version: write.secret_version,
            allowed_hosts: write.allowed_hosts,
            created_at: now,
            updated_at: now,
            row_binding: write.row_binding,
        })
    }

    /// Replaces a secret's ciphertext only if it is still the row `write.id` at
    /// `expected_version` (a secret deleted and re-created meanwhile is another row, whose id
    /// the ciphertext is not bound to); otherwise `Stale` (someone else wrote first) or
    /// `NotFound`.
    pub async fn replace_secret(
        &self,
        write: SecretWrite,
        expected_version: u64,
    ) -> Result<SecretRecord, StoreError> {
        let now = super::convert::now();
        let result = secrets::Entity::update_many()
            .col_expr(
                secrets::Column::Ciphertext,
                Expr::value(write.ciphertext.clone()),
            )
            .col_expr(
                secrets::Column::KeyVersion,
                Expr::value(i32::from(write.key_version)),
            )
            .col_expr(
                secrets::Column::SecretVersion,
                Expr::value(to_i64(write.secret_version, "secret version")?),
            )
            .col_expr(
                secrets::Column::AllowedHosts,
                Expr::value(write.allowed_hosts.as_deref().map(string_list_to_json)),
            )
            .col_expr(
                secrets::Column::RowBinding,
                Expr::value(to_i16(write.row_binding, "row binding")?),
            )
            .col_expr(secrets::Column::UpdatedAt, Expr::value(now))
            .filter(secrets::Column::Id.eq(write.id.as_uuid()))
            .filter(secrets::Column::ProjectId.eq(write.project_id.as_uuid()))
            .filter(secrets::Column::Name.eq(write.name.as_str()))
            .filter(secrets::Column::SecretVersion.eq(to_i64(expected_version, "secret version")?))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return match self
                .get_sealed_secret(write.project_id, &write.name)
                .await?
            {
                Some(_) => Err(StoreError::Stale(format!("secret {}", write.name))),
                None => Err(StoreError::NotFound(format!("secret {}", write.name))),
            };
        }
        self.get_sealed_secret(write.project_id, &write.name)
            .await?
            .map(|sealed| sealed.record)
            .ok_or_else(|| StoreError::NotFound(format!("secret {}", write.name)))
    }

    /// Deletes a secret by name. `NotFound` if absent.
    pub async fn delete_secret(&self, project_id: ProjectId, name: &str) -> Result<(), StoreError> {
        let result = secrets::Entity::delete_many()
            .filter(secrets::Column::ProjectId.eq(project_id.as_uuid()))
            .filter(secrets::Column::Name.eq(name))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("secret {name}")));
        }
        Ok(())
    }

    /// Up to `limit` secrets whose ciphertext is not under `key_version` or uses a row binding
    /// below `row_binding`, in id order, for the rewrap. Rows after `after` only, so a resumed
    /// run makes progress past failing rows.
    pub async fn list_secrets_to_rewrap(
        &self,
        key_version: u16,
        row_binding: u16,
        after: Option<SecretId>,
        limit: u64,
    ) -> Result<Vec<SealedSecretRow>, StoreError> {
        let mut query = secrets::Entity::find()
            .filter(
                Condition::any()
                    .add(secrets::Column::KeyVersion.ne(i32::from(key_version)))
                    .add(secrets::Column::RowBinding.lt(to_i16(row_binding, "row binding")?)),
            )
            .order_by_asc(secrets::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(secrets::Column::Id.gt(after.as_uuid()));
        }
        query
            .all(&self.db)
            .await?
            .into_iter()
            .map(sealed_row)
            .collect()
    }

    /// Swaps a secret's ciphertext to a new key and row binding, only if the row is still
    /// exactly what the rewrap read (same key version, row binding and secret version).
    /// Returns false if it changed meanwhile (a newer write is already current, or the secret
    /// was deleted).
    pub async fn rewrap_secret(
        &self,
        read: &SecretRecord,
        new_key_version: u16,
        new_row_binding: u16,
        new_ciphertext: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let (id, secret_version) = (read.id, read.secret_version);
        let result = secrets::Entity::update_many()
            .col_expr(secrets::Column::Ciphertext, Expr::value(new_ciphertext))
            .col_expr(
                secrets::Column::KeyVersion,
                Expr::value(i32::from(new_key_version)),
            )
            .col_expr(
                secrets::Column::RowBinding,
                Expr::value(to_i16(new_row_binding, "row binding")?),
            )
            .filter(secrets::Column::Id.eq(id.as_uuid()))
            .filter(secrets::Column::KeyVersion.eq(i32::from(read.key_version)))
            .filter(secrets::Column::RowBinding.eq(to_i16(read.row_binding, "row binding")?))
            .filter(secrets::Column::SecretVersion.eq(to_i64(secret_version, "secret version")?))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// How many secrets are stored under each key version.
    pub async fn count_secrets_by_key_version(&self) -> Result<Vec<(u16, u64)>, StoreError> {
        let rows: Vec<(i32, i64)> = secrets::Entity::find()
            .select_only()
            .column(secrets::Column::KeyVersion)
            .column_as(secrets::Column::Id.count(), "count")
            .group_by(secrets::Column::KeyVersion)
            .order_by_asc(secrets::Column::KeyVersion)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(version, count)| {
                Ok((
                    to_u16(version, "key version")?,
                    to_u64(count, "secret count")?,
                ))
            })
            .collect()
    }

    /// Test hook: set a row's binding layout as-is (to prove a rolled-back row is refused).
    /// Not for production paths.
    pub async fn set_row_binding_for_tests(
        &self,
        id: SecretId,
        row_binding: u16,
    ) -> Result<(), StoreError> {
        secrets::Entity::update_many()
            .col_expr(
                secrets::Column::RowBinding,
                Expr::value(to_i16(row_binding, "row binding")?),
            )
            .filter(secrets::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// How many secrets use a row binding below `row_binding` (the rewrap raises the floor only
    /// when none is left).
    pub async fn count_secrets_below_binding(&self, row_binding: u16) -> Result<u64, StoreError> {
        let count = secrets::Entity::find()
            .filter(secrets::Column::RowBinding.lt(to_i16(row_binding, "row binding")?))
            .count(&self.db)
            .await?;
        Ok(count)
    }

    /// Test and tooling hook: overwrite a ciphertext as-is (used to prove that a ciphertext
    /// moved to another row fails to decrypt). Not for production paths.
    pub async fn overwrite_ciphertext_for_tests(
        &self,
        id: SecretId,
        ciphertext: Vec<u8>,
    ) -> Result<(), StoreError> {
        secrets::Entity::update_many()
            .col_expr(secrets::Column::Ciphertext, Expr::value(ciphertext))
            .filter(secrets::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

pub(super) fn sealed_row(row: secrets::Model) -> Result<SealedSecretRow, StoreError> {
    let allowed_hosts = row
        .allowed_hosts
        .as_ref()
        .map(|value| json_to_string_list(value, "allowedHosts"))
        .transpose()?;
    Ok(SealedSecretRow {
        record: SecretRecord {
            id: SecretId::from_uuid(row.id),
            org_id: OrgId::from_uuid(row.org_id),
            project_id: ProjectId::from_uuid(row.project_id),
            name: row.name,
            key_version: to_u16(row.key_version, "key version")?,
            secret_version: to_u64(row.secret_version, "secret version")?,
            allowed_hosts,
            created_at: row.created_at,
            updated_at: row.updated_at,
            row_binding: to_u16(i32::from(row.row_binding), "row binding")?,
        },
        ciphertext: row.ciphertext,
    })
}
