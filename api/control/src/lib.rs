//! The control plane: sagas that create, fork, destroy, checkpoint, snapshot and restore
//! sandboxes on workers (`SandboxService`), whose worker steps are commands on the bus
//! (`commands`, ADR 0020), the worker links (`WorkerLinks`, mutual TLS: the value channel,
//! exec, secret and allowlist fan-out), the vault's gRPC `SecretPusher`, and sandbox events.
//!
//! Nothing here logs a value; values exist only inside the gRPC request being sent to a
//! worker. Saga parameters and outputs (persisted) hold names, ids and tokens only.
//! It never imports actix-web (the REST gateway is `osb-gateway`, which reaches the control
//! plane only through `SandboxService` and the types re-exported here); actix the actor
//! framework is fine.

#![forbid(unsafe_code)]

mod allowlist_push;
mod changes;
mod commands;
mod deletion;
mod error;
mod events;
mod exec;
mod in_flight;
mod links;
mod metrics;
mod outbox;
mod plane;
mod saga_progress;
pub mod sagas;
mod sandboxes;
mod secret_push;
mod worker_views;

pub use allowlist_push::GrpcAllowlistPusher;
pub use commands::CommandTimings;
pub use error::ControlError;
pub use events::{publish_sandbox_event, sandbox_event_record};
pub use exec::{ExecCall, ExecEvent, ExecOutput, ExecStream};
pub use links::{SharedLinks, WorkerLinks};
pub use metrics::ControlMetrics;
pub use outbox::{drain_once as drain_outbox_once, OutboxRelay};
pub use plane::ControlPlane;
pub use saga_progress::BusProgressSink;
pub use sagas::params::{runtime_of_row, BootFrom, CreateParams};
pub use sandboxes::SandboxService;
pub use secret_push::GrpcSecretPusher;
pub use worker_views::KnownWorker;
