//! Sandboxes (with a generation column so replayed saga steps can tell "already done" from
//! "changed by someone else"), checkpoints and golden snapshots. Checkpoint and snapshot rows
//! hold metadata only: env names, secret names and token ids, never values. A project's
//! deletion sets `project_id` to NULL on historic rows instead of being blocked by them.

use sea_orm_migration::prelude::*;

use super::columns::{foreign_key, timestamp};

use super::idens::{Checkpoints, Orgs, Projects, Sandboxes, Snapshots};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sandboxes::Table)
                    .col(
                        ColumnDef::new(Sandboxes::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Sandboxes::OrgId).uuid().not_null())
                    .col(ColumnDef::new(Sandboxes::ProjectId).uuid())
                    .col(ColumnDef::new(Sandboxes::ProjectName).string())
                    .col(ColumnDef::new(Sandboxes::WorkerId).string())
                    .col(ColumnDef::new(Sandboxes::Status).string().not_null())
                    .col(
                        ColumnDef::new(Sandboxes::Generation)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Sandboxes::Template).string().not_null())
                    .col(ColumnDef::new(Sandboxes::CpuCount).integer().not_null())
                    .col(ColumnDef::new(Sandboxes::MemoryMb).integer().not_null())
                    .col(ColumnDef::new(Sandboxes::TimeoutSec).integer().not_null())
                    .col(ColumnDef::new(Sandboxes::FailureReason).text())
                    .col(timestamp(Sandboxes::CreatedAt))
                    .col(timestamp(Sandboxes::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_sandboxes_org",
                        (Sandboxes::Table, Sandboxes::OrgId),
                        (Orgs::Table, Orgs::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_sandboxes_project",
                        (Sandboxes::Table, Sandboxes::ProjectId),
                        (Projects::Table, Projects::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Checkpoints::Table)
                    .col(
                        ColumnDef::new(Checkpoints::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Checkpoints::OrgId).uuid().not_null())
                    .col(ColumnDef::new(Checkpoints::SandboxId).uuid())
                    .col(ColumnDef::new(Checkpoints::ProjectId).uuid())
                    .col(ColumnDef::new(Checkpoints::Metadata).json().not_null())
                    .col(ColumnDef::new(Checkpoints::StoragePath).string().not_null())
                    .col(timestamp(Checkpoints::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_checkpoints_org",
                        (Checkpoints::Table, Checkpoints::OrgId),
                        (Orgs::Table, Orgs::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_checkpoints_sandbox",
                        (Checkpoints::Table, Checkpoints::SandboxId),
                        (Sandboxes::Table, Sandboxes::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_checkpoints_project",
                        (Checkpoints::Table, Checkpoints::ProjectId),
                        (Projects::Table, Projects::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Snapshots::Table)
                    .col(
                        ColumnDef::new(Snapshots::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Snapshots::OrgId).uuid().not_null())
                    .col(ColumnDef::new(Snapshots::Name).string().not_null())
                    .col(ColumnDef::new(Snapshots::CheckpointId).uuid())
                    .col(ColumnDef::new(Snapshots::Metadata).json().not_null())
                    .col(timestamp(Snapshots::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_snapshots_org",
                        (Snapshots::Table, Snapshots::OrgId),
                        (Orgs::Table, Orgs::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_snapshots_checkpoint",
                        (Snapshots::Table, Snapshots::CheckpointId),
                        (Checkpoints::Table, Checkpoints::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_snapshots_org_name")
                    .table(Snapshots::Table)
                    .col(Snapshots::OrgId)
                    .col(Snapshots::Name)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Snapshots::Table.into_iden(),
            Checkpoints::Table.into_iden(),
            Sandboxes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
