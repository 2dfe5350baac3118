//! `ControlPlane`: what every saga step acts on — the store (source of truth), the vault (the
//! only door to plaintext values, which leave it only inside a gRPC request to a worker), the
//! worker links (placement and the mutual-TLS value channel), the bus (worker commands and
//! events) and the outbox relay (events committed with their state change). Cheap to clone.
//!
//! Steps must never put a value in a saga parameter, a step output, an event or an error.

use std::sync::Arc;

use osb_bus::Bus;
use osb_proto::WorkerName;
use osb_saga::StepError;
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
    /// How saga steps wait for workers' answers to their commands.
    pub commands: crate::commands::CommandTimings,
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
            // Said as "cannot reach worker" so the caller gets 503 (retry), not 500: a worker
            // that is restarting refuses connections until its next heartbeat names the new one.
            return StepError::new(format!(
                "cannot reach worker {worker} to {what} ({}); it may be restarting: retry shortly",
                status.message()
            ));
        }
        StepError::new(format!(
            "worker {worker} could not {what}: {}",
            status.message()
        ))
    }
}

/// A step's output as the log stores it.
pub(crate) fn to_output<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, StepError> {
    serde_json::to_value(value).map_err(|error| StepError::new(error.to_string()))
}

/// Store errors inside steps.
pub(crate) fn store_failed(error: osb_store::StoreError) -> StepError {
    StepError::new(error.to_string())
}
