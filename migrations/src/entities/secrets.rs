//! The `secrets` table: ciphertext only. Crate-private: never returned to callers, who get records.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub ciphertext: Vec<u8>,
    pub key_version: i32,
    pub secret_version: i64,
    pub allowed_hosts: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Which associated-data layout the ciphertext uses (1: without the row id, 2: with it).
    pub row_binding: i16,
}

// Hand-written so a stray `{:?}` cannot dump ciphertext into a log.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("secrets::Model")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("name", &self.name)
            .field("key_version", &self.key_version)
            .field("secret_version", &self.secret_version)
            .field("row_binding", &self.row_binding)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
