//! The lifecycle of one sandbox as its `VmActor` sees it, pure and synchronous:
//! `creating → running ⇄ stopped`, `running|stopped → checkpointing → (back)`, and
//! `any → destroyed`, which is final. A command is first *admitted* (refused with a
//! `LifecycleError` when the state does not allow it, and then nothing changes), may pass
//! through a transitional state while the runtime works, and is *completed* with its outcome.
//! After a restart the actor *resyncs* the state from what the runtime reports.
//!
//! This module does no I/O and holds no handle; it must never let a command through that the
//! table below does not allow (checked by a property test over random command sequences).

use serde::Serialize;

use crate::runtime::SandboxState;

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Lifecycle {
    /// The actor exists; the sandbox is not booted yet (or its boot is being retried).
    Creating,
    /// Processes run; commands are accepted.
    Running,
    /// A checkpoint is being written; `resume` is where the sandbox goes back to.
    Checkpointing { resume: Resting },
    /// Processes are stopped; the layer and network identity remain.
    Stopped,
    /// The sandbox is gone; nothing is accepted any more except a repeated destroy.
    Destroyed,
}

/// The two states a checkpoint can start from and returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resting {
    Running,
    Stopped,
}

/// A command for one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmCommand {
    /// Create (or fork) and boot.
    Boot,
    /// Run a command inside.
    Exec,
    /// Write a checkpoint.
    Checkpoint,
    /// Stop the processes.
    Stop,
    /// Boot a stopped sandbox again.
    Start,
    /// Bring the sandbox back from a checkpoint.
    Restore,
    /// Replace the egress allowlist.
    SetAllowlist,
    /// Remove the sandbox and all it owns.
    Destroy,
}

/// Whether a command succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// What admission decided for an allowed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Run it against the runtime, then `complete` it.
    Proceed,
    /// Its effect is already there (a replayed boot, stop, start or destroy): answer without
    /// touching the runtime, and do not `complete` it.
    AlreadyDone,
}

/// A command the state does not allow. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{command:?} is not allowed while the sandbox is {state}: {advice}")]
pub struct LifecycleError {
    pub command: VmCommand,
    pub state: &'static str,
    pub advice: &'static str,
}

impl Lifecycle {
    /// A short lowercase name for messages and observable state.
    pub fn name(&self) -> &'static str {
        match self {
            Lifecycle::Creating => "creating",
            Lifecycle::Running => "running",
            Lifecycle::Checkpointing { .. } => "checkpointing",
            Lifecycle::Stopped => "stopped",
            Lifecycle::Destroyed => "destroyed",
        }
    }

    /// Whether the state is transitional (only while a command is in the runtime).
    pub fn is_transitional(&self) -> bool {
        matches!(self, Lifecycle::Checkpointing { .. })
    }

    /// Admits `command` or refuses it; may enter a transitional state.
    pub fn admit(&mut self, command: VmCommand) -> Result<Admission, LifecycleError> {
        use Admission::{AlreadyDone, Proceed};
        use VmCommand as C;
        let refuse = |advice: &'static str| LifecycleError {
            command,
            state: self.name(),
            advice,
        };
        let admission = match (*self, command) {
            (Lifecycle::Destroyed, C::Destroy) => AlreadyDone,
            (Lifecycle::Destroyed, _) => {
                return Err(refuse("create a new sandbox"));
            }
            (Lifecycle::Checkpointing { .. }, _) => {
                return Err(refuse("wait for the checkpoint to finish"));
            }
            (Lifecycle::Creating, C::Boot | C::Destroy) => Proceed,
            (Lifecycle::Creating, _) => return Err(refuse("boot the sandbox first")),
            (Lifecycle::Running | Lifecycle::Stopped, C::Boot) => AlreadyDone,
            (Lifecycle::Running, C::Exec) => Proceed,
            (Lifecycle::Stopped, C::Exec) => {
                return Err(refuse(
                    "start or restore the sandbox before running commands",
                ));
            }
            (Lifecycle::Running, C::Checkpoint) => {
                *self = Lifecycle::Checkpointing {
                    resume: Resting::Running,
                };
                Proceed
            }
            (Lifecycle::Stopped, C::Checkpoint) => {
                *self = Lifecycle::Checkpointing {
                    resume: Resting::Stopped,
                };
                Proceed
            }
            (Lifecycle::Running, C::Stop) | (Lifecycle::Stopped, C::Start) => Proceed,
            (Lifecycle::Stopped, C::Stop) | (Lifecycle::Running, C::Start) => AlreadyDone,
            (
                Lifecycle::Running | Lifecycle::Stopped,
                C::Restore | C::SetAllowlist | C::Destroy,
            ) => Proceed,
        };
        Ok(admission)
    }

    /// Records how an admitted (`Proceed`) command ended. A failure leaves the resting state
    /// it started from, except a failed boot: the runtime undoes a failed create, so the
    /// sandbox is as it was before (`creating`, and the boot may be retried).
    pub fn complete(&mut self, command: VmCommand, outcome: Outcome) {
        use VmCommand as C;
        let next = match (*self, command, outcome) {
            (Lifecycle::Checkpointing { resume }, C::Checkpoint, _) => match resume {
                Resting::Running => Lifecycle::Running,
                Resting::Stopped => Lifecycle::Stopped,
            },
            (_, _, Outcome::Failed) => *self,
            (Lifecycle::Creating, C::Boot, Outcome::Succeeded) => Lifecycle::Running,
            (Lifecycle::Running, C::Stop, Outcome::Succeeded) => Lifecycle::Stopped,
            (Lifecycle::Stopped, C::Start | C::Restore, Outcome::Succeeded) => Lifecycle::Running,
            (
                Lifecycle::Creating | Lifecycle::Running | Lifecycle::Stopped,
                C::Destroy,
                Outcome::Succeeded,
            ) => Lifecycle::Destroyed,
            (state, _, Outcome::Succeeded) => state,
        };
        *self = next;
    }

    /// The state after a restart, from the runtime's report (`None`: it holds no such
    /// sandbox). A sandbox that never booted stays `creating`; one that booted and is gone is
    /// `destroyed`; an interrupted checkpoint resolves to what the runtime says now.
    pub fn resync(previous: Lifecycle, observed: Option<SandboxState>) -> Lifecycle {
        match (previous, observed) {
            (Lifecycle::Destroyed, _) => Lifecycle::Destroyed,
            (_, Some(SandboxState::Running)) => Lifecycle::Running,
            (_, Some(SandboxState::Stopped)) => Lifecycle::Stopped,
            (Lifecycle::Creating, None) => Lifecycle::Creating,
            (_, None) => Lifecycle::Destroyed,
        }
    }
}

#[cfg(test)]
mod tests;
