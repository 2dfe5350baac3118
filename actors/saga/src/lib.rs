//! The saga engine: a saga is a list of named steps, each with an optional undo; the engine runs
//! them in order, logging every action in the store **before** it runs and its output after, so
//! a control plane that crashes mid-saga can be replaced by another that resumes (re-running the
//! interrupted step, which must be idempotent) or unwinds (undoing every step that started and
//! has an undo, in reverse). The irreversible step comes last and has no undo. Later steps and
//! undos read earlier steps' outputs from the log through typed [`StepName`]s, never from live
//! state.
//!
//! It must never store a secret value in a step output or a saga parameter: both are persisted
//! as JSON in the store. Steps carry names, ids and token ids only.
//!
//! The [`testing`] module holds the three checks every saga must pass (each step twice is
//! harmless; a failure at each step unwinds to nothing; undoing twice is harmless).

#![forbid(unsafe_code)]

mod definition;
mod error;
mod executor;
mod fence;
mod inputs;
mod progress;
pub mod testing;

pub use definition::{SagaDefinition, SagaStep, StepUndo};
pub use error::{SagaError, StepError};
pub use executor::{ExecutorOptions, SagaExecutor, SagaOutcome, TestHooks};
pub use inputs::{StepInputs, StepName};
pub use progress::{ProgressSink, StepProgress};
