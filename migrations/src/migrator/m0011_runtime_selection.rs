//! Runtime selection (ADR 0025): `projects.runtime` is the project's default runtime for new
//! sandboxes (`netns` or `microvm`; null means `netns`), and `orgs.development_runtime` says
//! whether the org opted in to development workers (cooperative egress; false unless an admin,
//! or `osbd up` running the development runtime, turned it on). One column per statement.

use sea_orm_migration::prelude::*;

use super::idens::{Orgs, Projects};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(ColumnDef::new(Projects::Runtime).string())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orgs::Table)
                    .add_column(
                        ColumnDef::new(Orgs::DevelopmentRuntime)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Orgs::Table)
                    .drop_column(Orgs::DevelopmentRuntime)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .drop_column(Projects::Runtime)
                    .to_owned(),
            )
            .await
    }
}
