//! `osbd admin create-org NAME` and `osbd admin create-key ORG`: tenant bootstrap; `osbd admin
//! org NAME [--development-runtime on|off] [--max-… N|none]`: an org's settings and quotas
//! (ADR 0027; checkpoint bytes in MiB here, bytes in the store — ADR 0032). The API key
//! is printed once, on stdout, as `api_key=<key>` (with `org_id=<id>`), so scripts can capture
//! it; only its SHA-256 is stored.

use std::io::Write;

use osb_store::StoreError;

use super::context::{open_migrated_store, CommandError};
use crate::settings::Settings;
use osb_gateway::ApiKey;

/// Creates an org and its first API key.
pub(crate) async fn create_org(
    settings: &Settings,
    name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let name = valid_org_name(name)?;
    let store = open_migrated_store(settings).await?;
    let org = match store.create_org(&name).await {
        Ok(org) => org,
        Err(StoreError::Conflict(_)) => {
            return Err(CommandError::Usage(format!(
                "org {name:?} already exists; add a key with `osbd admin create-key {name}`"
            )))
        }
        Err(other) => return Err(other.into()),
    };
    let key = ApiKey::generate();
    store
        .insert_api_key(org.id, "default", &key.hash(), &key.display_prefix())
        .await?;
    writeln!(out, "org_id={}", org.id)?;
    writeln!(out, "api_key={}", key.expose())?;
    writeln!(
        err,
        "store the API key now: it is shown only once (only its hash is kept)"
    )?;
    Ok(())
}

/// Adds an API key to an existing org.
pub(crate) async fn create_key(
    settings: &Settings,
    org_name: &str,
    key_name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = open_migrated_store(settings).await?;
    let org = store.find_org_by_name(org_name).await?.ok_or_else(|| {
        CommandError::Usage(format!(
            "no org named {org_name:?}; create it with `osbd admin create-org {org_name}`"
        ))
    })?;
    let key = ApiKey::generate();
    store
        .insert_api_key(org.id, key_name, &key.hash(), &key.display_prefix())
        .await?;
    writeln!(out, "org_id={}", org.id)?;
    writeln!(out, "api_key={}", key.expose())?;
    writeln!(
        err,
        "store the API key now: it is shown only once (only its hash is kept)"
    )?;
    Ok(())
}

/// What `osbd admin org` changes (`None`: leave as is; `Some(None)`: unlimited).
#[derive(Debug, Default)]
pub(crate) struct OrgChange {
    pub development_runtime: Option<bool>,
    pub max_sandboxes: Option<Option<u64>>,
    pub max_cpus: Option<Option<u64>>,
    pub max_memory_mb: Option<Option<u64>>,
    /// In MiB, as given on the command line (stored in bytes).
    pub max_checkpoint_mb: Option<Option<u64>>,
}

const MIB: u64 = 1024 * 1024;

/// A quota argument: a number, or `none` for unlimited.
pub(crate) fn quota_arg(
    flag: &str,
    value: Option<String>,
) -> Result<Option<Option<u64>>, CommandError> {
    match value.as_deref() {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(text) => text.parse().map(|n| Some(Some(n))).map_err(|_| {
            CommandError::Usage(format!("{flag} takes a number or `none`, not {text:?}"))
        }),
    }
}

fn show_quota(value: Option<u64>) -> String {
    value.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

/// Shows an org's settings, after applying `change`.
pub(crate) async fn org_settings(
    settings: &Settings,
    org_name: &str,
    change: OrgChange,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = open_migrated_store(settings).await?;
    let org = store.find_org_by_name(org_name).await?.ok_or_else(|| {
        CommandError::Usage(format!(
            "no org named {org_name:?}; create it with `osbd admin create-org {org_name}`"
        ))
    })?;
    if let Some(allowed) = change.development_runtime {
        store.set_org_development_runtime(org.id, allowed).await?;
    }
    let checkpoint_bytes = match change.max_checkpoint_mb {
        Some(Some(mib)) => Some(Some(
            mib.checked_mul(MIB)
                .filter(|bytes| i64::try_from(*bytes).is_ok())
                .ok_or_else(|| {
                    CommandError::Usage(format!(
                        "--max-checkpoint-mb {mib} is more bytes than can be stored; give a smaller number or `none`"
                    ))
                })?,
        )),
        other => other,
    };
    if change.max_sandboxes.is_some()
        || change.max_cpus.is_some()
        || change.max_memory_mb.is_some()
        || checkpoint_bytes.is_some()
    {
        let current = org.quotas;
        let quotas = osb_store::OrgQuotas {
            sandboxes: change.max_sandboxes.unwrap_or(current.sandboxes),
            cpus: change.max_cpus.unwrap_or(current.cpus),
            memory_mb: change.max_memory_mb.unwrap_or(current.memory_mb),
            checkpoint_bytes: checkpoint_bytes.unwrap_or(current.checkpoint_bytes),
        };
        store.set_org_quotas(org.id, quotas).await?;
    }
    let org = store.get_org(org.id).await?;
    writeln!(out, "org_id={}", org.id)?;
    writeln!(
        out,
        "development_runtime={}",
        if org.development_runtime { "on" } else { "off" }
    )?;
    writeln!(out, "max_sandboxes={}", show_quota(org.quotas.sandboxes))?;
    writeln!(out, "max_cpus={}", show_quota(org.quotas.cpus))?;
    writeln!(out, "max_memory_mb={}", show_quota(org.quotas.memory_mb))?;
    let bytes = store.checkpoint_bytes(org.id).await?;
    writeln!(out, "max_checkpoint_mb={}", show_mib(bytes.quota))?;
    writeln!(out, "checkpoint_bytes_used={}", bytes.used)?;
    Ok(())
}

/// A byte quota in MiB as set on the command line (`none`: unlimited; a quota set in bytes
/// elsewhere that is not whole MiB shows two decimals).
fn show_mib(bytes: Option<u64>) -> String {
    match bytes {
        None => "none".to_owned(),
        Some(bytes) if bytes % MIB == 0 => (bytes / MIB).to_string(),
        Some(bytes) => format!("{:.2}", bytes as f64 / MIB as f64),
    }
}

fn valid_org_name(name: &str) -> Result<String, CommandError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(CommandError::Usage(format!(
            "org name {name:?} is not valid: use 1-63 lowercase letters, digits and '-'"
        )))
    }
}
