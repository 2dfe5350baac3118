//! Secret ciphertext bound to its row's id (ADR 0019): `secrets.row_binding` says which
//! associated-data layout a row's ciphertext uses (1: org, project, name, version; 2: the same
//! plus the row id), and the one-row `vault_state` table holds the lowest layout the vault
//! still opens. Existing rows keep layout 1 until `osbd keys rewrap` moves them to 2; once
//! none is left, the floor rises to 2 and a layout-1 ciphertext is never accepted again.

use sea_orm_migration::prelude::*;

use super::columns::timestamp;
use super::idens::{Secrets, VaultState};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Secrets::Table)
                    .add_column(
                        ColumnDef::new(Secrets::RowBinding)
                            .small_integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(VaultState::Table)
                    .col(
                        ColumnDef::new(VaultState::Id)
                            .small_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(VaultState::BindingFloor)
                            .small_integer()
                            .not_null(),
                    )
                    .col(timestamp(VaultState::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(VaultState::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Secrets::Table)
                    .drop_column(Secrets::RowBinding)
                    .to_owned(),
            )
            .await
    }
}
