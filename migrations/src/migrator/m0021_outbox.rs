//! The event outbox (issue 14 item 5): an event is written here in the same transaction as the
//! state change it announces, and a relay publishes it to the bus afterwards with `Nats-Msg-Id`
//! = `msg_id`, then removes the row. A crash between commit and publish therefore loses
//! nothing (the row waits), and a publish repeated after a crash is dropped by the bus's
//! duplicate window. Payloads are the events' envelopes: ids, names, statuses, never a value.

use sea_orm_migration::prelude::*;

use super::columns::timestamp;
use super::idens::Outbox;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(
                        ColumnDef::new(Outbox::MsgId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Outbox::Subject).string().not_null())
                    .col(ColumnDef::new(Outbox::Payload).binary().not_null())
                    .col(timestamp(Outbox::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_created")
                    .table(Outbox::Table)
                    .col(Outbox::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
