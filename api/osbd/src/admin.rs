//! `osbd admin create-org NAME` and `osbd admin create-key ORG`: tenant bootstrap. The API key
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
