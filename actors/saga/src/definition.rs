//! Defining a saga: named steps in order, each an action with an optional undo; the last may be
//! irreversible. `C` is the context the steps act on (clients of the workers, the store, …).
//! A step whose action changes nothing outside the saga log (minting tokens, a check) has no
//! undo, and neither has the irreversible last step: no step carries a do-nothing undo.

use async_trait::async_trait;

use crate::error::{SagaError, StepError};
use crate::inputs::StepInputs;

/// One step. `run` must be idempotent: the engine runs it again after a crash.
#[async_trait]
pub trait SagaStep<C: Send + Sync>: Send + Sync {
    /// The step name (a lowercase identifier, stable across versions: it is in the log).
    /// Steps return the `as_str()` of their [`crate::StepName`] constant.
    fn name(&self) -> &'static str;

    /// Does the step; returns the output later steps and undos read.
    async fn run(&self, context: &C, inputs: &StepInputs) -> Result<serde_json::Value, StepError>;

    /// The step's undo (usually `Some(self)`), or `None` for a step that leaves nothing
    /// outside the saga log to undo, and for the irreversible last step.
    fn undo(&self) -> Option<&dyn StepUndo<C>>;

    /// True for the final step that cannot be undone (marking the sandbox running).
    fn irreversible(&self) -> bool {
        false
    }
}

/// Undoing a step. It must be idempotent, and it may be called for a step whose `run` failed
/// half-way or never reached the worker, so it must treat "nothing there" as success.
#[async_trait]
pub trait StepUndo<C: Send + Sync>: Send + Sync {
    /// Undoes the step.
    async fn undo(&self, context: &C, inputs: &StepInputs) -> Result<(), StepError>;
}

/// A named list of steps.
pub struct SagaDefinition<C: Send + Sync> {
    kind: &'static str,
    steps: Vec<Box<dyn SagaStep<C>>>,
}

impl<C: Send + Sync> std::fmt::Debug for SagaDefinition<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaDefinition")
            .field("kind", &self.kind)
            .field("steps", &self.step_names())
            .finish()
    }
}

impl<C: Send + Sync> SagaDefinition<C> {
    /// Checks the shape: at least one step, unique names, only the last step irreversible, and
    /// no undo on the irreversible step.
    pub fn new(kind: &'static str, steps: Vec<Box<dyn SagaStep<C>>>) -> Result<Self, SagaError> {
        let invalid = |reason: String| SagaError::InvalidDefinition {
            kind: kind.to_owned(),
            reason,
        };
        if steps.is_empty() {
            return Err(invalid("a saga needs at least one step".to_owned()));
        }
        for (index, step) in steps.iter().enumerate() {
            if steps[..index]
                .iter()
                .any(|earlier| earlier.name() == step.name())
            {
                return Err(invalid(format!("step name {} is used twice", step.name())));
            }
            if step.irreversible() && index + 1 != steps.len() {
                return Err(invalid(format!(
                    "irreversible step {} must be the last step",
                    step.name()
                )));
            }
            if step.irreversible() && step.undo().is_some() {
                return Err(invalid(format!(
                    "irreversible step {} cannot have an undo",
                    step.name()
                )));
            }
        }
        Ok(Self { kind, steps })
    }

    /// The saga kind stored with each run.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Step names in order.
    pub fn step_names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|step| step.name()).collect()
    }

    pub(crate) fn steps(&self) -> &[Box<dyn SagaStep<C>>] {
        &self.steps
    }
}
