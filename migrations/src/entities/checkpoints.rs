//! The `checkpoints` table. Crate-private: never returned to callers, who get records.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub sandbox_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub metadata: Json,
    pub storage_path: String,
    pub created_at: DateTimeUtc,
    pub size_bytes: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
