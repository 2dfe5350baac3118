//! `GrpcSecretPusher`: the vault's `SecretPusher` over the mutual-TLS worker link. Workers are
//! registered by the name in their certificate (what placement knows them by); the update
//! carries the secret version so a worker ignores anything older than what it holds.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use osb_proto::SandboxId;
use osb_vault::{SecretPusher, SecretValue};
use tonic::transport::Channel;

use crate::grpc::proto::worker_client::WorkerClient;
use crate::grpc::proto::UpdateSecretValueRequest;

/// Pushes secret updates to workers over gRPC.
#[derive(Debug, Default)]
pub struct GrpcSecretPusher {
    workers: Mutex<HashMap<String, WorkerClient<Channel>>>,
}

impl GrpcSecretPusher {
    /// Registers (or replaces) the connection to a worker.
    pub fn add_worker(&self, name: &str, client: WorkerClient<Channel>) {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), client);
    }

    fn client(&self, name: &str) -> Option<WorkerClient<Channel>> {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

#[async_trait]
impl SecretPusher for GrpcSecretPusher {
    async fn push(
        &self,
        worker: &str,
        sandbox: SandboxId,
        name: &str,
        value: &SecretValue,
        version: u64,
    ) -> Result<bool, String> {
        let mut client = self
            .client(worker)
            .ok_or_else(|| format!("no connection to worker {worker}"))?;
        let request = UpdateSecretValueRequest {
            sandbox_id: sandbox.to_string(),
            name: name.to_owned(),
            value: value.expose_bytes().to_vec(),
            version,
            allowed_hosts: None,
        };
        client
            .update_secret_value(request)
            .await
            .map(|response| response.into_inner().applied)
            .map_err(|status| format!("worker {worker} refused the update: {}", status.message()))
    }
}
