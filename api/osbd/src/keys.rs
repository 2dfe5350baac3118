//! `osbd keys generate|status|rewrap`. `generate` prints the key alone on stdout (so
//! `export OPENSANDBOX_SECRET_ENCRYPTION_KEY=$(osbd keys generate)` works) and guidance on
//! stderr; the other commands print only versions, fingerprints and counts.

use std::io::Write;

use osb_vault::{MasterKey, PRIMARY_KEY_ENV, RETIRED_KEY_ENV_PREFIX};

use super::context::{open_vault, CommandError};
use crate::settings::Settings;

pub(crate) fn generate(out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CommandError> {
    let key = MasterKey::generate();
    writeln!(out, "{}", key.to_hex().as_str())?;
    writeln!(
        err,
        "to rotate: move the current {PRIMARY_KEY_ENV} into a free {RETIRED_KEY_ENV_PREFIX}<1-9> slot, set this key as {PRIMARY_KEY_ENV}, restart, then run `osbd keys rewrap`"
    )?;
    Ok(())
}

pub(crate) async fn status(
    settings: &Settings,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let vault = open_vault(settings, err).await?;
    writeln!(
        out,
        "VERSION  FINGERPRINT                       CONFIGURED  PRIMARY  SECRETS"
    )?;
    let mut unreadable = 0u64;
    for key in vault.key_status().await? {
        if !key.configured {
            unreadable += key.secrets;
        }
        writeln!(
            out,
            "{:<8} {:<33} {:<11} {:<8} {}",
            key.version,
            key.fingerprint,
            if key.configured { "yes" } else { "no" },
            if key.primary { "yes" } else { "" },
            key.secrets
        )?;
    }
    if unreadable > 0 {
        writeln!(
            err,
            "warning: {unreadable} secret(s) are under a key that is not configured; add that key back as {RETIRED_KEY_ENV_PREFIX}<n> (the fingerprint above identifies it)"
        )?;
    }
    Ok(())
}

pub(crate) async fn rewrap(
    settings: &Settings,
    batch_size: u64,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let vault = open_vault(settings, err).await?;
    let report = vault.rewrap(batch_size).await?;
    writeln!(
        out,
        "rewrapped {} secret(s) onto key version {}; {} changed meanwhile (already current); {} failed",
        report.rewrapped,
        vault.keyring().primary_version(),
        report.changed_meanwhile,
        report.failed.len()
    )?;
    for (secret_id, reason) in &report.failed {
        writeln!(err, "failed: {secret_id}: {reason}")?;
    }
    if report.failed.is_empty() {
        writeln!(
            out,
            "every secret is under the primary key; retired keys no secret uses can be removed (check with `osbd keys status`)"
        )?;
        if report.binding_floor >= osb_vault::CURRENT_ROW_BINDING {
            writeln!(
                out,
                "every secret is bound to its row id; the older binding is refused from now on"
            )?;
        }
        Ok(())
    } else {
        Err(CommandError::Failed(format!(
            "{} secret(s) could not be rewrapped; fix the keys and rerun `osbd keys rewrap` (it resumes)",
            report.failed.len()
        )))
    }
}
