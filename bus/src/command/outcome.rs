//! What a worker answers a command with: the step's output, or its failure — *domain* (the
//! request cannot succeed as asked: unknown checkpoint, bad address; recorded, answered the
//! same on every redelivery) or *fatal* (the worker could not act: runtime down, internal
//! error; not recorded, so a redelivery tries again). Published on
//! `osb.saga.<saga>.<step>.<completed|undone|failed>` in an envelope of kind
//! [`OUTCOME_KIND`], beside the control plane's own progress reports on the same subjects.

use serde::{Deserialize, Serialize};

use super::payload::{CommandAction, WorkerCommand};
use crate::subject::{saga_progress, SagaOutcome, Subject, SubjectError};

/// Envelope kind of a command.
pub const COMMAND_KIND: &str = "cmd.worker";
/// Envelope kind of a worker's answer to a command.
pub const OUTCOME_KIND: &str = "saga.command_outcome";

/// A failed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct OutcomeError {
    /// True when the worker could not act (retrying may succeed); false when the request
    /// itself cannot succeed.
    pub fatal: bool,
    pub message: String,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum StepResult {
    Done { output: serde_json::Value },
    Failed(OutcomeError),
}

/// A worker's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutcome {
    /// The command's idempotency key (`{saga}:{step}:{do|undo}`).
    pub key: String,
    /// The worker that executed it.
    pub worker: String,
    /// True when this answer comes from the worker's record of an earlier execution.
    pub replayed: bool,
    #[serde(flatten)]
    pub result: StepResult,
}

impl StepOutcome {
    /// The progress subject of this outcome of `command`.
    pub fn subject(&self, command: &WorkerCommand) -> Result<Subject, SubjectError> {
        let outcome = match (&self.result, command.action) {
            (StepResult::Failed(_), _) => SagaOutcome::Failed,
            (StepResult::Done { .. }, CommandAction::Do) => SagaOutcome::Completed,
            (StepResult::Done { .. }, CommandAction::Undo) => SagaOutcome::Undone,
        };
        saga_progress(command.saga, &command.step, outcome)
    }

    /// The `Nats-Msg-Id` of this outcome (the event stream stores one per command).
    pub fn message_id(&self) -> String {
        format!("{}:outcome", self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{CommandPayload, DestroySandbox};
    use crate::SagaAction;
    use osb_proto::{SagaId, SandboxId};

    #[test]
    fn outcomes_go_on_the_progress_subject_of_their_step() {
        let saga = SagaId::new();
        let payload = CommandPayload::DestroySandbox(DestroySandbox {
            sandbox_id: SandboxId::new(),
        });
        let undo = WorkerCommand::new(saga, "boot_sandbox", SagaAction::Undo, payload);
        let done = StepOutcome {
            key: undo.key.clone(),
            worker: "wa".into(),
            replayed: false,
            result: StepResult::Done {
                output: serde_json::json!({ "existed": true }),
            },
        };
        assert_eq!(
            done.subject(&undo).unwrap().as_str(),
            format!("osb.saga.{saga}.boot_sandbox.undone")
        );
        let failed = StepOutcome {
            result: StepResult::Failed(OutcomeError {
                fatal: true,
                message: "runtime down".into(),
            }),
            ..done.clone()
        };
        assert_eq!(
            failed.subject(&undo).unwrap().as_str(),
            format!("osb.saga.{saga}.boot_sandbox.failed")
        );
        let text = serde_json::to_string(&failed).unwrap();
        assert!(text.contains("\"fatal\":true"), "{text}");
        assert_eq!(serde_json::from_str::<StepOutcome>(&text).unwrap(), failed);
    }
}
