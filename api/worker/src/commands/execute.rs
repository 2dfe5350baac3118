//! Executing one command: each verb becomes the worker's own `Worker` RPC handler, called in
//! process with the command's idempotency key (so the handlers' idempotency rules apply
//! unchanged) and, for a boot or a session, the values staged for that key over the value
//! channel. A `Status` becomes a domain failure (the request cannot succeed as asked) or a
//! fatal one (the worker could not act).

use osb_bus::command::{
    BootFrom, BootedOutput, CheckpointOutput, CommandPayload, ExistedOutput, OutcomeError,
    RegisteredOutput, WorkerCommand,
};
use osb_grpc::proto::worker_server::Worker;
use osb_grpc::proto::{self as wire};
use serde_json::Value;
use tonic::{Code, Request, Status};

use crate::service::WorkerService;

/// Runs `command` on `service`; the output is the step's output.
pub(crate) async fn execute(
    service: &WorkerService,
    command: &WorkerCommand,
) -> Result<Value, OutcomeError> {
    let key = command.key.clone();
    match &command.payload {
        CommandPayload::BootSandbox(boot) => {
            let mut staged = match &boot.staged_key {
                Some(staged_key) => Some(staged_for(service, staged_key, boot.sandbox_id)?),
                None => None,
            };
            let spec = wire::SandboxSpec {
                sandbox_id: boot.sandbox_id.to_string(),
                project_id: boot.project_id.map(|id| id.to_string()).unwrap_or_default(),
                template: boot.template.clone(),
                user_envs: staged
                    .as_mut()
                    .map(|staged| std::mem::take(&mut staged.user_envs))
                    .unwrap_or_default(),
                sealed_envs: staged
                    .as_mut()
                    .map(|staged| std::mem::take(&mut staged.sealed_envs))
                    .unwrap_or_default(),
                egress_allowlist: boot.egress_allowlist.clone(),
                cpu_count: boot.cpu_count,
                memory_mb: boot.memory_mb,
                timeout_sec: boot.timeout_sec,
                runtime: boot.runtime.clone(),
                boot_from: None,
            };
            let created = match &boot.boot {
                BootFrom::Fresh => service
                    .create_sandbox(Request::new(wire::CreateSandboxRequest {
                        idempotency_key: key,
                        spec: Some(spec),
                    }))
                    .await
                    .map(|response| response.into_inner()),
                BootFrom::Checkpoint { checkpoint_id } => service
                    .fork(Request::new(wire::ForkRequest {
                        idempotency_key: key,
                        source_checkpoint_id: checkpoint_id.to_string(),
                        spec: Some(spec),
                    }))
                    .await
                    .map(|response| response.into_inner().sandbox.unwrap_or_default()),
            }
            .map_err(failure)?;
            let egress = match wire::EgressEnforcement::try_from(created.egress) {
                Ok(wire::EgressEnforcement::Enforced) => "enforced",
                Ok(wire::EgressEnforcement::Cooperative) => "cooperative",
                _ => "unknown",
            };
            output(&BootedOutput {
                source_address: created.source_address,
                runtime: created.runtime,
                egress: egress.to_owned(),
            })
        }
        CommandPayload::DestroySandbox(destroy) => {
            let response = service
                .destroy_sandbox(Request::new(wire::DestroySandboxRequest {
                    idempotency_key: key,
                    sandbox_id: destroy.sandbox_id.to_string(),
                }))
                .await
                .map_err(failure)?;
            output(&ExistedOutput {
                existed: response.into_inner().existed,
            })
        }
        CommandPayload::RegisterSession(register) => {
            let mut staged = match &register.staged_key {
                Some(staged_key) => Some(staged_for(service, staged_key, register.sandbox_id)?),
                None => None,
            };
            let secrets = staged
                .as_mut()
                .map(|staged| std::mem::take(&mut staged.secrets))
                .unwrap_or_default();
            let response = service
                .register_session(Request::new(wire::RegisterSessionRequest {
                    idempotency_key: key,
                    sandbox_id: register.sandbox_id.to_string(),
                    source_address: register.source_address.clone(),
                    secrets,
                    egress_allowlist: register.egress_allowlist.clone(),
                }))
                .await
                .map_err(failure)?;
            output(&RegisteredOutput {
                secrets: response.into_inner().secrets,
            })
        }
        CommandPayload::UnregisterSession(unregister) => {
            let response = service
                .unregister_session(Request::new(wire::UnregisterSessionRequest {
                    idempotency_key: key,
                    sandbox_id: unregister.sandbox_id.to_string(),
                }))
                .await
                .map_err(failure)?;
            output(&ExistedOutput {
                existed: response.into_inner().existed,
            })
        }
        CommandPayload::Checkpoint(checkpoint) => {
            let response = service
                .checkpoint(Request::new(wire::CheckpointRequest {
                    idempotency_key: key,
                    sandbox_id: checkpoint.sandbox_id.to_string(),
                    checkpoint_id: String::new(),
                }))
                .await
                .map_err(failure)?
                .into_inner();
            let checkpoint_id = response.checkpoint_id.parse().map_err(|_| OutcomeError {
                fatal: true,
                message: "the runtime named its checkpoint with a malformed id".to_owned(),
            })?;
            output(&CheckpointOutput {
                checkpoint_id,
                size_bytes: Some(response.size_bytes),
            })
        }
        CommandPayload::DeleteCheckpoint(delete) => {
            let response = service
                .delete_checkpoint(Request::new(wire::DeleteCheckpointRequest {
                    idempotency_key: delete.made_under.clone().unwrap_or(key),
                    checkpoint_id: delete
                        .checkpoint_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                }))
                .await
                .map_err(failure)?;
            output(&ExistedOutput {
                existed: response.into_inner().existed,
            })
        }
        CommandPayload::Restore(restore) => {
            service
                .restore(Request::new(wire::RestoreRequest {
                    idempotency_key: key,
                    sandbox_id: restore.sandbox_id.to_string(),
                    checkpoint_id: restore.checkpoint_id.to_string(),
                }))
                .await
                .map_err(failure)?;
            Ok(serde_json::json!({}))
        }
    }
}

/// The values staged for a command on `sandbox`: missing values are a fatal failure (not
/// recorded), since staging again and re-sending can still succeed.
fn staged_for(
    service: &WorkerService,
    staged_key: &str,
    sandbox: osb_proto::SandboxId,
) -> Result<wire::StageValuesRequest, OutcomeError> {
    let staged = service.staged.get(staged_key).ok_or_else(|| OutcomeError {
        fatal: true,
        message: format!(
            "no values are staged under {staged_key} (never staged, expired, or this worker restarted): stage them over the link and send the command again"
        ),
    })?;
    // Values staged for one sandbox are never used for another.
    if staged.sandbox_id != sandbox.to_string() {
        return Err(OutcomeError {
            fatal: false,
            message: format!("the values staged under {staged_key} belong to another sandbox"),
        });
    }
    Ok(staged)
}

fn output<T: serde::Serialize>(value: &T) -> Result<Value, OutcomeError> {
    serde_json::to_value(value).map_err(|error| OutcomeError {
        fatal: true,
        message: error.to_string(),
    })
}

/// A handler's `Status` as a command failure.
pub(crate) fn failure(status: Status) -> OutcomeError {
    let fatal = matches!(
        status.code(),
        Code::Unavailable
            | Code::Internal
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::DataLoss
            | Code::Cancelled
    );
    OutcomeError {
        fatal,
        message: status.message().to_owned(),
    }
}
