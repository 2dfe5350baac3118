//! Errors: a step's own failure (`StepError`, which triggers the unwind) and the engine's
//! (`SagaError`: the store failed, the claim was lost, a definition does not match its log).

use osb_store::StoreError;

/// A step action or undo failed. The message is stored in the saga log and shown to users, so
/// it must be a human sentence without secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
}

impl StepError {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The engine could not drive the saga.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    #[error("saga store error: {0}")]
    Store(#[from] StoreError),
    #[error("saga {saga} is owned by another control plane")]
    ClaimLost { saga: String },
    #[error("saga {saga} is a {found:?} saga, not {expected:?}")]
    WrongKind {
        saga: String,
        found: String,
        expected: String,
    },
    #[error("saga definition {kind:?} is invalid: {reason}")]
    InvalidDefinition { kind: String, reason: String },
    #[error("stopped after step {step} (test hook)")]
    Stopped { step: String },
}
