//! The `orgs` table. Crate-private: never returned to callers, who get records.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orgs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTimeUtc,
    pub development_runtime: bool,
    pub max_sandboxes: Option<i64>,
    pub max_cpus: Option<i64>,
    pub max_memory_mb: Option<i64>,
    pub max_checkpoint_bytes: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
