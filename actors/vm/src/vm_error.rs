//! What a `VmActor` answers when a command is not done, split the way its caller must act:
//! a *domain* error (the lifecycle refused the command, or the runtime refused or failed it
//! cleanly) changes nothing and is the caller's to fix; a *fatal* one means the actor lost
//! track of the sandbox, stopped on purpose and resyncs from the runtime on restart — the
//! command may be retried once it answers again. Messages carry ids and reasons, never values.

use osb_proto::SandboxId;

use crate::error::RuntimeError;
use crate::lifecycle::{LifecycleError, VmCommand};

/// The error of every `VmActor` reply.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// Domain: the sandbox's state does not allow the command; nothing changed.
    #[error(transparent)]
    Refused(#[from] LifecycleError),
    /// Domain: the runtime refused or failed the command and left the sandbox as it was.
    #[error(transparent)]
    Runtime(RuntimeError),
    /// Fatal: the actor restarts and re-reads the sandbox's state from the runtime.
    #[error("the actor of sandbox {sandbox_id} failed during {command:?} and restarts to re-read the sandbox's state: {reason}")]
    Fatal {
        sandbox_id: SandboxId,
        command: VmCommand,
        reason: String,
    },
}

impl VmError {
    pub(crate) fn fatal(sandbox_id: SandboxId, command: VmCommand, reason: String) -> Self {
        VmError::Fatal {
            sandbox_id,
            command,
            reason,
        }
    }

    /// Whether the actor restarted because of it.
    pub fn is_fatal(&self) -> bool {
        matches!(self, VmError::Fatal { .. })
    }
}

impl RuntimeError {
    /// Whether a failure of `command` may have left the sandbox half-changed, so the actor
    /// cannot trust its own view: a system tool or I/O failure while stopping, starting,
    /// restoring or destroying. Boot (the runtime undoes a failed create), checkpoint and
    /// allowlist failures leave the sandbox as it was.
    pub fn leaves_state_unknown(&self, command: VmCommand) -> bool {
        let system_failure = matches!(self, RuntimeError::Setup { .. } | RuntimeError::Io { .. });
        let changes_processes = matches!(
            command,
            VmCommand::Stop | VmCommand::Start | VmCommand::Restore | VmCommand::Destroy
        );
        system_failure && changes_processes
    }
}
