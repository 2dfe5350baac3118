//! `osbd admin keys list|create|revoke|rotate ORG …` (ADR 0026): the key lifecycle for
//! operators, beside the org-admin REST route `/api/keys`. A new key is printed once, on
//! stdout, as `api_key=<key>`; listings print ids, names, prefixes, scopes and status only.
//!
//! It must never print a key anywhere but that one line, nor store anything but its hash.

use std::io::Write;

use chrono::Utc;
use osb_gateway::{validate_key_name, ApiKey, KeyScope, KeyView};
use osb_store::{NewApiKey, Store, StoreError};

use super::context::{open_migrated_store, CommandError};
use crate::settings::Settings;

/// `osbd admin keys …`
#[derive(Debug, clap::Subcommand)]
pub enum AdminKeysCommand {
    /// List an org's keys (never the keys themselves)
    List {
        /// The org's name
        org: String,
    },
    /// Create a key and print it (once)
    Create {
        /// The org's name
        org: String,
        /// A label for the key
        #[arg(long)]
        name: String,
        /// admin (everything), sandboxes (sandboxes, checkpoints, snapshots, exec, reading
        /// events) or read (every GET except /api/keys)
        #[arg(long, default_value = "admin")]
        scope: String,
        /// Days until the key expires (default: never)
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a key: refused with 401 revoked_api_key from now on
    Revoke {
        /// The org's name
        org: String,
        /// The key's id (from `list`)
        key_id: String,
    },
    /// Replace a live key with a new one (same name, scope, expiry) and print it (once)
    Rotate {
        /// The org's name
        org: String,
        /// The key's id (from `list`)
        key_id: String,
    },
}

/// Runs one `osbd admin keys` command.
pub(crate) async fn run(
    command: AdminKeysCommand,
    settings: &Settings,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = open_migrated_store(settings).await?;
    match command {
        AdminKeysCommand::List { org } => {
            let org = org_id(&store, &org).await?;
            let now = Utc::now();
            for record in store.list_api_keys(org).await? {
                let view = KeyView::at(record, now);
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\tlast_used={}",
                    view.id,
                    view.prefix,
                    view.scope,
                    view.status,
                    view.name,
                    view.last_used_at
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_else(|| "never".into())
                )?;
            }
            Ok(())
        }
        AdminKeysCommand::Create {
            org,
            name,
            scope,
            expires_in_days,
        } => {
            let org = org_id(&store, &org).await?;
            let name = validate_key_name(&name).map_err(CommandError::Usage)?;
            let scope: KeyScope = scope.parse().map_err(|error: osb_gateway::UnknownScope| {
                CommandError::Usage(error.to_string())
            })?;
            let expires_at = match expires_in_days {
                Some(0) => {
                    return Err(CommandError::Usage(
                        "--expires-in-days must be at least 1".into(),
                    ))
                }
                Some(days) => Some(Utc::now() + chrono::Duration::days(i64::from(days.min(3653)))),
                None => None,
            };
            let key = ApiKey::generate();
            let record = store
                .create_api_key(NewApiKey {
                    org_id: org,
                    name,
                    key_hash: key.hash(),
                    key_prefix: key.display_prefix(),
                    scope: scope.as_str().to_owned(),
                    expires_at,
                })
                .await?;
            print_new_key(out, err, record.id, &key)
        }
        AdminKeysCommand::Revoke { org, key_id } => {
            let org = org_id(&store, &org).await?;
            let record = store
                .revoke_api_key(org, parse_key_id(&key_id)?)
                .await
                .map_err(not_found)?;
            writeln!(out, "revoked {} ({})", record.id, record.key_prefix)?;
            Ok(())
        }
        AdminKeysCommand::Rotate { org, key_id } => {
            let org = org_id(&store, &org).await?;
            let key = ApiKey::generate();
            let record = store
                .rotate_api_key(
                    org,
                    parse_key_id(&key_id)?,
                    &key.hash(),
                    &key.display_prefix(),
                )
                .await
                .map_err(not_found)?;
            print_new_key(out, err, record.id, &key)
        }
    }
}

fn print_new_key(
    out: &mut dyn Write,
    err: &mut dyn Write,
    id: uuid::Uuid,
    key: &ApiKey,
) -> Result<(), CommandError> {
    writeln!(out, "key_id={id}")?;
    writeln!(out, "api_key={}", key.expose())?;
    writeln!(
        err,
        "store the API key now: it is shown only once (only its hash is kept)"
    )?;
    Ok(())
}

async fn org_id(store: &Store, name: &str) -> Result<osb_proto::OrgId, CommandError> {
    store
        .find_org_by_name(name)
        .await?
        .map(|org| org.id)
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "no org named {name:?}; create it with `osbd admin create-org {name}`"
            ))
        })
}

fn parse_key_id(text: &str) -> Result<uuid::Uuid, CommandError> {
    text.parse().map_err(|_| {
        CommandError::Usage(format!(
            "{text:?} is not a key id; list them with `osbd admin keys list ORG`"
        ))
    })
}

fn not_found(error: StoreError) -> CommandError {
    match error {
        StoreError::NotFound(what) => {
            CommandError::Usage(format!("{what} does not exist in this org"))
        }
        StoreError::Conflict(message) => CommandError::Usage(message),
        other => other.into(),
    }
}
