//! `osbd migrate up|down|status`.

use std::io::Write;

use super::cli::MigrateCommand;
use super::context::{open_store, CommandError};
use crate::settings::Settings;

pub(crate) async fn run(
    command: MigrateCommand,
    settings: &Settings,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = open_store(settings).await?;
    match command {
        MigrateCommand::Up => {
            let pending = store.pending_migrations().await?;
            store.migrate_up().await?;
            writeln!(
                out,
                "applied {} migration(s) to {}",
                pending.len(),
                settings.database.describe()
            )?;
        }
        MigrateCommand::Down {
            yes_delete_everything,
        } => {
            if !yes_delete_everything {
                return Err(CommandError::Usage(
                    "`osbd migrate down` drops every OpenSandbox table and its data; rerun with --yes-delete-everything to confirm".to_owned(),
                ));
            }
            store.migrate_down_all().await?;
            writeln!(
                out,
                "reverted every migration on {}",
                settings.database.describe()
            )?;
        }
        MigrateCommand::Status => {
            for name in store.applied_migrations().await? {
                writeln!(out, "applied  {name}")?;
            }
            for name in store.pending_migrations().await? {
                writeln!(out, "pending  {name}")?;
            }
        }
    }
    Ok(())
}
