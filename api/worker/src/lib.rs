//! The worker's side of the gRPC link: `WorkerService` implements the `Worker` RPCs over the
//! worker's actors (ADR 0023) — one supervised `VmActor` per sandbox (`osb-vm`), through which
//! every command for that sandbox goes, and the supervised `ProxyActor` (`osb-proxy`), through
//! which every change of a proxy session goes — all on the worker's actor thread
//! (`actor_host`). It is the only place a plaintext secret value enters a worker:
//! `RegisterSession` / `UpdateSecretValue` hand it straight to the `ProxyActor`, which puts it
//! in the proxy's session, which zeroises it when replaced.
//!
//! It must never log a request (values travel in them), never keep a value anywhere but the
//! proxy session, and never act for a caller that is not a control plane (enforced by mutual
//! TLS in `osb_grpc::serve_worker`; a plaintext server is loopback-only by construction). It
//! never touches the store: it depends on no database crate, and what it knows of sandboxes
//! comes from the runtime and the control plane's requests.

#![forbid(unsafe_code)]

mod actor_host;
mod checkpoint_keys;
mod commands;
mod convert;
mod events;
mod holdings;
mod node;
mod runtime_choice;
mod sandboxes;
mod service;
mod staged;

pub use commands::AbortAfterRecord;
pub use holdings::Holdings;
pub use node::{ProxyOptions, WorkerNode, WorkerNodeConfig};
pub use runtime_choice::{
    advertised_runtimes, refuse_weak_runtime, RuntimeOptions, DEV_RUNTIME_FLAG,
};
pub use service::{WorkerService, WorkerServiceConfig};
