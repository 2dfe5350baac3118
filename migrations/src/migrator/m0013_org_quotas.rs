//! Per-org quotas (ADR 0027): `orgs.max_sandboxes`, `orgs.max_cpus` and `orgs.max_memory_mb`
//! bound the org's active sandboxes (creating, running, stopped); null means unlimited (every
//! existing org). One column per statement (SQLite alters one at a time).

use sea_orm_migration::prelude::*;

use super::idens::Orgs;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [Orgs; 3] = [Orgs::MaxSandboxes, Orgs::MaxCpus, Orgs::MaxMemoryMb];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orgs::Table)
                        .add_column(ColumnDef::new(column).big_integer())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS.into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orgs::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
