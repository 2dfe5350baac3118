//! Registering a sandbox's proxy session on its worker: the vault decrypts the project's
//! secrets and the values go straight into a `StageValues` request on the mutual-TLS link,
//! each under the token minted for this sandbox, with its version and allowed hosts; the
//! `register_session` command on the bus then names what was staged (ADR 0020). `catch_up` closes the window in
//! which a secret update committed after the vault read but was fanned out before the worker
//! knew the session. Values live only inside the request being built.

use std::collections::BTreeMap;

use osb_bus::command::{self as cmd, CommandPayload};
use osb_proto::{ProjectId, SandboxId, WorkerName};
use osb_saga::StepError;
use tracing::Instrument;

use super::params::Sealed;
use crate::commands::{self, StepCommand};
use crate::plane::ControlPlane;
use osb_grpc::proto as wire;

/// Registers the session; returns the version registered per secret name.
pub(crate) async fn register(
    plane: &ControlPlane,
    step: &StepCommand<'_>,
    sandbox: SandboxId,
    project: Option<ProjectId>,
    sealed: &Sealed,
    source_address: &str,
    egress_allowlist: &[String],
) -> Result<BTreeMap<String, u64>, StepError> {
    let mut revealed = match project {
        Some(project) => plane
            .vault
            .reveal_project_secrets(project)
            .instrument(tracing::info_span!("vault.reveal"))
            .await
            .map_err(|error| {
                StepError::new(format!(
                    "the vault could not open the project's secrets: {error}"
                ))
            })?,
        None => Vec::new(),
    };
    let mut versions = BTreeMap::new();
    let mut secrets = Vec::with_capacity(sealed.secrets.len());
    for minted in &sealed.secrets {
        // A secret deleted since its token was minted is simply not registered: its token is
        // refused like any unknown token.
        let Some(index) = revealed
            .iter()
            .position(|(record, _)| record.name == minted.name)
        else {
            continue;
        };
        let (record, value) = revealed.swap_remove(index);
        versions.insert(record.name.clone(), record.secret_version);
        secrets.push(wire::SecretMaterial {
            name: record.name,
            sealed_token: minted.token.clone(),
            value: value.expose_bytes().to_vec(),
            allowed_hosts: record.allowed_hosts.unwrap_or_default(),
            version: record.secret_version,
        });
    }
    let secret_names = secrets.iter().map(|secret| secret.name.clone()).collect();
    // The values go over the link; the command only names them.
    let staged_key = if secrets.is_empty() {
        None
    } else {
        Some(
            commands::stage_values(
                plane,
                step,
                sandbox,
                Default::default(),
                Vec::new(),
                secrets,
            )
            .await?,
        )
    };
    let payload = CommandPayload::RegisterSession(cmd::RegisterSession {
        sandbox_id: sandbox,
        source_address: source_address.to_owned(),
        egress_allowlist: egress_allowlist.to_vec(),
        secret_names,
        staged_key,
    });
    let _: cmd::RegisteredOutput = commands::send(plane, step, payload).await?;
    Ok(versions)
}

/// Pushes every secret whose stored version is newer than the registered one.
pub(crate) async fn catch_up(
    plane: &ControlPlane,
    worker: &WorkerName,
    sandbox: SandboxId,
    project: Option<ProjectId>,
    registered: &BTreeMap<String, u64>,
) -> Result<(), StepError> {
    let Some(project) = project else {
        return Ok(());
    };
    let current = plane
        .store
        .list_secrets(project)
        .await
        .map_err(|error| StepError::new(error.to_string()))?;
    for record in current {
        let Some(held) = registered.get(&record.name) else {
            continue;
        };
        if record.secret_version <= *held {
            continue;
        }
        let Some((record, value)) = plane
            .vault
            .reveal_secret(project, &record.name)
            .await
            .map_err(|error| {
                StepError::new(format!("the vault could not open a secret: {error}"))
            })?
        else {
            continue;
        };
        let mut client = plane.worker(worker).await?;
        client
            .update_secret_value(wire::UpdateSecretValueRequest {
                sandbox_id: sandbox.to_string(),
                name: record.name.clone(),
                value: value.expose_bytes().to_vec(),
                version: record.secret_version,
                allowed_hosts: Some(wire::HostList {
                    patterns: record.allowed_hosts.unwrap_or_default(),
                }),
            })
            .await
            .map_err(|status| plane.rpc_failed(worker, "update a secret", status))?;
    }
    Ok(())
}
