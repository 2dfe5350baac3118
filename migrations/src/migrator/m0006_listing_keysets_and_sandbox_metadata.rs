//! Keyset pagination of the list endpoints and sandbox metadata. Every listing is an index
//! range scan, never an offset scan: sandboxes newest first per org (`org_id, created_at, id`),
//! checkpoints newest first per sandbox (`org_id, sandbox_id, created_at, id`); projects,
//! secrets and snapshots already have their unique `(owner, name)` indexes. `sandboxes.metadata`
//! holds the caller's string map (bounded by the gateway); NULL on older rows reads as `{}`.
//! One change per statement: SQLite alters one column at a time.

use sea_orm_migration::prelude::*;

use super::idens::{Checkpoints, Sandboxes};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SANDBOXES_INDEX: &str = "ix_sandboxes_org_created_id";
const CHECKPOINTS_INDEX: &str = "ix_checkpoints_org_sandbox_created_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sandboxes::Table)
                    .add_column(ColumnDef::new(Sandboxes::Metadata).json())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SANDBOXES_INDEX)
                    .table(Sandboxes::Table)
                    .col(Sandboxes::OrgId)
                    .col(Sandboxes::CreatedAt)
                    .col(Sandboxes::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CHECKPOINTS_INDEX)
                    .table(Checkpoints::Table)
                    .col(Checkpoints::OrgId)
                    .col(Checkpoints::SandboxId)
                    .col(Checkpoints::CreatedAt)
                    .col(Checkpoints::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            (CHECKPOINTS_INDEX, Checkpoints::Table.into_iden()),
            (SANDBOXES_INDEX, Sandboxes::Table.into_iden()),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Sandboxes::Table)
                    .drop_column(Sandboxes::Metadata)
                    .to_owned(),
            )
            .await
    }
}
