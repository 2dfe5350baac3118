//! Checkpoint bytes (ADR 0032): `checkpoints.size_bytes` and `snapshots.size_bytes` hold what
//! the worker measured on disk when it wrote the layer, and `orgs.max_checkpoint_bytes` bounds
//! the sum of an org's checkpoint sizes (null: unlimited, every existing org).
//!
//! Rows written before this migration keep a null size: "not measured", never a made-up 0 —
//! the store cannot reach the worker holding the layer to measure it. The quota counts them as
//! nothing (it bounds what is written from now on); the API shows them as `null`. One column
//! per statement (SQLite alters one at a time).

use sea_orm_migration::prelude::*;

use super::idens::{Checkpoints, Orgs, Snapshots};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns, each nullable and without a default.
fn columns() -> [(DynIden, DynIden); 3] {
    [
        (
            Orgs::Table.into_iden(),
            Orgs::MaxCheckpointBytes.into_iden(),
        ),
        (
            Checkpoints::Table.into_iden(),
            Checkpoints::SizeBytes.into_iden(),
        ),
        (
            Snapshots::Table.into_iden(),
            Snapshots::SizeBytes.into_iden(),
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(ColumnDef::new(column).big_integer())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in columns().into_iter().rev() {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
