//! The control plane: sagas that create, fork, destroy, checkpoint, snapshot and restore
//! sandboxes on workers (`SandboxService`), the worker links they use (`WorkerLinks`, mutual
//! TLS), the vault's gRPC `SecretPusher` for secret fan-out, and sandbox events on the bus.
//!
//! Nothing here logs a value; values exist only inside the gRPC request being sent to a
//! worker's proxy. Saga parameters and outputs (persisted) hold names, ids and tokens only.

mod allowlist_push;
mod error;
mod events;
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
pub use links::{SharedLinks, WorkerLinks};
pub use metrics::ControlMetrics;
pub use plane::ControlPlane;
pub use saga_progress::BusProgressSink;
pub use sandboxes::{ExecCall, SandboxService};
pub use secret_push::GrpcSecretPusher;
