//! The control plane: sagas that create, fork, destroy, checkpoint, snapshot and restore
//! sandboxes on workers (`SandboxService`), the worker links they use (`WorkerLinks`, mutual
//! TLS), the vault's gRPC `SecretPusher` for secret fan-out, and sandbox events on the bus.
//!
//! Nothing here logs a value; values exist only inside the gRPC request being sent to a
//! worker's proxy. Saga parameters and outputs (persisted) hold names, ids and tokens only.
//! It never imports actix-web (the REST gateway is `osb-gateway`, which reaches the control
//! plane only through `SandboxService` and the types re-exported here); actix the actor
//! framework is fine.

#![forbid(unsafe_code)]

mod allowlist_push;
mod changes;
mod deletion;
mod error;
mod events;
mod exec;
mod in_flight;
mod links;
mod metrics;
mod plane;
mod saga_progress;
pub mod sagas;
mod sandboxes;
mod secret_push;
mod worker_views;

pub use allowlist_push::GrpcAllowlistPusher;
pub use error::ControlError;
pub use events::publish_sandbox_event;
pub use exec::{ExecCall, ExecEvent, ExecOutput, ExecStream};
pub use links::{SharedLinks, WorkerLinks};
pub use metrics::ControlMetrics;
pub use plane::ControlPlane;
pub use saga_progress::BusProgressSink;
pub use sagas::params::{runtime_of_row, BootFrom, CreateParams};
pub use sandboxes::SandboxService;
pub use secret_push::GrpcSecretPusher;
pub use worker_views::KnownWorker;
