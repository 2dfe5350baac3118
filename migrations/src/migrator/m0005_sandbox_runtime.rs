//! Which runtime runs a sandbox (`netns`, `dev`, …) and how its egress is confined
//! (`enforced` or `cooperative`), so `GET /sandboxes/{id}` can say loudly when a sandbox runs
//! without network-level enforcement. One column per statement: SQLite alters one at a time.

use sea_orm_migration::prelude::*;

use super::idens::Sandboxes;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Sandboxes::Runtime, Sandboxes::Egress] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sandboxes::Table)
                        .add_column(ColumnDef::new(column).string())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Sandboxes::Egress, Sandboxes::Runtime] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sandboxes::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
