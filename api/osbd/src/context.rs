//! What commands share: opening the store and the vault from settings, the development key
//! file of the embedded mode, and the command error type with its exit codes.

use std::fs;
use std::io::Write;
use std::path::Path;

use osb_store::Store;
use osb_vault::{KeyringConfig, MasterKey, Vault, VaultError, PRIMARY_KEY_ENV};

use crate::settings::{DatabaseSetting, Settings};

/// Why a command failed. The message is for a human; the exit code for scripts.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad configuration or arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The operation ran and failed (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Usage(_) => 2,
            CommandError::Failed(_) => 1,
        }
    }
}

impl From<osb_store::StoreError> for CommandError {
    fn from(error: osb_store::StoreError) -> Self {
        CommandError::Failed(error.to_string())
    }
}

impl From<VaultError> for CommandError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::MissingPrimaryKey { .. } | VaultError::MalformedKey { .. } => {
                CommandError::Usage(error.to_string())
            }
            other => CommandError::Failed(other.to_string()),
        }
    }
}

impl From<std::io::Error> for CommandError {
    fn from(error: std::io::Error) -> Self {
        CommandError::Failed(error.to_string())
    }
}

/// Creates the data directory (0700) if needed.
pub(crate) fn ensure_data_dir(settings: &Settings) -> Result<(), CommandError> {
    fs::create_dir_all(&settings.data_dir).map_err(|error| {
        CommandError::Failed(format!(
            "cannot create the data directory {}: {error}",
            settings.data_dir.display()
        ))
    })?;
    set_mode(&settings.data_dir, 0o700)
}

/// Connects to the configured database.
pub(crate) async fn open_store(settings: &Settings) -> Result<Store, CommandError> {
    if matches!(settings.database, DatabaseSetting::Embedded(_)) {
        ensure_data_dir(settings)?;
    }
    Store::connect(&settings.database.url())
        .await
        .map_err(|error| {
            CommandError::Failed(format!(
                "cannot open the database ({}): {error}",
                settings.database.describe()
            ))
        })
}

/// Connects and refuses to go on if migrations are pending.
pub(crate) async fn open_migrated_store(settings: &Settings) -> Result<Store, CommandError> {
    let store = open_store(settings).await?;
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        return Err(CommandError::Usage(format!(
            "the database has {} pending migration(s); run `osbd migrate up` (or `osbd init`) first",
            pending.len()
        )));
    }
    Ok(store)
}

/// Reads the keyring configuration. With the embedded database and no key in the environment,
/// the development key file in the data directory is used (created on first use, mode 0600);
/// with an external database the key must come from the environment.
pub(crate) fn keyring_config(
    settings: &Settings,
    err: &mut dyn Write,
) -> Result<KeyringConfig, CommandError> {
    let from_env = std::env::var(PRIMARY_KEY_ENV)
        .ok()
        .filter(|value| !value.trim().is_empty());
    if from_env.is_some() || matches!(settings.database, DatabaseSetting::External(_)) {
        return Ok(KeyringConfig::from_env()?);
    }
    let path = settings.dev_master_key_path();
    let key = load_or_create_dev_key(&path)?;
    writeln!(
        err,
        "warning: {PRIMARY_KEY_ENV} is not set; using the development key in {} (embedded mode only; set the variable in production)",
        path.display()
    )?;
    let retired = KeyringConfig::retired_from_lookup(|name| std::env::var(name).ok())?;
    Ok(KeyringConfig {
        primary: key,
        retired,
    })
}

/// Opens the vault on a migrated store.
pub(crate) async fn open_vault(
    settings: &Settings,
    err: &mut dyn Write,
) -> Result<Vault, CommandError> {
    let store = open_migrated_store(settings).await?;
    let config = keyring_config(settings, err)?;
    open_vault_on(store, config, err).await
}

/// Opens the vault with the operator's key-loss policy (`OPENSANDBOX_SECRET_KEYS_ACCEPT_LOSS`),
/// saying loudly on `err` when it opened locked (ADR 0019): it then seals nothing and `readyz`
/// reports not ready with the same reason.
pub(crate) async fn open_vault_on(
    store: osb_store::Store,
    config: KeyringConfig,
    err: &mut dyn Write,
) -> Result<Vault, CommandError> {
    let vault = Vault::open_with(store, config, osb_vault::KeyLossPolicy::from_env()).await?;
    if let Some(reason) = vault.locked_reason() {
        writeln!(err, "error: the secret vault is locked: {reason}")?;
    }
    Ok(vault)
}

fn load_or_create_dev_key(path: &Path) -> Result<MasterKey, CommandError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(MasterKey::from_hex(&text, &path.display().to_string())?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private_file(path, key.to_hex().as_bytes())?;
            Ok(key)
        }
        Err(error) => Err(CommandError::Failed(format!(
            "cannot read the development key {}: {error}",
            path.display()
        ))),
    }
}

/// Writes a file readable only by its owner, refusing to overwrite an existing one.
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), CommandError> {
    use std::fs::OpenOptions;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|error| {
        CommandError::Failed(format!("cannot create {}: {error}", path.display()))
    })?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), CommandError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}
