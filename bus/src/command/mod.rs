//! Saga steps as commands to one worker (issue 13, ADR 0020): the [`WorkerCommand`] envelope
//! (verb, saga, step, do|undo, the step's idempotency key and a typed [`CommandPayload`]), the
//! [`StepOutcome`] a worker publishes on `osb.saga.<saga>.<step>.<completed|failed|undone>`,
//! the [`CommandSpace`] that names the subjects, stream and durable consumers, and the
//! [`CommandFeed`] a worker consumes with explicit acknowledgements.
//!
//! It must never carry a value: payloads hold ids, names, sizes and allowlists. Secret values
//! and user environment values travel over the gRPC value channel (`StageValues`); a command
//! names what was staged by its key. `SecretValue` has no `Serialize`, so no payload type here
//! can hold one.

mod feed;
mod outcome;
mod payload;
mod space;

pub use feed::{CommandAck, CommandDelivery, CommandFeed, CommandSource};
pub use outcome::{OutcomeError, StepOutcome, StepResult, COMMAND_KIND, OUTCOME_KIND};
pub use payload::{
    BootFrom, BootSandbox, BootedOutput, CheckpointOutput, CheckpointSandbox, CommandPayload,
    DeleteCheckpoint, DestroySandbox, ExistedOutput, RegisterSession, RegisteredOutput,
    RestoreSandbox, UnregisterSession, WorkerCommand,
};
pub use space::{worker_token, CommandSettings, CommandSpace};
