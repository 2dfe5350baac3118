//! The checkpoint-bytes quota (ADR 0032): an org's checkpoints together may hold at most
//! `orgs.max_checkpoint_bytes` on the workers' disks (a golden snapshot is a checkpoint with a
//! name: its bytes are counted once, as its checkpoint's). Two checks: a cheap one before a
//! worker is asked to write (refused when the org is already at or over its quota), and the
//! binding one when the measured checkpoint is recorded — in the same transaction as the row
//! insert, with the org row locked and the org's bytes summed again, so concurrent checkpoints
//! cannot together exceed it. Checkpoints measured before sizes existed (null) count as 0.
//!
//! It must never count another org's checkpoints, nor leave a row after a refused check.

use osb_proto::OrgId;
use sea_orm::sea_query::{Alias, Expr, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::entities::{checkpoints, orgs};
use crate::error::StoreError;
use crate::records::CheckpointBytes;
use crate::store::Store;

const MIB: u64 = 1024 * 1024;

impl Store {
    /// What the org's checkpoints hold on disk, and its quota.
    pub async fn checkpoint_bytes(&self, org: OrgId) -> Result<CheckpointBytes, StoreError> {
        let row = orgs::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("org {org}")))?;
        Ok(CheckpointBytes {
            used: used_bytes(&self.db, org).await?,
            quota: super::quotas::quotas_of(&row).checkpoint_bytes,
        })
    }

    /// Refuses (`QuotaExceeded`) when the org's checkpoints already hold its quota or more, so
    /// a worker is not asked to write another; otherwise returns the org's figures.
    pub async fn check_checkpoint_room(&self, org: OrgId) -> Result<CheckpointBytes, StoreError> {
        let bytes = self.checkpoint_bytes(org).await?;
        if let Some(quota) = bytes.quota.filter(|quota| bytes.used >= *quota) {
            return Err(StoreError::QuotaExceeded(format!(
                "the org's quota is {} of checkpoints and they already hold {}; {WHAT_TO_DO}",
                bytes_text(quota),
                bytes_text(bytes.used),
            )));
        }
        Ok(bytes)
    }
}

/// What a refused org can do.
const WHAT_TO_DO: &str = "delete checkpoints or snapshots, or ask an operator to raise --max-checkpoint-mb (`osbd admin org NAME --max-checkpoint-mb N`)";

/// Refuses a checkpoint of `size` bytes that would take the org (whose row `org` the caller's
/// transaction `db` holds locked) past its quota, counting the org's checkpoints in `db`.
pub(super) async fn admit<C: ConnectionTrait>(
    db: &C,
    org: &orgs::Model,
    size: u64,
) -> Result<(), StoreError> {
    let Some(quota) = super::quotas::quotas_of(org).checkpoint_bytes else {
        return Ok(());
    };
    let used = used_bytes(db, OrgId::from_uuid(org.id)).await?;
    let total = used.saturating_add(size);
    if total > quota {
        return Err(StoreError::QuotaExceeded(format!(
            "the org's quota is {} of checkpoints; they hold {} and this checkpoint of {} would make it {}; {WHAT_TO_DO}",
            bytes_text(quota),
            bytes_text(used),
            bytes_text(size),
            bytes_text(total),
        )));
    }
    Ok(())
}

/// The sum of the org's checkpoint sizes (null sizes count as 0).
async fn used_bytes<C: ConnectionTrait>(db: &C, org: OrgId) -> Result<u64, StoreError> {
    // PostgreSQL sums BIGINT into NUMERIC: cast back so both engines answer an integer.
    let sum = Expr::from(Func::cast_as(
        Func::coalesce([
            Expr::from(Func::sum(Expr::col(checkpoints::Column::SizeBytes))),
            Expr::val(0i64),
        ]),
        Alias::new("BIGINT"),
    ));
    let used: Option<i64> = checkpoints::Entity::find()
        .select_only()
        .column_as(sum, "used")
        .filter(checkpoints::Column::OrgId.eq(org.as_uuid()))
        .into_tuple()
        .one(db)
        .await?;
    Ok(used.map_or(0, |used| u64::try_from(used).unwrap_or(0)))
}

/// `N bytes`, with the MiB when that is a whole number (quotas are set in MiB).
fn bytes_text(bytes: u64) -> String {
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{bytes} bytes ({} MiB)", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}
