//! `GrpcAllowlistPusher`: the project actor's `AllowlistPusher` over the mutual-TLS worker
//! links (`UpdateEgressAllowlist`: the worker narrows the proxy session first, then the
//! sandbox's resolver).

use std::sync::Arc;

use async_trait::async_trait;
use osb_project::AllowlistPusher;
use osb_proto::{SandboxId, WorkerName};

use super::links::WorkerLinks;
use osb_grpc::proto::UpdateEgressAllowlistRequest;

/// Pushes allowlist changes to workers over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcAllowlistPusher {
    links: Arc<WorkerLinks>,
}

impl GrpcAllowlistPusher {
    /// A pusher over these links.
    pub fn new(links: Arc<WorkerLinks>) -> Self {
        Self { links }
    }
}

#[async_trait]
impl AllowlistPusher for GrpcAllowlistPusher {
    async fn push(
        &self,
        worker: &WorkerName,
        sandbox: SandboxId,
        allowlist: &[String],
    ) -> Result<bool, String> {
        let mut client = self.links.client(worker).await?;
        client
            .update_egress_allowlist(UpdateEgressAllowlistRequest {
                sandbox_id: sandbox.to_string(),
                egress_allowlist: allowlist.to_vec(),
            })
            .await
            .map(|response| response.into_inner().applied)
            .map_err(|status| {
                format!(
                    "worker {worker} refused the allowlist: {}",
                    status.message()
                )
            })
    }
}
