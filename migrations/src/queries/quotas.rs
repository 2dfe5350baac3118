//! Per-org quotas on sandboxes (ADR 0027): the check and the reservation are one transaction
//! — the org row is locked (`FOR UPDATE` on PostgreSQL; SQLite runs one writer at a time), the
//! org's active sandboxes are summed, and the new sandbox row (the reservation) is inserted
//! only if it fits. Two concurrent creates can never both take the last slot. The same lock
//! serves the checkpoint-bytes quota (`checkpoint_bytes`, ADR 0032).
//!
//! It must never count another org's sandboxes, nor insert a row after a refused check.

use osb_proto::OrgId;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};

use crate::entities::{orgs, sandboxes};
use crate::error::StoreError;
use crate::records::{OrgQuotas, SandboxStatus};
use crate::store::Store;

/// Statuses that hold a slot of the quota.
const ACTIVE: [SandboxStatus; 3] = [
    SandboxStatus::Creating,
    SandboxStatus::Running,
    SandboxStatus::Stopped,
];

impl Store {
    /// Sets an org's quotas (`None`: unlimited). `NotFound` if the org does not exist.
    pub async fn set_org_quotas(&self, id: OrgId, quotas: OrgQuotas) -> Result<(), StoreError> {
        let as_i64 = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let result = orgs::Entity::update_many()
            .col_expr(
                orgs::Column::MaxSandboxes,
                Expr::value(as_i64(quotas.sandboxes)),
            )
            .col_expr(orgs::Column::MaxCpus, Expr::value(as_i64(quotas.cpus)))
            .col_expr(
                orgs::Column::MaxMemoryMb,
                Expr::value(as_i64(quotas.memory_mb)),
            )
            .col_expr(
                orgs::Column::MaxCheckpointBytes,
                Expr::value(as_i64(quotas.checkpoint_bytes)),
            )
            .filter(orgs::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("org {id}")));
        }
        Ok(())
    }

    /// Opens the transaction of a sandbox insert and refuses it if one more sandbox of
    /// `cpu_count` CPUs and `memory_mb` MiB would exceed the org's quotas. The caller inserts
    /// the row on the returned transaction and commits.
    pub(crate) async fn begin_within_quota(
        &self,
        org: OrgId,
        cpu_count: u32,
        memory_mb: u32,
    ) -> Result<DatabaseTransaction, StoreError> {
        let (transaction, row) = self.begin_with_org_locked(org).await?;
        let quotas = quotas_of(&row);
        if quotas.sandboxes.is_none() && quotas.cpus.is_none() && quotas.memory_mb.is_none() {
            return Ok(transaction);
        }
        let active: Vec<(i32, i32)> = sandboxes::Entity::find()
            .select_only()
            .column(sandboxes::Column::CpuCount)
            .column(sandboxes::Column::MemoryMb)
            .filter(sandboxes::Column::OrgId.eq(org.as_uuid()))
            .filter(sandboxes::Column::Status.is_in(ACTIVE.map(SandboxStatus::as_str)))
            .into_tuple()
            .all(&transaction)
            .await?;
        let count = active.len() as u64 + 1;
        let cpus: u64 = active
            .iter()
            .map(|(cpu, _)| u64::try_from(*cpu).unwrap_or(0))
            .sum::<u64>()
            + u64::from(cpu_count);
        let memory: u64 = active
            .iter()
            .map(|(_, memory)| u64::try_from(*memory).unwrap_or(0))
            .sum::<u64>()
            + u64::from(memory_mb);
        for (what, wanted, limit) in [
            ("sandboxes", count, quotas.sandboxes),
            ("CPUs", cpus, quotas.cpus),
            ("MiB of memory", memory, quotas.memory_mb),
        ] {
            if let Some(limit) = limit.filter(|limit| wanted > *limit) {
                return Err(StoreError::QuotaExceeded(format!(
                    "the org's quota is {limit} {what} and this sandbox would make it {wanted}; destroy idle sandboxes or ask an operator to raise it (`osbd admin org NAME --max-…`)"
                )));
            }
        }
        Ok(transaction)
    }

    /// Opens a transaction holding the org's row locked, so that quota checks made on it
    /// cannot interleave with another writer's for the same org.
    pub(crate) async fn begin_with_org_locked(
        &self,
        org: OrgId,
    ) -> Result<(DatabaseTransaction, orgs::Model), StoreError> {
        let transaction = self.db.begin().await?;
        // Write first: on SQLite a transaction that reads and then writes cannot wait for
        // another writer (its lock upgrade fails at once with "database is locked"), while one
        // that starts with a write waits its turn. On PostgreSQL this also locks the org row.
        orgs::Entity::update_many()
            .col_expr(orgs::Column::Id, Expr::col(orgs::Column::Id))
            .filter(orgs::Column::Id.eq(org.as_uuid()))
            .exec(&transaction)
            .await?;
        let row = orgs::Entity::find_by_id(org.as_uuid())
            .lock_exclusive()
            .one(&transaction)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("org {org}")))?;
        Ok((transaction, row))
    }
}

/// The quotas stored on an org row.
pub(super) fn quotas_of(row: &orgs::Model) -> OrgQuotas {
    let as_u64 = |value: Option<i64>| value.map(|v| u64::try_from(v).unwrap_or(0));
    OrgQuotas {
        sandboxes: as_u64(row.max_sandboxes),
        cpus: as_u64(row.max_cpus),
        memory_mb: as_u64(row.max_memory_mb),
        checkpoint_bytes: as_u64(row.max_checkpoint_bytes),
    }
}
