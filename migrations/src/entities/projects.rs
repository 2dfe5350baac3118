//! The `projects` table. Crate-private: never returned to callers, who get records.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub template: Option<String>,
    pub cpu_count: i32,
    pub memory_mb: i32,
    pub timeout_sec: i32,
    pub egress_allowlist: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub runtime: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
