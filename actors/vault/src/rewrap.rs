//! Rewrap: re-encrypt every stored secret that is not under the primary key onto it. The work
//! list is derived from the database each time (rows whose key version differs from the
//! primary), so a run that stops half-way resumes by running again, and a second run finds
//! nothing to do. Each row is swapped only if it is still exactly what was read; a row written
//! meanwhile is already under the primary key and is left alone. The secret version does not
//! change: the value is the same, only its envelope is.

use osb_proto::SecretId;

use crate::aad::SecretAad;
use crate::cipher::{open, seal};
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
}

impl Vault {
    /// Moves every secret onto the primary key, `batch_size` rows at a time.
    pub async fn rewrap(&self, batch_size: u64) -> Result<RewrapReport, VaultError> {
        let primary = self.keyring().primary_version();
        let mut report = RewrapReport::default();
        let mut cursor: Option<SecretId> = None;
        loop {
            let batch = self
                .store()
                .list_secrets_not_under_key(primary, cursor, batch_size.max(1))
                .await?;
            let Some(last) = batch.last() else { break };
            cursor = Some(last.record.id);
            for row in batch {
                let aad: SecretAad = aad_of(&row.record);
                let value = match open(self.keyring(), &aad, &row.ciphertext) {
                    Ok(value) => value,
                    Err(error) => {
                        report.failed.push((row.record.id, error.to_string()));
                        continue;
                    }
                };
                let ciphertext = seal(self.keyring(), &aad, &value)?;
                let swapped = self
                    .store()
                    .rewrap_secret(
                        row.record.id,
                        row.record.key_version,
                        row.record.secret_version,
                        primary,
                        ciphertext,
                    )
                    .await?;
                if swapped {
                    report.rewrapped += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
        }
        tracing::info!(
            rewrapped = report.rewrapped,
            changed_meanwhile = report.changed_meanwhile,
            failed = report.failed.len(),
            primary_version = primary,
            "rewrap finished"
        );
        Ok(report)
    }
}
