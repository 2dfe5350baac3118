//! `ControlPlane`: what every saga step acts on — the store (source of truth), the vault (the
//! only door to plaintext values, which leave it only inside a gRPC request to a worker), the
//! worker links (placement and mutual-TLS clients), the bus and the outbox relay (events).
//! Cheap to clone.
//!
//! Steps must never put a value in a saga parameter, a step output, an event or an error.

use std::sync::Arc;

use osb_bus::{Bus, SagaAction};
use osb_proto::WorkerName;
use osb_saga::{StepError, StepName};
use osb_store::Store;
use osb_vault::Vault;
use tonic::transport::Channel;

use super::links::WorkerLinks;
use osb_grpc::proto::worker_client::WorkerClient;

/// The saga context.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub links: Arc<WorkerLinks>,
    pub bus: Arc<dyn Bus>,
    /// The supervised vault actor that fans secret changes out to workers.
    pub secret_vault: actix::Addr<osb_vault::SecretVaultActor>,
    /// The supervised project actor that propagates allowlist changes.
    pub projects: actix::Addr<osb_project::ProjectActor>,
    /// Publishes the events committed to the outbox.
    pub outbox: crate::outbox::OutboxRelay,
}

impl ControlPlane {
    /// A client for `worker`, as a step error when it cannot be reached.
    pub(crate) async fn worker(
        &self,
        worker: &WorkerName,
    ) -> Result<WorkerClient<Channel>, StepError> {
        self.links.client(worker).await.map_err(StepError::new)
    }

    /// Turns a failed RPC into a step error (and drops a broken link so the next call redials).
    pub(crate) fn rpc_failed(
        &self,
        worker: &WorkerName,
        what: &str,
        status: tonic::Status,
    ) -> StepError {
        if status.code() == tonic::Code::Unavailable {
            self.links.forget(worker);
        }
        StepError::new(format!(
            "worker {worker} could not {what}: {}",
            status.message()
        ))
    }
}

/// `"{scope}:{step}:{do|undo}"`: the key a step's worker call is idempotent under. The scope
/// is the sandbox (create saga) or the request (the sagas on an existing sandbox).
pub(crate) fn worker_call_key<Output>(
    scope: impl std::fmt::Display,
    step: StepName<Output>,
    action: SagaAction,
) -> String {
    let action = match action {
        SagaAction::Do => "do",
        SagaAction::Undo => "undo",
    };
    format!("{scope}:{step}:{action}")
}

/// A step's output as the log stores it.
pub(crate) fn to_output<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, StepError> {
    serde_json::to_value(value).map_err(|error| StepError::new(error.to_string()))
}

/// Store errors inside steps.
pub(crate) fn store_failed(error: osb_store::StoreError) -> StepError {
    StepError::new(error.to_string())
}
