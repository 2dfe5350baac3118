//! `osbd init`: the first thing a newcomer runs. Creates the data directory, applies the
//! migrations, opens the vault (registering the primary key; in embedded mode creating the
//! development key file) and prints where everything is and what to do next.

use std::io::Write;

use super::context::{ensure_data_dir, keyring_config, open_store, open_vault_on, CommandError};
use crate::settings::Settings;

pub(crate) async fn run(
    settings: &Settings,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    ensure_data_dir(settings)?;
    // Validate the keys before touching the database, so a bad key changes nothing.
    let config = keyring_config(settings, err)?;
    let store = open_store(settings).await?;
    let pending = store.pending_migrations().await?;
    store.migrate_up().await?;
    let vault = open_vault_on(store, config, err).await?;
    writeln!(out, "data directory   {}", settings.data_dir.display())?;
    writeln!(out, "database         {}", settings.database.describe())?;
    writeln!(
        out,
        "migrations       {} applied now, schema up to date",
        pending.len()
    )?;
    writeln!(
        out,
        "encryption key   version {} is primary ({} version(s) registered)",
        vault.keyring().primary_version(),
        vault.key_status().await?.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "next: `osbd keys status` shows the key registry; `osbd --help` lists every command"
    )?;
    Ok(())
}
