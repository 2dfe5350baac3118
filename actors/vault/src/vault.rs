//! `Vault`: the store-backed service. Opening it registers a new primary key in the key
//! registry; writes encrypt under the primary key with the row binding, conditional on the
//! version read so concurrent writers never lose an update silently; reads decrypt with the key
//! the header names. It hands plaintext out only as `SecretValue`.

use osb_proto::{OrgId, ProjectId};
use osb_store::{SecretRecord, SecretWrite, Store, StoreError};
use tracing::{info, warn};

use crate::aad::SecretAad;
use crate::cipher::{open, seal};
use crate::error::VaultError;
use crate::keyring::{Keyring, RegisteredKey};
use crate::keyring_config::KeyringConfig;
use crate::master_key::KeyFingerprint;
use crate::secret_value::SecretValue;

/// Attempts at a contended write or key registration before giving up.
const WRITE_ATTEMPTS: usize = 5;

/// The vault over a store.
#[derive(Debug)]
pub struct Vault {
    store: Store,
    keyring: Keyring,
}

/// The outcome of `put_secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub record: SecretRecord,
    /// True when the secret existed before (the value was replaced).
    pub replaced: bool,
}

/// One registered key version as `osbd keys status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub version: u16,
    pub fingerprint: String,
    pub configured: bool,
    pub primary: bool,
    pub secrets: u64,
}

impl Vault {
    /// Opens the vault: matches configured keys to the registry and registers a new primary.
    pub async fn open(store: Store, config: KeyringConfig) -> Result<Self, VaultError> {
        let mut config = Some(config);
        for _ in 0..WRITE_ATTEMPTS {
            let registered = registered_keys(&store).await?;
            let Some(current) = config.take() else { break };
            let plan = Keyring::plan(current, &registered)?;
            for slot in &plan.unknown_retired {
                warn!(slot = %slot, "retired key is not in the key registry; no secret uses it");
            }
            for version in &plan.missing_versions {
                warn!(
                    version,
                    "key version is registered but not configured; secrets under it cannot be read"
                );
            }
            let Some(entry) = plan.register else {
                return Ok(Self {
                    store,
                    keyring: plan.keyring,
                });
            };
            match store
                .register_encryption_key(entry.version, entry.fingerprint.as_str())
                .await
            {
                Ok(_) => {
                    info!(version = entry.version, fingerprint = %entry.fingerprint, "registered new primary encryption key");
                    return Ok(Self {
                        store,
                        keyring: plan.keyring,
                    });
                }
                // Another control plane registered first (same key or a different one):
                // re-read the registry and plan again with the same configuration.
                Err(StoreError::Conflict(_)) => {
                    config = Some(rebuild_config(plan.keyring, entry.version)?);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(VaultError::ContendedWrite {
            name: "encryption key registry".to_owned(),
        })
    }

    /// The keyring in use.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The store behind the vault.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates or replaces a secret's value (bumping its version) and allowed hosts.
    pub async fn put_secret(
        &self,
        org_id: OrgId,
        project_id: ProjectId,
        name: &str,
        value: &SecretValue,
        allowed_hosts: Option<Vec<String>>,
    ) -> Result<StoredSecret, VaultError> {
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self.store.get_sealed_secret(project_id, name).await?;
            let previous_version = existing.as_ref().map(|row| row.record.secret_version);
            let secret_version = previous_version.map_or(1, |version| version + 1);
            let aad = SecretAad {
                org_id,
                project_id,
                name: name.to_owned(),
                secret_version,
            };
            let write = SecretWrite {
                org_id,
                project_id,
                name: name.to_owned(),
                ciphertext: seal(&self.keyring, &aad, value)?,
                key_version: self.keyring.primary_version(),
                secret_version,
                allowed_hosts: allowed_hosts.clone(),
            };
            let outcome = match previous_version {
                None => self.store.insert_secret(write).await,
                Some(expected) => self.store.replace_secret(write, expected).await,
            };
            match outcome {
                Ok(record) => {
                    return Ok(StoredSecret {
                        record,
                        replaced: previous_version.is_some(),
                    })
                }
                Err(StoreError::Conflict(_) | StoreError::Stale(_) | StoreError::NotFound(_)) => {
                    continue
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(VaultError::ContendedWrite {
            name: name.to_owned(),
        })
    }

    /// Decrypts one secret of a project; `None` if it does not exist.
    pub async fn reveal_secret(
        &self,
        project_id: ProjectId,
        name: &str,
    ) -> Result<Option<(SecretRecord, SecretValue)>, VaultError> {
        let Some(row) = self.store.get_sealed_secret(project_id, name).await? else {
            return Ok(None);
        };
        let value = open(&self.keyring, &aad_of(&row.record), &row.ciphertext)?;
        Ok(Some((row.record, value)))
    }

    /// Decrypts every secret of a project (to seal a sandbox's proxy session).
    pub async fn reveal_project_secrets(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<(SecretRecord, SecretValue)>, VaultError> {
        let rows = self.store.list_sealed_secrets(project_id).await?;
        rows.into_iter()
            .map(|row| {
                let value = open(&self.keyring, &aad_of(&row.record), &row.ciphertext)?;
                Ok((row.record, value))
            })
            .collect()
    }

    /// Deletes a secret.
    pub async fn delete_secret(&self, project_id: ProjectId, name: &str) -> Result<(), VaultError> {
        Ok(self.store.delete_secret(project_id, name).await?)
    }

    /// Every registered key version with whether it is configured and how many secrets use it.
    pub async fn key_status(&self) -> Result<Vec<KeyStatus>, VaultError> {
        let registered = self.store.list_encryption_keys().await?;
        let counts = self.store.count_secrets_by_key_version().await?;
        Ok(registered
            .into_iter()
            .map(|entry| KeyStatus {
                version: entry.version,
                configured: self.keyring.key(entry.version).is_some(),
                primary: entry.version == self.keyring.primary_version(),
                secrets: counts
                    .iter()
                    .find(|(version, _)| *version == entry.version)
                    .map_or(0, |(_, count)| *count),
                fingerprint: entry.fingerprint,
            })
            .collect())
    }
}

pub(crate) fn aad_of(record: &SecretRecord) -> SecretAad {
    SecretAad {
        org_id: record.org_id,
        project_id: record.project_id,
        name: record.name.clone(),
        secret_version: record.secret_version,
    }
}

async fn registered_keys(store: &Store) -> Result<Vec<RegisteredKey>, VaultError> {
    Ok(store
        .list_encryption_keys()
        .await?
        .into_iter()
        .map(|entry| RegisteredKey {
            version: entry.version,
            fingerprint: KeyFingerprint::from_stored(&entry.fingerprint),
        })
        .collect())
}

/// Turns a planned keyring back into a configuration (after a lost registration race).
fn rebuild_config(keyring: Keyring, primary_version: u16) -> Result<KeyringConfig, VaultError> {
    let mut primary = None;
    let mut retired = Vec::new();
    for (version, key) in keyring.into_keys() {
        if version == primary_version {
            primary = Some(key);
        } else {
            retired.push((format!("registered v{version}"), key));
        }
    }
    let primary = primary.ok_or(VaultError::UnknownKeyVersion {
        version: primary_version,
    })?;
    Ok(KeyringConfig { primary, retired })
}
