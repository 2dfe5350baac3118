//! Projects (name unique per org, sandbox defaults, egress allowlist) and their secrets
//! (ciphertext with key version and secret version; name unique per project). Secrets go with
//! their project (cascade); nothing else may block a project's deletion.

use sea_orm_migration::prelude::*;

use super::columns::{foreign_key, timestamp};

use super::idens::{Orgs, Projects, Secrets};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .col(ColumnDef::new(Projects::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Projects::OrgId).uuid().not_null())
                    .col(ColumnDef::new(Projects::Name).string().not_null())
                    .col(ColumnDef::new(Projects::Template).string())
                    .col(ColumnDef::new(Projects::CpuCount).integer().not_null())
                    .col(ColumnDef::new(Projects::MemoryMb).integer().not_null())
                    .col(ColumnDef::new(Projects::TimeoutSec).integer().not_null())
                    .col(ColumnDef::new(Projects::EgressAllowlist).json().not_null())
                    .col(timestamp(Projects::CreatedAt))
                    .col(timestamp(Projects::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_projects_org",
                        (Projects::Table, Projects::OrgId),
                        (Orgs::Table, Orgs::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_projects_org_name")
                    .table(Projects::Table)
                    .col(Projects::OrgId)
                    .col(Projects::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Secrets::Table)
                    .col(ColumnDef::new(Secrets::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Secrets::OrgId).uuid().not_null())
                    .col(ColumnDef::new(Secrets::ProjectId).uuid().not_null())
                    .col(ColumnDef::new(Secrets::Name).string().not_null())
                    .col(ColumnDef::new(Secrets::Ciphertext).binary().not_null())
                    .col(ColumnDef::new(Secrets::KeyVersion).integer().not_null())
                    .col(
                        ColumnDef::new(Secrets::SecretVersion)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Secrets::AllowedHosts).json())
                    .col(timestamp(Secrets::CreatedAt))
                    .col(timestamp(Secrets::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_secrets_project",
                        (Secrets::Table, Secrets::ProjectId),
                        (Projects::Table, Projects::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_secrets_project_name")
                    .table(Secrets::Table)
                    .col(Secrets::ProjectId)
                    .col(Secrets::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_secrets_key_version")
                    .table(Secrets::Table)
                    .col(Secrets::KeyVersion)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Secrets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Projects::Table).to_owned())
            .await
    }
}
