//! The event outbox: append an event (alone, or in the same transaction as the sandbox
//! transition it announces), read the oldest waiting ones, remove those the relay published.
//! Appending the same `msg_id` twice keeps one row, so a step that reruns after a crash does not
//! announce twice. Never stores a value: callers pass event envelopes only.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use super::convert::now;
use crate::entities::outbox;
use crate::error::StoreError;
use crate::listing_epochs::ListingWrite;
use crate::records::{OutboxEvent, SandboxStatus};
use crate::store::Store;
use osb_proto::{SandboxId, WorkerName};

impl Store {
    /// Appends `event` (a no-op when its `msg_id` is already waiting).
    pub async fn append_outbox(&self, event: &OutboxEvent) -> Result<(), StoreError> {
        insert_event(&self.db, event).await
    }

    /// `transition_sandbox` and the event announcing it, in one transaction: both or neither.
    pub async fn transition_sandbox_announcing(
        &self,
        id: SandboxId,
        expected_generation: u64,
        status: SandboxStatus,
        (worker_id, failure_reason): (Option<&WorkerName>, Option<&str>),
        event: &OutboxEvent,
    ) -> Result<u64, StoreError> {
        let _write = ListingWrite::of_unknown_org();
        let transaction = self.db.begin().await?;
        let generation = super::sandboxes::transition_on(
            &transaction,
            id,
            expected_generation,
            status,
            worker_id,
            failure_reason,
        )
        .await?;
        insert_event(&transaction, event).await?;
        transaction.commit().await?;
        Ok(generation)
    }

    /// Up to `limit` waiting events, oldest first.
    pub async fn waiting_outbox(&self, limit: u64) -> Result<Vec<OutboxEvent>, StoreError> {
        Ok(outbox::Entity::find()
            .order_by_asc(outbox::Column::CreatedAt)
            .order_by_asc(outbox::Column::MsgId)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| OutboxEvent {
                msg_id: row.msg_id,
                subject: row.subject,
                payload: row.payload,
            })
            .collect())
    }

    /// Removes published events.
    pub async fn remove_outbox(&self, msg_ids: &[String]) -> Result<(), StoreError> {
        if msg_ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::delete_many()
            .filter(outbox::Column::MsgId.is_in(msg_ids.iter().map(String::as_str)))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

async fn insert_event<C: ConnectionTrait>(db: &C, event: &OutboxEvent) -> Result<(), StoreError> {
    let row = outbox::ActiveModel {
        msg_id: Set(event.msg_id.clone()),
        subject: Set(event.subject.clone()),
        payload: Set(event.payload.clone()),
        created_at: Set(now()),
    };
    outbox::Entity::insert(row)
        .on_conflict(
            OnConflict::column(outbox::Column::MsgId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
