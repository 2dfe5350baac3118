//! The `Worker` RPCs. Every state-changing call is idempotent: creating a sandbox that exists
//! returns it, destroying one that is gone reports `existed: false`, re-registering a session
//! replaces it, and secret updates apply only when their version is newer. Every change of the
//! proxy's sessions goes through the supervised `ProxyActor` (which owns the version rule);
//! this file only parses requests and maps replies.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use futures_util::Stream;
use osb_proto::{CheckpointId, SandboxId};
use osb_proxy::actor::{
    RegisterSession, RemoveSecret, SetEgressAllowlist, UnregisterSession, UpdateSecret,
};
use osb_proxy::{
    ProxyActor, ProxyActorError, RegistryError, SealingProxy, SecretValue, SessionSpec,
};
use osb_vm::actor::{
    BootSandbox, CheckpointSandbox, DestroySandbox, ExecCommand, ExecStreaming, RestoreSandbox,
    SetEgressAllowlist as SetSandboxAllowlist,
};
use osb_vm::{ExecChunk, ExecRequest, ProxyEndpoints, Runtime};
use tonic::{Request, Response, Status};

use super::actor_host::ActorHost;
use super::checkpoint_keys::{CheckpointKeys, Made};
use super::convert::{
    address, created, patterns, proxy_reply, runtime_status, sandbox_spec, secret_spec,
};
use super::holdings::Holdings;
use super::sandboxes::{vm_reply, SandboxActors};
use osb_grpc::parse_id;
use osb_grpc::proto::worker_server::Worker;
use osb_grpc::proto::{self as wire};

/// Exec limits the worker applies whatever the caller asks.
const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_EXEC_OUTPUT: u32 = 8 * 1024 * 1024;

/// What the worker service needs besides its runtime and proxy.
#[derive(Debug, Clone)]
pub struct WorkerServiceConfig {
    /// The proxy's listener ports as sandboxes reach them.
    pub proxy_endpoints: ProxyEndpoints,
}

/// The worker's implementation of the `Worker` service.
#[derive(Clone)]
pub struct WorkerService {
    runtime: Arc<dyn Runtime>,
    proxy: Arc<SealingProxy>,
    config: WorkerServiceConfig,
    /// One `VmActor` per sandbox, on the worker's actor system.
    sandboxes: Arc<SandboxActors>,
    proxy_actor: Addr<ProxyActor>,
    checkpoints: Arc<CheckpointKeys>,
    usage: Arc<Holdings>,
    pub(crate) staged: Arc<super::staged::StagedValues>,
}

impl std::fmt::Debug for WorkerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WorkerService {
    /// Starts the worker's actor system and its `ProxyActor`. Fails only when the system's
    /// thread cannot be spawned.
    pub fn new(
        runtime: Arc<dyn Runtime>,
        proxy: Arc<SealingProxy>,
        config: WorkerServiceConfig,
    ) -> std::io::Result<Self> {
        let actors = Arc::new(ActorHost::start()?);
        let proxy_actor = {
            let proxy = Arc::clone(&proxy);
            actors.start_supervised(move || ProxyActor::control_only(proxy))
        };
        let sandboxes = Arc::new(SandboxActors::new(actors, Arc::clone(&runtime)));
        Ok(Self {
            runtime,
            proxy,
            config,
            sandboxes,
            proxy_actor,
            checkpoints: Arc::new(CheckpointKeys::default()),
            usage: Arc::new(Holdings::default()),
            staged: Arc::default(),
        })
    }

    /// The proxy's control actor (tests inject faults through it).
    pub fn proxy_actor(&self) -> &Addr<ProxyActor> {
        &self.proxy_actor
    }

    /// Destroys every sandbox the worker holds (shutdown): sessions first, then the sandboxes.
    pub async fn destroy_all(&self) {
        for sandbox in self.sandboxes.ids() {
            if let Err(status) = self.destroy_one(sandbox).await {
                tracing::warn!(%sandbox, error = %status.message(), "sandbox not destroyed at shutdown");
            }
        }
    }

    /// Destroys one sandbox through its actor: the session goes first (nothing may be
    /// substituted for a sandbox being torn down), then the sandbox. Returns whether the worker
    /// held it.
    async fn destroy_one(&self, id: SandboxId) -> Result<bool, Status> {
        self.close_session(id).await?;
        let Some(actor) = self.sandboxes.get(id) else {
            return Ok(false);
        };
        vm_reply(actor.send(DestroySandbox).await)?;
        self.sandboxes.forget(id);
        self.usage.remove(id);
        Ok(true)
    }

    /// Boots a new sandbox (or a fork) through its actor; a failed boot forgets the actor.
    async fn boot(
        &self,
        spec: osb_vm::SandboxSpec,
        fork_of: Option<CheckpointId>,
    ) -> Result<wire::CreateSandboxResponse, Status> {
        let (id, cpu, memory) = (spec.id, spec.cpu_count, spec.memory_mb);
        let actor = self.sandboxes.for_new(spec, fork_of);
        match vm_reply(actor.send(BootSandbox).await) {
            Ok(info) => {
                self.usage.add(id, cpu, memory);
                Ok(created(&info))
            }
            Err(status) => {
                // The runtime undid the failed create; a retry starts a fresh actor.
                if status.code() != tonic::Code::Unavailable {
                    self.sandboxes.forget(id);
                }
                Err(status)
            }
        }
    }

    /// Closes a sandbox's proxy session; returns whether it had one.
    async fn close_session(&self, sandbox_id: SandboxId) -> Result<bool, Status> {
        proxy_reply(
            self.proxy_actor
                .send(UnregisterSession { sandbox_id })
                .await,
        )
    }

    /// What the worker holds now (for heartbeats).
    pub fn holdings(&self) -> Arc<Holdings> {
        self.usage.clone()
    }

    fn exec_request(request: wire::ExecRequest) -> ExecRequest {
        let mut exec = ExecRequest::new(request.cmd);
        exec.env = request.env.into_iter().collect();
        exec.cwd = (!request.cwd.is_empty()).then_some(request.cwd);
        exec.timeout = match request.timeout_sec {
            0 => DEFAULT_EXEC_TIMEOUT,
            seconds => Duration::from_secs(u64::from(seconds)).min(MAX_EXEC_TIMEOUT),
        };
        if request.max_output_bytes > 0 {
            exec.max_output_bytes = usize::try_from(request.max_output_bytes.min(MAX_EXEC_OUTPUT))
                .unwrap_or(usize::MAX);
        }
        exec
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<wire::ExecChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Worker for WorkerService {
    async fn create_sandbox(
        &self,
        request: Request<wire::CreateSandboxRequest>,
    ) -> Result<Response<wire::CreateSandboxResponse>, Status> {
        let spec = request
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("spec is required"))?;
        let spec = sandbox_spec(spec, self.config.proxy_endpoints, self.proxy.ca_cert_pem())?;
        // A replayed create reaches the same actor, which returns the sandbox it already made.
        Ok(Response::new(self.boot(spec, None).await?))
    }

    async fn destroy_sandbox(
        &self,
        request: Request<wire::DestroySandboxRequest>,
    ) -> Result<Response<wire::DestroySandboxResponse>, Status> {
        let id: SandboxId = parse_id("sandbox_id", &request.into_inner().sandbox_id)?;
        let existed = self.destroy_one(id).await?;
        Ok(Response::new(wire::DestroySandboxResponse { existed }))
    }

    async fn exec(
        &self,
        request: Request<wire::ExecRequest>,
    ) -> Result<Response<wire::ExecResponse>, Status> {
        let request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        let actor = self.sandboxes.require(id)?;
        let output = vm_reply(actor.send(ExecCommand(Self::exec_request(request))).await)?;
        Ok(Response::new(wire::ExecResponse {
            exit_code: output.exit_code,
            stdout: output.stdout.into_bytes(),
            stderr: output.stderr.into_bytes(),
            stdout_truncated: output.stdout_truncated,
            stderr_truncated: output.stderr_truncated,
            timed_out: output.timed_out,
        }))
    }

    type ExecStreamStream = ChunkStream;

    async fn exec_stream(
        &self,
        request: Request<wire::ExecRequest>,
    ) -> Result<Response<Self::ExecStreamStream>, Status> {
        let request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        let actor = self.sandboxes.require(id)?;
        let stream = vm_reply(actor.send(ExecStreaming(Self::exec_request(request))).await)?;
        let chunks = futures_util::stream::unfold(stream, |mut stream| async move {
            let chunk = stream.chunks.recv().await?;
            let wire_chunk = match chunk {
                ExecChunk::Stdout(bytes) => wire::exec_chunk::Chunk::Stdout(bytes),
                ExecChunk::Stderr(bytes) => wire::exec_chunk::Chunk::Stderr(bytes),
                ExecChunk::Exited {
                    exit_code,
                    timed_out,
                    ..
                } => wire::exec_chunk::Chunk::Exit(wire::ExecExit {
                    exit_code,
                    timed_out,
                }),
            };
            Some((
                Ok(wire::ExecChunk {
                    chunk: Some(wire_chunk),
                }),
                stream,
            ))
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn checkpoint(
        &self,
        request: Request<wire::CheckpointRequest>,
    ) -> Result<Response<wire::CheckpointResponse>, Status> {
        let request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        // A replayed step gets the checkpoint its first run made, not a second copy.
        let key = (!request.idempotency_key.is_empty()).then_some(request.idempotency_key);
        let _serialised = self.checkpoints.serialise().await;
        if let Some(existing) = key.as_deref().and_then(|key| self.checkpoints.get(key)) {
            return Ok(Response::new(wire::CheckpointResponse {
                checkpoint_id: existing.checkpoint.to_string(),
                size_bytes: existing.size_bytes,
            }));
        }
        let actor = self.sandboxes.require(id)?;
        let meta = vm_reply(actor.send(CheckpointSandbox).await)?;
        if let Some(key) = key {
            let made = Made {
                checkpoint: meta.checkpoint_id,
                size_bytes: meta.size_bytes,
            };
            self.checkpoints.remember(key, made);
        }
        Ok(Response::new(wire::CheckpointResponse {
            // The runtime names checkpoints and measures them (the org's checkpoint quota
            // counts the size); the caller records both.
            checkpoint_id: meta.checkpoint_id.to_string(),
            size_bytes: meta.size_bytes,
        }))
    }

    async fn delete_checkpoint(
        &self,
        request: Request<wire::DeleteCheckpointRequest>,
    ) -> Result<Response<wire::DeleteCheckpointResponse>, Status> {
        let request = request.into_inner();
        let _serialised = self.checkpoints.serialise().await;
        let _alone = self.checkpoints.removing_layer().await;
        // Without an id, the checkpoint is the one an earlier call made under this key.
        let checkpoint: CheckpointId = if request.checkpoint_id.is_empty() {
            match self.checkpoints.get(&request.idempotency_key) {
                Some(made) => made.checkpoint,
                None => {
                    return Ok(Response::new(wire::DeleteCheckpointResponse {
                        existed: false,
                    }))
                }
            }
        } else {
            parse_id("checkpoint_id", &request.checkpoint_id)?
        };
        let existed = self
            .runtime
            .delete_checkpoint(checkpoint)
            .await
            .map_err(runtime_status)?;
        self.checkpoints.forget_checkpoint(checkpoint);
        Ok(Response::new(wire::DeleteCheckpointResponse { existed }))
    }

    async fn restore(
        &self,
        request: Request<wire::RestoreRequest>,
    ) -> Result<Response<wire::RestoreResponse>, Status> {
        let request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        let checkpoint: CheckpointId = parse_id("checkpoint_id", &request.checkpoint_id)?;
        let actor = self.sandboxes.require(id)?;
        let _reading = self.checkpoints.reading_layers().await;
        vm_reply(actor.send(RestoreSandbox(checkpoint)).await)?;
        Ok(Response::new(wire::RestoreResponse {}))
    }

    async fn fork(
        &self,
        request: Request<wire::ForkRequest>,
    ) -> Result<Response<wire::ForkResponse>, Status> {
        let request = request.into_inner();
        let checkpoint: CheckpointId =
            parse_id("source_checkpoint_id", &request.source_checkpoint_id)?;
        let spec = request
            .spec
            .ok_or_else(|| Status::invalid_argument("spec is required"))?;
        let spec = sandbox_spec(spec, self.config.proxy_endpoints, self.proxy.ca_cert_pem())?;
        let _reading = self.checkpoints.reading_layers().await;
        let sandbox = self.boot(spec, Some(checkpoint)).await?;
        Ok(Response::new(wire::ForkResponse {
            sandbox: Some(sandbox),
        }))
    }

    async fn register_session(
        &self,
        request: Request<wire::RegisterSessionRequest>,
    ) -> Result<Response<wire::RegisterSessionResponse>, Status> {
        let mut request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        let source_ip = address(&request.source_address)?;
        // A session is bound to a sandbox this worker runs, at the address its runtime gave
        // it: a stale registration (a restarted worker, a replayed step) must never claim an
        // address that a later sandbox may be given.
        let info = self.runtime.info(id).await.map_err(|_| {
            Status::failed_precondition(format!(
                "this worker holds no sandbox {id} (it may have restarted since the sandbox was \
                 created): no session is registered; create the sandbox again"
            ))
        })?;
        if source_ip != std::net::IpAddr::V4(info.address) {
            return Err(Status::invalid_argument(format!(
                "source_address {source_ip} is not the address of sandbox {id} ({}); a session \
                 is registered only at its sandbox's own address",
                info.address
            )));
        }
        let egress_allowlist = patterns("egress_allowlist", &request.egress_allowlist)?;
        let mut secrets = Vec::with_capacity(request.secrets.len());
        for material in &mut request.secrets {
            secrets.push(secret_spec(material)?);
        }
        // Re-registration (a replayed saga step, a restore) replaces the session.
        let spec = SessionSpec {
            sandbox_id: id,
            source_ip,
            egress_allowlist,
            secrets,
        };
        let count = match self.proxy_actor.send(RegisterSession(spec)).await {
            // Development sandboxes are plain host processes: they all come from 127.0.0.1, so
            // the proxy can tell only one of them apart.
            Ok(Err(ProxyActorError::Refused(RegistryError::AddressInUse { owner, .. })))
                if self.runtime.isolation() == osb_vm::Isolation::DevelopmentCooperative =>
            {
                return Err(Status::failed_precondition(format!(
                    "the development runtime (no root) runs one sandbox at a time and {owner} is running; destroy it first, or run osbd as root for isolated sandboxes"
                )));
            }
            reply => proxy_reply(reply)?,
        };
        Ok(Response::new(wire::RegisterSessionResponse {
            secrets: u32::try_from(count).unwrap_or(u32::MAX),
        }))
    }

    async fn update_secret_value(
        &self,
        request: Request<wire::UpdateSecretValueRequest>,
    ) -> Result<Response<wire::UpdateSecretValueResponse>, Status> {
        let mut request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        let allowed_hosts = match &request.allowed_hosts {
            None => None,
            Some(hosts) => Some(patterns("allowed_hosts", &hosts.patterns)?),
        };
        let update = UpdateSecret {
            sandbox_id: id,
            name: std::mem::take(&mut request.name),
            version: request.version,
            value: SecretValue::new(std::mem::take(&mut request.value)),
            allowed_hosts,
        };
        let applied = proxy_reply(self.proxy_actor.send(update).await)?;
        Ok(Response::new(wire::UpdateSecretValueResponse { applied }))
    }

    async fn remove_secret(
        &self,
        request: Request<wire::RemoveSecretRequest>,
    ) -> Result<Response<wire::RemoveSecretResponse>, Status> {
        let request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        let remove = RemoveSecret {
            sandbox_id: id,
            name: request.name,
        };
        let existed = proxy_reply(self.proxy_actor.send(remove).await)?;
        Ok(Response::new(wire::RemoveSecretResponse { existed }))
    }

    async fn list_sandboxes(
        &self,
        _request: Request<wire::ListSandboxesRequest>,
    ) -> Result<Response<wire::ListSandboxesResponse>, Status> {
        let sandbox_ids = self
            .usage
            .sandboxes()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        Ok(Response::new(wire::ListSandboxesResponse { sandbox_ids }))
    }

    async fn update_egress_allowlist(
        &self,
        request: Request<wire::UpdateEgressAllowlistRequest>,
    ) -> Result<Response<wire::UpdateEgressAllowlistResponse>, Status> {
        let request = request.into_inner();
        let id: SandboxId = parse_id("sandbox_id", &request.sandbox_id)?;
        let allowlist = patterns("egress_allowlist", &request.egress_allowlist)?;
        let Some(actor) = self.sandboxes.get(id) else {
            return Ok(Response::new(wire::UpdateEgressAllowlistResponse {
                applied: false,
            }));
        };
        // The proxy first: a narrowed list must not wait for the resolver to take effect.
        let change = SetEgressAllowlist {
            sandbox_id: id,
            allowlist,
        };
        proxy_reply(self.proxy_actor.send(change).await)?;
        vm_reply(
            actor
                .send(SetSandboxAllowlist(request.egress_allowlist))
                .await,
        )?;
        Ok(Response::new(wire::UpdateEgressAllowlistResponse {
            applied: true,
        }))
    }

    async fn unregister_session(
        &self,
        request: Request<wire::UnregisterSessionRequest>,
    ) -> Result<Response<wire::UnregisterSessionResponse>, Status> {
        let id: SandboxId = parse_id("sandbox_id", &request.into_inner().sandbox_id)?;
        let existed = self.close_session(id).await?;
        Ok(Response::new(wire::UnregisterSessionResponse { existed }))
    }

    async fn stage_values(
        &self,
        request: Request<wire::StageValuesRequest>,
    ) -> Result<Response<wire::StageValuesResponse>, Status> {
        self.staged.stage(request.into_inner())?;
        Ok(Response::new(wire::StageValuesResponse {}))
    }
}
