//! The `VmActor`'s message handlers: each names its lifecycle command, the runtime work, how a
//! success changes the actor's view, and how a replay is answered. They never run runtime work
//! on the actor's thread and never see a secret value.

use actix::prelude::*;

use super::{
    BootSandbox, CheckpointSandbox, DestroySandbox, ExecCommand, ExecStreaming, GetState, Origin,
    RestoreSandbox, SetEgressAllowlist, StartSandbox, StopSandbox, VmActor, VmError,
    VmObservableState,
};
use crate::checkpoint::CheckpointMeta;
use crate::error::RuntimeError;
use crate::events::SandboxEventKind;
use crate::lifecycle::VmCommand;
use crate::runtime::{ExecOutput, ExecStream, SandboxInfo, SandboxState};

impl Handler<BootSandbox> for VmActor {
    type Result = AtomicResponse<Self, Result<SandboxInfo, VmError>>;

    fn handle(&mut self, _message: BootSandbox, _ctx: &mut Self::Context) -> Self::Result {
        let spec = self.spec.clone();
        let origin = self.origin;
        self.lifecycle_command(
            VmCommand::Boot,
            move |runtime, id, sink| async move {
                // An existing sandbox (a replay after the actor was recreated) is reported.
                let result = match runtime.info(id).await {
                    Ok(info) => Ok(info),
                    Err(RuntimeError::UnknownSandbox(_)) => match origin {
                        Origin::Create => runtime.create(spec).await,
                        Origin::Fork(checkpoint) => runtime.fork(checkpoint, spec).await,
                    },
                    Err(error) => Err(error),
                };
                match &result {
                    Ok(_) => Self::emit(&sink, id, SandboxEventKind::Started),
                    Err(error) => Self::report_failure(&sink, id, error),
                }
                result
            },
            |actor, info| {
                actor.info = Some(info.clone());
                info
            },
            |actor| {
                actor
                    .info
                    .clone()
                    .ok_or(VmError::Runtime(RuntimeError::UnknownSandbox(
                        actor.spec.id,
                    )))
            },
        )
    }
}

impl Handler<ExecCommand> for VmActor {
    type Result = ResponseFuture<Result<ExecOutput, VmError>>;

    fn handle(&mut self, message: ExecCommand, ctx: &mut Self::Context) -> Self::Result {
        self.exec_command(ctx, move |runtime, id| async move {
            runtime.exec(id, message.0).await
        })
    }
}

impl Handler<ExecStreaming> for VmActor {
    type Result = ResponseFuture<Result<ExecStream, VmError>>;

    fn handle(&mut self, message: ExecStreaming, ctx: &mut Self::Context) -> Self::Result {
        self.exec_command(ctx, move |runtime, id| async move {
            runtime.exec_streaming(id, message.0).await
        })
    }
}

impl Handler<StopSandbox> for VmActor {
    type Result = AtomicResponse<Self, Result<(), VmError>>;

    fn handle(&mut self, _message: StopSandbox, _ctx: &mut Self::Context) -> Self::Result {
        self.lifecycle_command(
            VmCommand::Stop,
            |runtime, id, sink| async move {
                let result = runtime.stop(id).await;
                match &result {
                    Ok(()) => Self::emit(&sink, id, SandboxEventKind::Stopped),
                    Err(error) => Self::report_failure(&sink, id, error),
                }
                result
            },
            |actor, ()| {
                if let Some(info) = actor.info.as_mut() {
                    info.state = SandboxState::Stopped;
                }
            },
            |_| Ok(()),
        )
    }
}

impl Handler<StartSandbox> for VmActor {
    type Result = AtomicResponse<Self, Result<(), VmError>>;

    fn handle(&mut self, _message: StartSandbox, _ctx: &mut Self::Context) -> Self::Result {
        self.lifecycle_command(
            VmCommand::Start,
            |runtime, id, sink| async move {
                let result = runtime.start(id).await;
                match &result {
                    Ok(()) => Self::emit(&sink, id, SandboxEventKind::Started),
                    Err(error) => Self::report_failure(&sink, id, error),
                }
                result
            },
            |actor, ()| {
                if let Some(info) = actor.info.as_mut() {
                    info.state = SandboxState::Running;
                }
            },
            |_| Ok(()),
        )
    }
}

impl Handler<DestroySandbox> for VmActor {
    type Result = AtomicResponse<Self, Result<(), VmError>>;

    fn handle(&mut self, _message: DestroySandbox, _ctx: &mut Self::Context) -> Self::Result {
        self.lifecycle_command(
            VmCommand::Destroy,
            |runtime, id, sink| async move {
                let result = runtime.destroy(id).await;
                match &result {
                    Ok(()) => Self::emit(&sink, id, SandboxEventKind::Stopped),
                    Err(error) => Self::report_failure(&sink, id, error),
                }
                result
            },
            |actor, ()| actor.info = None,
            |_| Ok(()),
        )
    }
}

impl Handler<CheckpointSandbox> for VmActor {
    type Result = AtomicResponse<Self, Result<CheckpointMeta, VmError>>;

    fn handle(&mut self, _message: CheckpointSandbox, _ctx: &mut Self::Context) -> Self::Result {
        self.lifecycle_command(
            VmCommand::Checkpoint,
            |runtime, id, sink| async move {
                let result = runtime.checkpoint(id).await;
                match &result {
                    Ok(meta) => Self::emit(
                        &sink,
                        id,
                        SandboxEventKind::Checkpointed {
                            checkpoint_id: meta.checkpoint_id,
                        },
                    ),
                    Err(error) => Self::report_failure(&sink, id, error),
                }
                result
            },
            |_, meta| meta,
            // A checkpoint is never "already done": `admit` always proceeds or refuses.
            |actor| Err(VmError::Runtime(RuntimeError::NotRunning(actor.spec.id))),
        )
    }
}

impl Handler<RestoreSandbox> for VmActor {
    type Result = AtomicResponse<Self, Result<(), VmError>>;

    fn handle(&mut self, message: RestoreSandbox, _ctx: &mut Self::Context) -> Self::Result {
        let checkpoint_id = message.0;
        self.lifecycle_command(
            VmCommand::Restore,
            move |runtime, id, sink| async move {
                let result = runtime.restore(id, checkpoint_id).await;
                match &result {
                    Ok(()) => Self::emit(&sink, id, SandboxEventKind::Restored { checkpoint_id }),
                    Err(error) => Self::report_failure(&sink, id, error),
                }
                result?;
                Ok(runtime.info(id).await.ok())
            },
            |actor, info| actor.info = info,
            |_| Ok(()),
        )
    }
}

impl Handler<SetEgressAllowlist> for VmActor {
    type Result = AtomicResponse<Self, Result<(), VmError>>;

    fn handle(&mut self, message: SetEgressAllowlist, _ctx: &mut Self::Context) -> Self::Result {
        self.lifecycle_command(
            VmCommand::SetAllowlist,
            move |runtime, id, _sink| async move { runtime.set_egress_allowlist(id, message.0).await },
            |_, ()| (),
            |_| Ok(()),
        )
    }
}

impl Handler<GetState> for VmActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _message: GetState, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(VmObservableState {
            sandbox_id: self.spec.id,
            lifecycle: self.lifecycle,
            info: self.info.clone(),
            restarts: self.restarts,
        })
    }
}
