//! Saga bookkeeping: create, claim (one owner at a time, lease-based takeover of a crashed
//! owner's sagas), log step actions (one row per saga/step/action, upserted as it moves from
//! started to completed or failed), and find unfinished sagas on start.
//!
//! Fencing: every claim bumps the saga's generation, and every write after it (renewal, step
//! log, status) is conditional on the owner *and* the generation in the same transaction, so a
//! control plane whose claim was taken over can never write for that saga again, even if it
//! wakes up mid-step long after its lease ran out.

use chrono::{DateTime, Duration, Utc};
use osb_proto::SagaId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, Set, Statement, TransactionTrait,
};

use super::convert::now;
use crate::entities::{saga_log, sagas};
use crate::error::StoreError;
use crate::records::{SagaClaim, SagaLogEntry, SagaRecord, SagaStatus, StepAction, StepStatus};
use crate::store::{DatabaseKind, Store};

impl Store {
    /// Records a new saga, owned by `owner`, in `running` state.
    pub async fn create_saga(
        &self,
        id: SagaId,
        kind: &str,
        params: serde_json::Value,
        owner: &str,
    ) -> Result<SagaRecord, StoreError> {
        let at = now();
        let row_params = params.clone();
        let row = sagas::ActiveModel {
            id: Set(id.as_uuid()),
            kind: Set(kind.to_owned()),
            status: Set(SagaStatus::Running.as_str().to_owned()),
            owner: Set(Some(owner.to_owned())),
            claimed_at: Set(Some(at)),
            params: Set(params),
            created_at: Set(at),
            updated_at: Set(at),
            generation: Set(1),
        };
        sagas::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(|error| StoreError::from_db(error, &format!("saga {id}")))?;
        // The row is exactly what was inserted: no read back (one round trip less per saga).
        Ok(SagaRecord {
            id,
            status: SagaStatus::Running,
            kind: kind.to_owned(),
            owner: Some(owner.to_owned()),
            claimed_at: Some(at),
            params: row_params,
            created_at: at,
            updated_at: at,
            generation: 1,
        })
    }

    /// Loads a saga.
    pub async fn get_saga(&self, id: SagaId) -> Result<SagaRecord, StoreError> {
        sagas::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await?
            .map(saga_record)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("saga {id}")))
    }

    /// Unfinished sagas (running, unwinding or stuck), oldest first.
    pub async fn list_unfinished_sagas(&self) -> Result<Vec<SagaRecord>, StoreError> {
        sagas::Entity::find()
            .filter(sagas::Column::Status.is_in([
                SagaStatus::Running.as_str(),
                SagaStatus::Unwinding.as_str(),
                SagaStatus::Stuck.as_str(),
            ]))
            .order_by_asc(sagas::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(saga_record)
            .collect()
    }

    /// Claims a saga for `owner` if it is unowned, already ours, or its owner's claim is older
    /// than `lease` (a crashed control plane). Returns the new claim (its generation one above
    /// the last), or `None` when another owner still holds the saga. The check and the write are
    /// one conditional UPDATE, so two control planes cannot both win, and the generation bump
    /// fences off every older claim, including an earlier one of the same owner.
    pub async fn claim_saga(
        &self,
        id: SagaId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<SagaClaim>, StoreError> {
        let at = now();
        let expired: DateTime<Utc> = at - lease;
        let result = sagas::Entity::update_many()
            .col_expr(sagas::Column::Owner, Expr::value(owner))
            .col_expr(sagas::Column::ClaimedAt, Expr::value(at))
            .col_expr(
                sagas::Column::Generation,
                Expr::col(sagas::Column::Generation).add(1),
            )
            .filter(sagas::Column::Id.eq(id.as_uuid()))
            .filter(
                Condition::any()
                    .add(sagas::Column::Owner.is_null())
                    .add(sagas::Column::Owner.eq(owner))
                    .add(sagas::Column::ClaimedAt.lt(expired)),
            )
            .exec(&self.db)
            .await?;
        if result.rows_affected != 1 {
            return Ok(None);
        }
        // The generation we just wrote; a later claim can only have raised it, which the first
        // fenced write will notice.
        Ok(self
            .get_saga(id)
            .await?
            .claim()
            .filter(|claim| claim.owner == owner))
    }

    /// Renews `claim` (its lease starts again now). `Stale` if another claim replaced it.
    pub async fn renew_saga_claim(&self, id: SagaId, claim: &SagaClaim) -> Result<(), StoreError> {
        touch_claim(&self.db, id, claim, None).await
    }

    /// Sets a saga's status under `claim` (and renews it). `Stale` if the claim was replaced.
    pub async fn set_saga_status(
        &self,
        id: SagaId,
        claim: &SagaClaim,
        status: SagaStatus,
    ) -> Result<(), StoreError> {
        touch_claim(&self.db, id, claim, Some(status)).await
    }

    /// Records a step action's status (upsert on saga/step/action) under `claim`, renewing it in
    /// the same transaction; `Stale` (and nothing written) if another claim replaced it.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_saga_step(
        &self,
        id: SagaId,
        claim: &SagaClaim,
        seq: u32,
        step: &str,
        action: StepAction,
        status: StepStatus,
        output: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let entry = SagaLogEntry {
            seq,
            step: step.to_owned(),
            action,
            status,
            output,
        };
        self.record_saga_steps(id, claim, std::slice::from_ref(&entry), None)
            .await
    }

    /// Records several step actions (upserts on saga/step/action, in order) and, when given, the
    /// saga's new status, all under `claim` and renewing it, in one round trip on PostgreSQL (one
    /// statement) and one transaction on SQLite: all of it is written, or nothing (`Stale` if
    /// another claim replaced this one). The executor writes a step's outcome together with the
    /// next step's `started` row, and the last outcome together with the final status (ADR 0034).
    pub async fn record_saga_steps(
        &self,
        id: SagaId,
        claim: &SagaClaim,
        entries: &[SagaLogEntry],
        status: Option<SagaStatus>,
    ) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            rows.push(LogRow {
                seq: i32::try_from(entry.seq)
                    .map_err(|_| StoreError::corrupt("saga step", "too many steps"))?,
                step: entry.step.clone(),
                action: entry.action.as_str(),
                status: entry.status.as_str(),
                output: entry.output.clone(),
            });
        }
        if rows.is_empty() {
            return touch_claim(&self.db, id, claim, status).await;
        }
        if self.kind() == DatabaseKind::Postgres {
            return record_fenced_postgres(&self.db, id, claim, rows, status).await;
        }
        let at = now();
        let transaction = self.db.begin().await?;
        // The fenced renewal first: it locks the saga row, so a concurrent claim waits for this
        // transaction and then finds a fresh lease.
        touch_claim(&transaction, id, claim, status).await?;
        for row in rows {
            let model = saga_log::ActiveModel {
                id: Set(uuid::Uuid::new_v4()),
                saga_id: Set(id.as_uuid()),
                seq: Set(row.seq),
                step: Set(row.step),
                action: Set(row.action.to_owned()),
                status: Set(row.status.to_owned()),
                output: Set(row.output),
                created_at: Set(at),
            };
            saga_log::Entity::insert(model)
                .on_conflict(
                    OnConflict::columns([
                        saga_log::Column::SagaId,
                        saga_log::Column::Step,
                        saga_log::Column::Action,
                    ])
                    .update_columns([saga_log::Column::Status, saga_log::Column::Output])
                    .to_owned(),
                )
                .exec_without_returning(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The saga's log, in step order (do before undo within a step).
    pub async fn saga_log(&self, id: SagaId) -> Result<Vec<SagaLogEntry>, StoreError> {
        let rows = saga_log::Entity::find()
            .filter(saga_log::Column::SagaId.eq(id.as_uuid()))
            .order_by_asc(saga_log::Column::Seq)
            .order_by_asc(saga_log::Column::Action)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(SagaLogEntry {
                    seq: u32::try_from(row.seq)
                        .map_err(|_| StoreError::corrupt("saga step seq", row.seq))?,
                    action: match row.action.as_str() {
                        "do" => StepAction::Do,
                        "undo" => StepAction::Undo,
                        other => return Err(StoreError::corrupt("saga step action", other)),
                    },
                    status: StepStatus::parse(&row.status)
                        .ok_or_else(|| StoreError::corrupt("saga step status", &row.status))?,
                    step: row.step,
                    output: row.output,
                })
            })
            .collect()
    }
}

/// PostgreSQL: the fence and the log writes in one statement (one round trip): the UPDATE in
/// the CTE renews the claim (and sets the status, when asked) and locks the saga row only under
/// the claim, and the INSERT selects its rows from it, so nothing is written once the claim was
/// taken over. The rows' placeholders follow the fixed ones, six per row.
fn fenced_log_sql(rows: usize, with_status: bool) -> String {
    let status = if with_status {
        ", status = $5, updated_at = $1"
    } else {
        ""
    };
    let first_row = if with_status { 6 } else { 5 };
    let values = (0..rows)
        .map(|row| {
            let base = first_row + row * 6;
            format!(
                "(${}::uuid, ${}::int4, ${}::text, ${}::text, ${}::text, ${}::json)",
                base,
                base + 1,
                base + 2,
                base + 3,
                base + 4,
                base + 5
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH fence AS (\
         UPDATE sagas SET claimed_at = $1{status} WHERE id = $2 AND owner = $3 AND generation = $4 \
         RETURNING id) \
         INSERT INTO saga_log (id, saga_id, seq, step, action, status, output, created_at) \
         SELECT v.id, fence.id, v.seq, v.step, v.action, v.status, v.output, $1 \
         FROM fence, (VALUES {values}) AS v (id, seq, step, action, status, output) \
         ON CONFLICT (saga_id, step, action) \
         DO UPDATE SET status = EXCLUDED.status, output = EXCLUDED.output \
         RETURNING saga_id"
    )
}

/// One saga-log row, as the fenced writes take it.
struct LogRow {
    seq: i32,
    step: String,
    action: &'static str,
    status: &'static str,
    output: Option<serde_json::Value>,
}

async fn record_fenced_postgres(
    db: &DatabaseConnection,
    id: SagaId,
    claim: &SagaClaim,
    rows: Vec<LogRow>,
    status: Option<SagaStatus>,
) -> Result<(), StoreError> {
    let sql = fenced_log_sql(rows.len(), status.is_some());
    let mut values: Vec<sea_orm::Value> = vec![
        now().into(),
        id.as_uuid().into(),
        claim.owner.clone().into(),
        claim.generation.into(),
    ];
    if let Some(status) = status {
        values.push(status.as_str().into());
    }
    for row in rows {
        values.push(uuid::Uuid::new_v4().into());
        values.push(row.seq.into());
        values.push(row.step.into());
        values.push(row.action.into());
        values.push(row.status.into());
        values.push(row.output.into());
    }
    let written = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    if written.is_empty() {
        return Err(StoreError::Stale(format!(
            "saga {id}: the claim of {} (generation {}) was taken over",
            claim.owner, claim.generation
        )));
    }
    Ok(())
}

/// Renews `claim` (and sets `status` when given) only while the saga's owner and generation are
/// still the claim's: the one fence every saga write goes through.
async fn touch_claim<C: ConnectionTrait>(
    db: &C,
    id: SagaId,
    claim: &SagaClaim,
    status: Option<SagaStatus>,
) -> Result<(), StoreError> {
    let at = now();
    let mut update = sagas::Entity::update_many()
        .col_expr(sagas::Column::ClaimedAt, Expr::value(at))
        .filter(sagas::Column::Id.eq(id.as_uuid()))
        .filter(sagas::Column::Owner.eq(claim.owner.as_str()))
        .filter(sagas::Column::Generation.eq(claim.generation));
    if let Some(status) = status {
        update = update
            .col_expr(sagas::Column::Status, Expr::value(status.as_str()))
            .col_expr(sagas::Column::UpdatedAt, Expr::value(at));
    }
    if update.exec(db).await?.rows_affected == 0 {
        return Err(StoreError::Stale(format!(
            "saga {id}: the claim of {} (generation {}) was taken over",
            claim.owner, claim.generation
        )));
    }
    Ok(())
}

fn saga_record(row: sagas::Model) -> Result<SagaRecord, StoreError> {
    Ok(SagaRecord {
        id: SagaId::from_uuid(row.id),
        status: SagaStatus::parse(&row.status)
            .ok_or_else(|| StoreError::corrupt("saga status", &row.status))?,
        kind: row.kind,
        owner: row.owner,
        claimed_at: row.claimed_at,
        params: row.params,
        created_at: row.created_at,
        updated_at: row.updated_at,
        generation: row.generation,
    })
}
