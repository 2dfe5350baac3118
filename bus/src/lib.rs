//! The bus of OpenSandbox and its vocabulary: every NATS subject is built here (never with
//! `format!` at a call site), every message travels in a versioned [`Envelope`] with the
//! standard headers, and idempotency keys have one shape. It is the only NATS client: the
//! [`Bus`] trait with [`NatsBus`] (core NATS for request/reply and fan-out, JetStream for
//! durable events, ADR 0006, and for the per-worker command queues that carry saga steps,
//! ADR 0020) and [`InProcessBus`] (the embedded default of `osbd up`, same semantics), chosen
//! by [`connect_bus`] from `NATS_URL`. [`command`] is the command vocabulary.
//!
//! It must never carry a plaintext secret value: payloads name secrets, never hold them. It
//! knows nothing about Postgres.

#![forbid(unsafe_code)]

mod bus_trait;
pub mod command;
mod connect;
mod envelope;
mod event_ring;
mod headers;
mod in_process;
mod in_process_commands;
mod message;
mod nats;
mod nats_commands;
mod nats_replay;
mod pattern;
mod replay;
mod subject;

pub use bus_trait::{Bus, BusError, Subscription};
pub use connect::{
    connect_bus, parse_event_ring_size, COMMAND_SPACE_ENV, EVENT_RING_ENV, NATS_URL_ENV,
};
pub use envelope::{Envelope, EnvelopeError, ENVELOPE_VERSION};
pub use event_ring::DEFAULT_EVENT_RING_CAPACITY;
pub use headers::{
    idempotency_key, SagaAction, CORRELATION_ID_HEADER, MSG_ID_HEADER, SAGA_ID_HEADER,
};
pub use in_process::InProcessBus;
pub use message::{BusMessage, Delivered, Headers};
pub use nats::{NatsBus, EVENTS_STREAM, EVENTS_STREAM_SUBJECTS};
pub use pattern::{matches, validate_pattern, validate_subject, PatternError};
pub use replay::{EventFeed, FeedItem, ReplayFrom, StoredEvent, Truncation};
pub use subject::{
    command, command_for, command_for_worker, project_event, saga_progress, saga_step_outcomes,
    sandbox_event, worker_event, worker_heartbeat, SagaOutcome, Subject, SubjectError, ALL_EVENTS,
    ALL_PROJECT_EVENTS, ALL_SAGA_EVENTS, ALL_SANDBOX_EVENTS, ALL_WORKER_HEARTBEATS,
    PROJECT_EVENTS_PREFIX, SAGA_EVENTS_PREFIX, SANDBOX_EVENTS_PREFIX,
};
