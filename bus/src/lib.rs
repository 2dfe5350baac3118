//! The bus vocabulary of OpenSandbox: every NATS subject is built here (never with `format!`
//! at a call site), every message travels in a versioned [`Envelope`] with the standard headers,
//! and idempotency keys have one shape. With the orchestration work this crate also becomes the
//! only NATS client (JetStream setup, request/reply, the in-process bus of `osbd up`).
//!
//! It must never carry a plaintext secret value: payloads name secrets, never hold them. It
//! knows nothing about Postgres.

#![forbid(unsafe_code)]

mod envelope;
mod headers;
mod subject;

pub use envelope::{Envelope, EnvelopeError, ENVELOPE_VERSION};
pub use headers::{
    idempotency_key, SagaAction, CORRELATION_ID_HEADER, MSG_ID_HEADER, SAGA_ID_HEADER,
};
pub use subject::{
    command, command_for, project_event, saga_progress, sandbox_event, worker_heartbeat,
    SagaOutcome, Subject, SubjectError, ALL_EVENTS,
};
