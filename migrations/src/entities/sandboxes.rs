//! The `sandboxes` table. Crate-private: never returned to callers, who get records.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sandboxes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Option<Uuid>,
    pub project_name: Option<String>,
    pub worker_id: Option<String>,
    pub status: String,
    pub generation: i64,
    pub template: String,
    pub cpu_count: i32,
    pub memory_mb: i32,
    pub timeout_sec: i32,
    pub failure_reason: Option<String>,
    pub runtime: Option<String>,
    pub egress: Option<String>,
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
