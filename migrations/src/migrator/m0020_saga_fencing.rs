//! Saga fencing (issue 14 item 4): `sagas.generation` is bumped by every claim, and every step
//! and status write names the generation it was made under, so a control plane whose lease was
//! taken over can no longer write anything for that saga. Existing rows start at generation 0;
//! the next claim moves them on.

use sea_orm_migration::prelude::*;

use super::idens::Sagas;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sagas::Table)
                    .add_column(
                        ColumnDef::new(Sagas::Generation)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sagas::Table)
                    .drop_column(Sagas::Generation)
                    .to_owned(),
            )
            .await
    }
}
