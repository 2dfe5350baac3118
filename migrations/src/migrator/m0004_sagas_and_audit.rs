//! Saga bookkeeping (one row per saga with its owner claim, one log row per step action,
//! unique per `(saga, step, action)` so a replayed step is recognised), processed command
//! idempotency keys, and the audit trail of events (names, hosts, ids — never values).

use sea_orm_migration::prelude::*;

use super::columns::{foreign_key, timestamp};

use super::idens::{AuditEvents, ProcessedCommands, SagaLog, Sagas};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sagas::Table)
                    .col(ColumnDef::new(Sagas::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Sagas::Kind).string().not_null())
                    .col(ColumnDef::new(Sagas::Status).string().not_null())
                    .col(ColumnDef::new(Sagas::Owner).string())
                    .col(ColumnDef::new(Sagas::ClaimedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Sagas::Params).json().not_null())
                    .col(timestamp(Sagas::CreatedAt))
                    .col(timestamp(Sagas::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SagaLog::Table)
                    .col(ColumnDef::new(SagaLog::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(SagaLog::SagaId).uuid().not_null())
                    .col(ColumnDef::new(SagaLog::Seq).integer().not_null())
                    .col(ColumnDef::new(SagaLog::Step).string().not_null())
                    .col(ColumnDef::new(SagaLog::Action).string().not_null())
                    .col(ColumnDef::new(SagaLog::Status).string().not_null())
                    .col(ColumnDef::new(SagaLog::Output).json())
                    .col(timestamp(SagaLog::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_saga_log_saga",
                        (SagaLog::Table, SagaLog::SagaId),
                        (Sagas::Table, Sagas::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_saga_log_step_action")
                    .table(SagaLog::Table)
                    .col(SagaLog::SagaId)
                    .col(SagaLog::Step)
                    .col(SagaLog::Action)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProcessedCommands::Table)
                    .col(
                        ColumnDef::new(ProcessedCommands::IdempotencyKey)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ProcessedCommands::Response).json())
                    .col(timestamp(ProcessedCommands::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditEvents::OrgId).uuid())
                    .col(ColumnDef::new(AuditEvents::Subject).string().not_null())
                    .col(ColumnDef::new(AuditEvents::Kind).string().not_null())
                    .col(ColumnDef::new(AuditEvents::Payload).json().not_null())
                    .col(timestamp(AuditEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_events_org_created")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::OrgId)
                    .col(AuditEvents::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            ProcessedCommands::Table.into_iden(),
            SagaLog::Table.into_iden(),
            Sagas::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
