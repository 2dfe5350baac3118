//! `VmActor`: the actix actor that owns one sandbox on this worker. It is a thin shell over a
//! `Runtime` handle: each message is one runtime call, every state change is reported to the
//! `EventSink` (`started`, `stopped`, `failed`, `checkpointed`, `restored`), and long work runs
//! as a future so the mailbox is never blocked. Under `actix::Supervisor`, a restart resyncs by
//! asking the runtime for the sandbox's state ("restart is how we resync"). It must never hold a
//! secret value: its spec carries sealed tokens only.

use std::sync::Arc;

use actix::prelude::*;
use osb_proto::{CheckpointId, SandboxId};
use serde::Serialize;

use crate::checkpoint::CheckpointMeta;
use crate::error::RuntimeError;
use crate::events::{EventSink, SandboxEvent, SandboxEventKind};
use crate::runtime::{ExecOutput, ExecRequest, ExecStream, Runtime, SandboxInfo, SandboxState};
use crate::spec::SandboxSpec;

/// Boots the sandbox (idempotent: an already existing sandbox is reported, not recreated).
#[derive(Debug, Message)]
#[rtype(result = "Result<SandboxInfo, RuntimeError>")]
pub struct BootSandbox;

/// Runs a command to completion.
#[derive(Debug, Message)]
#[rtype(result = "Result<ExecOutput, RuntimeError>")]
pub struct ExecCommand(pub ExecRequest);

/// Runs a command and streams its output.
#[derive(Debug, Message)]
#[rtype(result = "Result<ExecStream, RuntimeError>")]
pub struct ExecStreaming(pub ExecRequest);

/// Stops the sandbox's processes.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct StopSandbox;

/// Destroys the sandbox and stops the actor.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct DestroySandbox;

/// Writes a checkpoint.
#[derive(Debug, Message)]
#[rtype(result = "Result<CheckpointMeta, RuntimeError>")]
pub struct CheckpointSandbox;

/// Restores the sandbox in place from a checkpoint.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct RestoreSandbox(pub CheckpointId);

/// Asks for the actor's observable state.
#[derive(Debug, Message)]
#[rtype(result = "VmObservableState")]
pub struct GetState;

/// What tests and admin views can see of the actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmObservableState {
    /// The sandbox.
    #[serde(rename = "sandboxID")]
    pub sandbox_id: SandboxId,
    /// Last known runtime info (None before boot or after destroy).
    pub info: Option<SandboxInfo>,
    /// How many times the supervisor restarted the actor.
    pub restarts: u32,
}

/// The actor owning one sandbox.
pub struct VmActor {
    runtime: Arc<dyn Runtime>,
    spec: SandboxSpec,
    sink: Arc<dyn EventSink>,
    info: Option<SandboxInfo>,
    restarts: u32,
}

impl std::fmt::Debug for VmActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmActor")
            .field("sandbox_id", &self.spec.id)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl VmActor {
    /// An actor for the sandbox described by `spec` (not booted until `BootSandbox`).
    pub fn new(runtime: Arc<dyn Runtime>, spec: SandboxSpec, sink: Arc<dyn EventSink>) -> Self {
        Self {
            runtime,
            spec,
            sink,
            info: None,
            restarts: 0,
        }
    }

    /// Starts the actor under an `actix::Supervisor`.
    pub fn start_supervised(self) -> Addr<Self> {
        Supervisor::start(|_| self)
    }

    fn emit(sink: &Arc<dyn EventSink>, id: SandboxId, kind: SandboxEventKind) {
        sink.publish(SandboxEvent::now(id, kind));
    }

    fn report_failure<T>(
        sink: &Arc<dyn EventSink>,
        id: SandboxId,
        result: &Result<T, RuntimeError>,
    ) {
        if let Err(error) = result {
            tracing::warn!(sandbox_id = %id, error = %error, "sandbox operation failed");
            Self::emit(
                sink,
                id,
                SandboxEventKind::Failed {
                    reason: error.to_string(),
                },
            );
        }
    }
}

impl Actor for VmActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Resync from the runtime: after a supervisor restart the sandbox may already exist.
        let runtime = Arc::clone(&self.runtime);
        let id = self.spec.id;
        async move { runtime.info(id).await.ok() }
            .into_actor(self)
            .map(|info, actor, _| actor.info = info)
            .wait(ctx);
    }
}

impl Supervised for VmActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.restarts += 1;
        self.info = None;
    }
}

impl Handler<BootSandbox> for VmActor {
    type Result = ResponseActFuture<Self, Result<SandboxInfo, RuntimeError>>;

    fn handle(&mut self, _message: BootSandbox, _ctx: &mut Self::Context) -> Self::Result {
        let runtime = Arc::clone(&self.runtime);
        let spec = self.spec.clone();
        let sink = Arc::clone(&self.sink);
        Box::pin(
            async move {
                let id = spec.id;
                let result = match runtime.info(id).await {
                    Ok(info) => Ok(info),
                    Err(RuntimeError::UnknownSandbox(_)) => {
                        let created = runtime.create(spec).await;
                        if created.is_ok() {
                            Self::emit(&sink, id, SandboxEventKind::Started);
                        }
                        created
                    }
                    Err(error) => Err(error),
                };
                Self::report_failure(&sink, id, &result);
                result
            }
            .into_actor(self)
            .map(|result, actor, _| {
                if let Ok(info) = &result {
                    actor.info = Some(info.clone());
                }
                result
            }),
        )
    }
}

impl Handler<ExecCommand> for VmActor {
    type Result = ResponseFuture<Result<ExecOutput, RuntimeError>>;

    fn handle(&mut self, message: ExecCommand, _ctx: &mut Self::Context) -> Self::Result {
        let runtime = Arc::clone(&self.runtime);
        let id = self.spec.id;
        Box::pin(async move { runtime.exec(id, message.0).await })
    }
}

impl Handler<ExecStreaming> for VmActor {
    type Result = ResponseFuture<Result<ExecStream, RuntimeError>>;

    fn handle(&mut self, message: ExecStreaming, _ctx: &mut Self::Context) -> Self::Result {
        let runtime = Arc::clone(&self.runtime);
        let id = self.spec.id;
        Box::pin(async move { runtime.exec_streaming(id, message.0).await })
    }
}

impl Handler<StopSandbox> for VmActor {
    type Result = ResponseActFuture<Self, Result<(), RuntimeError>>;

    fn handle(&mut self, _message: StopSandbox, _ctx: &mut Self::Context) -> Self::Result {
        let runtime = Arc::clone(&self.runtime);
        let sink = Arc::clone(&self.sink);
        let id = self.spec.id;
        Box::pin(
            async move {
                let result = runtime.stop(id).await;
                match &result {
                    Ok(()) => Self::emit(&sink, id, SandboxEventKind::Stopped),
                    Err(_) => Self::report_failure(&sink, id, &result),
                }
                result
            }
            .into_actor(self)
            .map(|result, actor, _| {
                if let (Ok(()), Some(info)) = (&result, actor.info.as_mut()) {
                    info.state = SandboxState::Stopped;
                }
                result
            }),
        )
    }
}

impl Handler<DestroySandbox> for VmActor {
    type Result = ResponseActFuture<Self, Result<(), RuntimeError>>;

    fn handle(&mut self, _message: DestroySandbox, _ctx: &mut Self::Context) -> Self::Result {
        let runtime = Arc::clone(&self.runtime);
        let sink = Arc::clone(&self.sink);
        let id = self.spec.id;
        Box::pin(
            async move {
                let result = runtime.destroy(id).await;
                match &result {
                    Ok(()) => Self::emit(&sink, id, SandboxEventKind::Stopped),
                    Err(_) => Self::report_failure(&sink, id, &result),
                }
                result
            }
            .into_actor(self)
            .map(|result, actor, ctx| {
                if result.is_ok() {
                    actor.info = None;
                    ctx.stop();
                }
                result
            }),
        )
    }
}

impl Handler<CheckpointSandbox> for VmActor {
    type Result = ResponseFuture<Result<CheckpointMeta, RuntimeError>>;

    fn handle(&mut self, _message: CheckpointSandbox, _ctx: &mut Self::Context) -> Self::Result {
        let runtime = Arc::clone(&self.runtime);
        let sink = Arc::clone(&self.sink);
        let id = self.spec.id;
        Box::pin(async move {
            let result = runtime.checkpoint(id).await;
            match &result {
                Ok(meta) => Self::emit(
                    &sink,
                    id,
                    SandboxEventKind::Checkpointed {
                        checkpoint_id: meta.checkpoint_id,
                    },
                ),
                Err(_) => Self::report_failure(&sink, id, &result),
            }
            result
        })
    }
}

impl Handler<RestoreSandbox> for VmActor {
    type Result = ResponseActFuture<Self, Result<(), RuntimeError>>;

    fn handle(&mut self, message: RestoreSandbox, _ctx: &mut Self::Context) -> Self::Result {
        let runtime = Arc::clone(&self.runtime);
        let sink = Arc::clone(&self.sink);
        let id = self.spec.id;
        let checkpoint_id = message.0;
        Box::pin(
            async move {
                let result = runtime.restore(id, checkpoint_id).await;
                match &result {
                    Ok(()) => Self::emit(&sink, id, SandboxEventKind::Restored { checkpoint_id }),
                    Err(_) => Self::report_failure(&sink, id, &result),
                }
                let info = runtime.info(id).await.ok();
                (result, info)
            }
            .into_actor(self)
            .map(|(result, info), actor, _| {
                actor.info = info;
                result
            }),
        )
    }
}

impl Handler<GetState> for VmActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _message: GetState, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(VmObservableState {
            sandbox_id: self.spec.id,
            info: self.info.clone(),
            restarts: self.restarts,
        })
    }
}
