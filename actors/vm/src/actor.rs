//! `VmActor`: the actix actor that owns one sandbox on a worker. Every command for the sandbox
//! goes through its mailbox and the pure lifecycle core (`lifecycle::Lifecycle`) admits or
//! refuses it. Lifecycle commands (boot, checkpoint, stop, start, restore, allowlist, destroy)
//! are serialised: the mailbox waits until the runtime finished one before taking the next.
//! An exec is admitted in mailbox order but runs beside the others, so a long command does
//! not hold up the sandbox; it is never let through while the sandbox is not running.
//!
//! The runtime work itself runs on the worker's tokio runtime (the `executor`), never on the
//! actor's thread. Each state change is reported to the `EventSink` (`started`, `stopped`,
//! `failed`, `checkpointed`, `restored`). Under `actix::Supervisor`, a panic in the runtime
//! work, or a runtime failure that leaves the sandbox's state unknown, is answered as
//! `VmError::Fatal` and stops the actor on purpose; the restart resyncs the lifecycle from the
//! runtime's `info` ("restart is how we resync"). It must never hold a secret value: its spec
//! carries sealed tokens only.

use std::future::Future;
use std::sync::Arc;

use actix::prelude::*;
use osb_proto::{CheckpointId, SandboxId};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::checkpoint::CheckpointMeta;
use crate::error::RuntimeError;
use crate::events::{EventSink, SandboxEvent, SandboxEventKind};
use crate::lifecycle::{Admission, Lifecycle, Outcome, VmCommand};
use crate::runtime::{ExecOutput, ExecRequest, ExecStream, Runtime, SandboxInfo};
use crate::spec::SandboxSpec;

pub use crate::vm_error::VmError;

/// Boots the sandbox (idempotent: an already booted sandbox is reported, not recreated).
#[derive(Debug, Message)]
#[rtype(result = "Result<SandboxInfo, VmError>")]
pub struct BootSandbox;

/// Runs a command to completion.
#[derive(Debug, Message)]
#[rtype(result = "Result<ExecOutput, VmError>")]
pub struct ExecCommand(pub ExecRequest);

/// Runs a command and streams its output.
#[derive(Debug, Message)]
#[rtype(result = "Result<ExecStream, VmError>")]
pub struct ExecStreaming(pub ExecRequest);

/// Stops the sandbox's processes.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), VmError>")]
pub struct StopSandbox;

/// Boots a stopped sandbox again from its writable layer.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), VmError>")]
pub struct StartSandbox;

/// Destroys the sandbox. The actor stays (answering `AlreadyDone` to a repeated destroy) until
/// its owner drops the last address.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), VmError>")]
pub struct DestroySandbox;

/// Writes a checkpoint.
#[derive(Debug, Message)]
#[rtype(result = "Result<CheckpointMeta, VmError>")]
pub struct CheckpointSandbox;

/// Restores the sandbox in place from a checkpoint.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), VmError>")]
pub struct RestoreSandbox(pub CheckpointId);

/// Replaces the sandbox's egress allowlist (what its resolver answers).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), VmError>")]
pub struct SetEgressAllowlist(pub Vec<String>);

/// Asks for the actor's observable state.
#[derive(Debug, Message)]
#[rtype(result = "VmObservableState")]
pub struct GetState;

/// Stops the actor on purpose so its supervisor restarts it (sent to itself after a fatal
/// failure outside the mailbox's wait).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct RestartForResync;

/// What tests and admin views can see of the actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VmObservableState {
    /// The sandbox.
    #[serde(rename = "sandboxID")]
    pub sandbox_id: SandboxId,
    /// Where the sandbox is in its lifecycle.
    pub lifecycle: Lifecycle,
    /// Last known runtime info (None before boot or after destroy).
    pub info: Option<SandboxInfo>,
    /// How many times the supervisor restarted the actor.
    pub restarts: u32,
}

/// How the sandbox comes to exist.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Create,
    Fork(CheckpointId),
}

/// The actor owning one sandbox.
pub struct VmActor {
    runtime: Arc<dyn Runtime>,
    spec: SandboxSpec,
    origin: Origin,
    sink: Arc<dyn EventSink>,
    /// Where runtime work runs; `None`: the runtime of the actor's own thread.
    executor: Option<tokio::runtime::Handle>,
    lifecycle: Lifecycle,
    info: Option<SandboxInfo>,
    restarts: u32,
}

impl std::fmt::Debug for VmActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmActor")
            .field("sandbox_id", &self.spec.id)
            .field("lifecycle", &self.lifecycle)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl VmActor {
    /// An actor for the sandbox described by `spec` (not booted until `BootSandbox`). Runtime
    /// work runs on the tokio runtime this is called on, if any.
    pub fn new(runtime: Arc<dyn Runtime>, spec: SandboxSpec, sink: Arc<dyn EventSink>) -> Self {
        Self {
            runtime,
            spec,
            origin: Origin::Create,
            sink,
            executor: tokio::runtime::Handle::try_current().ok(),
            lifecycle: Lifecycle::Creating,
            info: None,
            restarts: 0,
        }
    }

    /// Boots the sandbox as a fork of `checkpoint` instead of from its spec's layer.
    pub fn forked_from(mut self, checkpoint: CheckpointId) -> Self {
        self.origin = Origin::Fork(checkpoint);
        self
    }

    /// Starts the actor under an `actix::Supervisor` on the current arbiter.
    pub fn start_supervised(self) -> Addr<Self> {
        Supervisor::start(|_| self)
    }

    fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        match &self.executor {
            Some(handle) => handle.spawn(work),
            None => tokio::spawn(work),
        }
    }

    fn emit(sink: &Arc<dyn EventSink>, id: SandboxId, kind: SandboxEventKind) {
        sink.publish(SandboxEvent::now(id, kind));
    }

    fn report_failure(sink: &Arc<dyn EventSink>, id: SandboxId, error: &RuntimeError) {
        tracing::warn!(sandbox_id = %id, %error, "sandbox operation failed");
        Self::emit(
            sink,
            id,
            SandboxEventKind::Failed {
                reason: error.to_string(),
            },
        );
    }

    /// Runs one serialised lifecycle command: admission by the core, the runtime work on the
    /// executor while the mailbox waits, then completion. `done` maps a success onto the
    /// actor (info) and the reply; `replay` answers a command whose effect is already there.
    fn lifecycle_command<W, T, R>(
        &mut self,
        command: VmCommand,
        work: impl FnOnce(Arc<dyn Runtime>, SandboxId, Arc<dyn EventSink>) -> W,
        done: impl FnOnce(&mut Self, T) -> R + 'static,
        replay: impl FnOnce(&Self) -> Result<R, VmError>,
    ) -> AtomicResponse<Self, Result<R, VmError>>
    where
        W: Future<Output = Result<T, RuntimeError>> + Send + 'static,
        T: Send + 'static,
        R: 'static,
    {
        let sandbox_id = self.spec.id;
        let admission = self.lifecycle.admit(command);
        let ready = |reply: Result<R, VmError>| -> AtomicResponse<Self, Result<R, VmError>> {
            AtomicResponse::new(Box::pin(fut::ready(reply)))
        };
        match admission {
            Err(refused) => return ready(Err(VmError::Refused(refused))),
            Ok(Admission::AlreadyDone) => return ready(replay(self)),
            Ok(Admission::Proceed) => {}
        }
        let joined = self.spawn(work(
            Arc::clone(&self.runtime),
            sandbox_id,
            Arc::clone(&self.sink),
        ));
        AtomicResponse::new(Box::pin(joined.into_actor(self).map(
            move |joined, actor, ctx| match joined {
                Ok(Ok(value)) => {
                    actor.lifecycle.complete(command, Outcome::Succeeded);
                    Ok(done(actor, value))
                }
                Ok(Err(error)) if error.leaves_state_unknown(command) => {
                    actor.lifecycle.complete(command, Outcome::Failed);
                    ctx.stop();
                    Err(VmError::fatal(sandbox_id, command, error.to_string()))
                }
                Ok(Err(error)) => {
                    actor.lifecycle.complete(command, Outcome::Failed);
                    Err(VmError::Runtime(error))
                }
                Err(_panicked) => {
                    actor.lifecycle.complete(command, Outcome::Failed);
                    tracing::error!(%sandbox_id, ?command, "sandbox work panicked; restarting its actor");
                    ctx.stop();
                    Err(VmError::fatal(sandbox_id, command, "the runtime work panicked".into()))
                }
            },
        )))
    }

    /// Admits an exec in mailbox order and runs it beside the others.
    fn exec_command<W, T: Send + 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        work: impl FnOnce(Arc<dyn Runtime>, SandboxId) -> W,
    ) -> ResponseFuture<Result<T, VmError>>
    where
        W: Future<Output = Result<T, RuntimeError>> + Send + 'static,
    {
        let sandbox_id = self.spec.id;
        if let Err(refused) = self.lifecycle.admit(VmCommand::Exec) {
            return Box::pin(std::future::ready(Err(VmError::Refused(refused))));
        }
        let joined = self.spawn(work(Arc::clone(&self.runtime), sandbox_id));
        let myself = ctx.address();
        Box::pin(async move {
            match joined.await {
                Ok(result) => result.map_err(VmError::Runtime),
                Err(_panicked) => {
                    myself.do_send(RestartForResync);
                    Err(VmError::fatal(
                        sandbox_id,
                        VmCommand::Exec,
                        "the runtime work panicked".into(),
                    ))
                }
            }
        })
    }
}

impl Actor for VmActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Resync from the runtime before any command: after a restart the sandbox may exist,
        // be stopped, or be gone.
        let runtime = Arc::clone(&self.runtime);
        let id = self.spec.id;
        let observed = self.spawn(async move { runtime.info(id).await.ok() });
        async move { observed.await.ok().flatten() }
            .into_actor(self)
            .map(|info, actor, _| {
                let previous = actor.lifecycle;
                actor.lifecycle =
                    Lifecycle::resync(previous, info.as_ref().map(|info| info.state));
                actor.info = match actor.lifecycle {
                    Lifecycle::Destroyed => None,
                    _ => info,
                };
                if actor.restarts > 0 {
                    tracing::warn!(sandbox_id = %actor.spec.id, from = previous.name(), to = actor.lifecycle.name(), "sandbox actor resynced from the runtime");
                }
            })
            .wait(ctx);
    }
}

impl Supervised for VmActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.restarts += 1;
    }
}

impl Handler<RestartForResync> for VmActor {
    type Result = ();

    fn handle(&mut self, _message: RestartForResync, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

mod handlers;
