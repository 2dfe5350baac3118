//! `GrpcSecretPusher`: the vault's `SecretPusher` over the mutual-TLS worker links. The update
//! carries the secret version (a worker ignores anything older than what it holds) and the
//! secret's allowed hosts, so a change of hosts propagates like a change of value. A worker
//! without a session for the sandbox (still booting, already gone) reports "not applied"
//! rather than failing the fan-out.

use std::sync::Arc;

use async_trait::async_trait;
use osb_proto::{SandboxId, WorkerName};
use osb_vault::{SecretPush, SecretPusher};
use tonic::Code;

use super::links::WorkerLinks;
use osb_grpc::proto::{HostList, RemoveSecretRequest, UpdateSecretValueRequest};

/// Pushes secret updates to workers over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcSecretPusher {
    links: Arc<WorkerLinks>,
}

impl GrpcSecretPusher {
    /// A pusher over these links.
    pub fn new(links: Arc<WorkerLinks>) -> Self {
        Self { links }
    }
}

#[async_trait]
impl SecretPusher for GrpcSecretPusher {
    async fn push(
        &self,
        worker: &WorkerName,
        sandbox: SandboxId,
        secret: &SecretPush<'_>,
    ) -> Result<bool, String> {
        let mut client = self.links.client(worker).await?;
        let request = UpdateSecretValueRequest {
            sandbox_id: sandbox.to_string(),
            name: secret.name.to_owned(),
            value: secret.value.expose_bytes().to_vec(),
            version: secret.version,
            allowed_hosts: Some(HostList {
                patterns: secret.allowed_hosts.to_vec(),
            }),
        };
        match client.update_secret_value(request).await {
            Ok(response) => Ok(response.into_inner().applied),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => {
                if status.code() == Code::Unavailable {
                    self.links.forget(worker);
                }
                Err(format!(
                    "worker {worker} refused the update: {}",
                    status.message()
                ))
            }
        }
    }

    async fn remove(
        &self,
        worker: &WorkerName,
        sandbox: SandboxId,
        name: &str,
    ) -> Result<bool, String> {
        let mut client = self.links.client(worker).await?;
        let request = RemoveSecretRequest {
            sandbox_id: sandbox.to_string(),
            name: name.to_owned(),
        };
        client
            .remove_secret(request)
            .await
            .map(|response| response.into_inner().existed)
            .map_err(|status| format!("worker {worker} refused the removal: {}", status.message()))
    }
}
