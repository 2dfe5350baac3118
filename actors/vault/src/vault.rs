//! `Vault`: the store-backed service. Opening it registers a new primary key in the key
//! registry — unless that would bury secrets: a new primary while stored secrets sit under a
//! version no configured key opens is most likely a mistyped key, so the vault opens *locked*
//! (it seals nothing, registers nothing, and says why in `readiness`) until the missing key is
//! configured or the operator explicitly accepts the loss (ADR 0019). Writes encrypt under the
//! primary key with the row binding (row id included), conditional on the version read so
//! concurrent writers never lose an update silently; reads decrypt with the key the header
//! names, and refuse row-binding layouts below the recorded floor. It hands plaintext out only
//! as `SecretValue`.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use osb_proto::{OrgId, ProjectId, SecretId};
use osb_store::{SecretRecord, SecretWrite, Store, StoreError};
use tracing::{error, info, warn};

use crate::aad::{SecretAad, CURRENT_ROW_BINDING};
use crate::cipher::{open, seal};
use crate::error::VaultError;
use crate::keyring::{Keyring, RegisteredKey};
use crate::keyring_config::{KeyringConfig, PRIMARY_KEY_ENV, RETIRED_KEY_ENV_PREFIX};
use crate::master_key::KeyFingerprint;
use crate::secret_value::SecretValue;

/// Attempts at a contended write or key registration before giving up.
const WRITE_ATTEMPTS: usize = 5;
/// How long a read of the row-binding floor is trusted before it is read again (another
/// control plane's rewrap may have raised it).
const FLOOR_REFRESH: Duration = Duration::from_secs(30);

/// The vault over a store.
#[derive(Debug)]
pub struct Vault {
    store: Store,
    keyring: Keyring,
    /// Why the vault refuses to seal, when it does (a new primary that would bury secrets).
    locked: Option<String>,
    /// The lowest row-binding layout `open` accepts, and when it was last read.
    binding_floor: AtomicU16,
    floor_read_at: Mutex<Instant>,
}

/// How `Vault::open_with` treats a new primary key while stored secrets are under versions no
/// configured key opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyLossPolicy {
    /// Open locked: register nothing, seal nothing, report not ready (the default: a new
    /// primary next to unreadable rows is most likely a typo).
    #[default]
    Refuse,
    /// The operator has lost those keys for good and accepts that those secrets stay
    /// unreadable: register the new primary anyway.
    AcceptLoss,
}

/// The environment variable that selects [`KeyLossPolicy::AcceptLoss`] (`1`/`true`).
pub const ACCEPT_KEY_LOSS_ENV: &str = "OPENSANDBOX_SECRET_KEYS_ACCEPT_LOSS";

impl KeyLossPolicy {
    /// Reads [`ACCEPT_KEY_LOSS_ENV`] through `lookup` (the environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        match lookup(ACCEPT_KEY_LOSS_ENV).as_deref().map(str::trim) {
            Some("1") | Some("true") | Some("yes") => Self::AcceptLoss,
            _ => Self::Refuse,
        }
    }

    /// Reads [`ACCEPT_KEY_LOSS_ENV`] from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Whether the vault can serve, for `readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultReadiness {
    /// Every stored secret can be opened.
    Ready,
    /// The vault works, but some stored secrets cannot be opened (their key is not
    /// configured): sandboxes of their projects fail to start. The sentence says which.
    Degraded(String),
    /// The vault refuses to seal; the sentence says why and what to do.
    Locked(String),
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
    /// Opens the vault with [`KeyLossPolicy::Refuse`]: see [`Vault::open_with`].
    pub async fn open(store: Store, config: KeyringConfig) -> Result<Self, VaultError> {
        Self::open_with(store, config, KeyLossPolicy::Refuse).await
    }

    /// Opens the vault: matches configured keys to the registry and registers a new primary —
    /// except that a new primary next to stored secrets no configured key opens leaves the
    /// vault locked unless `policy` accepts the loss.
    pub async fn open_with(
        store: Store,
        config: KeyringConfig,
        policy: KeyLossPolicy,
    ) -> Result<Self, VaultError> {
        let binding_floor = store.secret_binding_floor().await?;
        let build = |store: Store, keyring: Keyring, locked: Option<String>| Self {
            store,
            keyring,
            locked,
            binding_floor: AtomicU16::new(binding_floor),
            floor_read_at: Mutex::new(Instant::now()),
        };
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
                return Ok(build(store, plan.keyring, None));
            };
            let buried = buried_secrets(&store, &plan.missing_versions).await?;
            if !buried.is_empty() && policy == KeyLossPolicy::Refuse {
                let reason = locked_reason(&buried);
                error!(reason = %reason, "secret vault locked");
                let mut keyring = plan.keyring;
                keyring.forget(entry.version);
                return Ok(build(store, keyring, Some(reason)));
            }
            if !buried.is_empty() {
                warn!(versions = ?buried, "registering a new primary key although secrets are under versions no configured key opens ({ACCEPT_KEY_LOSS_ENV} is set): they stay unreadable");
            }
            match store
                .register_encryption_key(entry.version, entry.fingerprint.as_str())
                .await
            {
                Ok(_) => {
                    info!(version = entry.version, fingerprint = %entry.fingerprint, "registered new primary encryption key");
                    return Ok(build(store, plan.keyring, None));
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

    /// Why the vault refuses to seal, if it does.
    pub fn locked_reason(&self) -> Option<&str> {
        self.locked.as_deref()
    }

    /// Whether the vault can serve: locked, degraded (some stored secrets cannot be opened) or
    /// ready. Costs one grouped count over the secrets table.
    pub async fn readiness(&self) -> Result<VaultReadiness, VaultError> {
        if let Some(reason) = &self.locked {
            return Ok(VaultReadiness::Locked(reason.clone()));
        }
        let missing: Vec<u16> = self
            .store
            .list_encryption_keys()
            .await?
            .into_iter()
            .map(|entry| entry.version)
            .filter(|version| self.keyring.key(*version).is_none())
            .collect();
        let buried = buried_secrets(&self.store, &missing).await?;
        if buried.is_empty() {
            Ok(VaultReadiness::Ready)
        } else {
            Ok(VaultReadiness::Degraded(format!(
                "{} cannot be opened: configure {} as {RETIRED_KEY_ENV_PREFIX}<n> (`osbd keys status` shows the fingerprints)",
                describe_buried(&buried),
                if buried.len() == 1 { "that key" } else { "those keys" },
            )))
        }
    }

    fn refuse_if_locked(&self) -> Result<(), VaultError> {
        match &self.locked {
            Some(reason) => Err(VaultError::Locked {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The lowest row binding `open` accepts, re-read from the store now and then.
    async fn binding_floor(&self) -> Result<u16, VaultError> {
        let stale = self
            .floor_read_at
            .lock()
            .map(|read_at| read_at.elapsed() >= FLOOR_REFRESH)
            .unwrap_or(true);
        if stale {
            let floor = self.store.secret_binding_floor().await?;
            self.binding_floor.fetch_max(floor, Ordering::SeqCst);
            if let Ok(mut read_at) = self.floor_read_at.lock() {
                *read_at = Instant::now();
            }
        }
        Ok(self.binding_floor.load(Ordering::SeqCst))
    }

    /// Records that every row uses the current binding, so older layouts are refused from now
    /// on (by this vault at once, by others within [`FLOOR_REFRESH`]).
    pub(crate) async fn raise_binding_floor(&self) -> Result<u16, VaultError> {
        let floor = self
            .store
            .raise_secret_binding_floor(CURRENT_ROW_BINDING)
            .await?;
        self.binding_floor.fetch_max(floor, Ordering::SeqCst);
        Ok(floor)
    }

    /// Decrypts a row's ciphertext, refusing layouts below the floor.
    pub(crate) async fn open_row(
        &self,
        record: &SecretRecord,
        ciphertext: &[u8],
    ) -> Result<SecretValue, VaultError> {
        let floor = self.binding_floor().await?;
        if record.row_binding < floor {
            return Err(VaultError::RetiredRowBinding {
                name: record.name.clone(),
                binding: record.row_binding,
                floor,
            });
        }
        open(&self.keyring, &aad_of(record), ciphertext)
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
        self.refuse_if_locked()?;
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self.store.get_sealed_secret(project_id, name).await?;
            let previous_version = existing.as_ref().map(|row| row.record.secret_version);
            let secret_version = previous_version.map_or(1, |version| version + 1);
            // A replacement stays the same row; a new secret gets its id now, so the
            // ciphertext can be bound to it before the row exists.
            let secret_id = existing
                .as_ref()
                .map_or_else(SecretId::new, |row| row.record.id);
            let aad = SecretAad {
                secret_id,
                org_id,
                project_id,
                name: name.to_owned(),
                secret_version,
                row_binding: CURRENT_ROW_BINDING,
            };
            let write = SecretWrite {
                id: secret_id,
                org_id,
                project_id,
                name: name.to_owned(),
                ciphertext: seal(&self.keyring, &aad, value)?,
                key_version: self.keyring.primary_version(),
                secret_version,
                allowed_hosts: allowed_hosts.clone(),
                row_binding: CURRENT_ROW_BINDING,
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
        let value = self.open_row(&row.record, &row.ciphertext).await?;
        Ok(Some((row.record, value)))
    }

    /// Decrypts every secret of a project (to seal a sandbox's proxy session).
    pub async fn reveal_project_secrets(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<(SecretRecord, SecretValue)>, VaultError> {
        let rows = self.store.list_sealed_secrets(project_id).await?;
        let mut revealed = Vec::with_capacity(rows.len());
        for row in rows {
            let value = self.open_row(&row.record, &row.ciphertext).await?;
            revealed.push((row.record, value));
        }
        Ok(revealed)
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
        secret_id: record.id,
        org_id: record.org_id,
        project_id: record.project_id,
        name: record.name.clone(),
        secret_version: record.secret_version,
        row_binding: record.row_binding,
    }
}

/// (version, secret count) for every version in `missing` that still holds secrets.
async fn buried_secrets(store: &Store, missing: &[u16]) -> Result<Vec<(u16, u64)>, VaultError> {
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    Ok(store
        .count_secrets_by_key_version()
        .await?
        .into_iter()
        .filter(|(version, count)| *count > 0 && missing.contains(version))
        .collect())
}

/// "3 secret(s) under key version 1 and 1 under version 2".
fn describe_buried(buried: &[(u16, u64)]) -> String {
    buried
        .iter()
        .map(|(version, count)| format!("{count} secret(s) under key version {version}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn locked_reason(buried: &[(u16, u64)]) -> String {
    format!(
        "the primary key {PRIMARY_KEY_ENV} is new to the key registry, but {} cannot be opened by any configured key — most likely a mistyped or wrong key. Configure the previous key as {RETIRED_KEY_ENV_PREFIX}<n> (`osbd keys status` shows the fingerprints it needs) and restart; if those keys are lost for good, set {ACCEPT_KEY_LOSS_ENV}=1 to register the new key anyway",
        describe_buried(buried)
    )
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
