//! Rewrap: re-encrypt every stored secret that is not under the primary key, or not sealed with
//! the current row binding (ADR 0019), onto the primary key and the current binding. The work
//! list is derived from the database each time, so a run that stops half-way resumes by running
//! again, and a second run finds nothing to do. Each row is swapped only if it is still exactly
//! what was read; a row written meanwhile is already current and is left alone. The secret
//! version does not change: the value is the same, only its envelope is. When a run leaves no
//! row on an older binding, it raises the binding floor so older layouts are refused for good.

use osb_proto::SecretId;

use crate::aad::{SecretAad, CURRENT_ROW_BINDING};
use crate::cipher::seal;
use crate::error::VaultError;
use crate::vault::{aad_of, Vault};

/// What a rewrap run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RewrapReport {
    /// Rows moved onto the primary key.
    pub rewrapped: u64,
    /// Rows that changed while being rewrapped (left alone; already current or deleted).
    pub changed_meanwhile: u64,
    /// Rows that could not be read: (secret id, reason). Rerun after fixing the keys.
    pub failed: Vec<(SecretId, String)>,
    /// The lowest row binding the vault accepts after the run.
    pub binding_floor: u16,
}

impl Vault {
    /// Moves every secret onto the primary key, `batch_size` rows at a time.
    pub async fn rewrap(&self, batch_size: u64) -> Result<RewrapReport, VaultError> {
        if let Some(reason) = self.locked_reason() {
            return Err(VaultError::Locked {
                reason: reason.to_owned(),
            });
        }
        let primary = self.keyring().primary_version();
        let mut report = RewrapReport::default();
        let mut cursor: Option<SecretId> = None;
        loop {
            let batch = self
                .store()
                .list_secrets_to_rewrap(primary, CURRENT_ROW_BINDING, cursor, batch_size.max(1))
                .await?;
            let Some(last) = batch.last() else { break };
            cursor = Some(last.record.id);
            for row in batch {
                let value = match self.open_row(&row.record, &row.ciphertext).await {
                    Ok(value) => value,
                    Err(error) => {
                        report.failed.push((row.record.id, error.to_string()));
                        continue;
                    }
                };
                let current = SecretAad {
                    row_binding: CURRENT_ROW_BINDING,
                    ..aad_of(&row.record)
                };
                let ciphertext = seal(self.keyring(), &current, &value)?;
                let swapped = self
                    .store()
                    .rewrap_secret(&row.record, primary, CURRENT_ROW_BINDING, ciphertext)
                    .await?;
                if swapped {
                    report.rewrapped += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
        }
        // Raise the floor only when nothing older is left (rows changed meanwhile were written
        // with the current binding; failed rows keep theirs, and keep the floor down).
        report.binding_floor = if self
            .store()
            .count_secrets_below_binding(CURRENT_ROW_BINDING)
            .await?
            == 0
        {
            self.raise_binding_floor().await?
        } else {
            self.store().secret_binding_floor().await?
        };
        tracing::info!(
            binding_floor = report.binding_floor,
            rewrapped = report.rewrapped,
            changed_meanwhile = report.changed_meanwhile,
            failed = report.failed.len(),
            primary_version = primary,
            "rewrap finished"
        );
        Ok(report)
    }
}
