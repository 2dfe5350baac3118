//! Sandbox runtimes for OpenSandbox workers and the `VmActor` that owns one sandbox.
//!
//! A [`Runtime`] creates sandboxes from a typed [`SandboxSpec`], runs commands in them, stops,
//! destroys, checkpoints, restores and forks them. The default on Linux as root is the
//! [`NetnsRuntime`]: each sandbox gets its own network namespace and veth, pid/mount/uts/ipc
//! namespaces, an overlay root over a read-only system tree, cgroup limits and per-sandbox
//! nftables rules that let traffic out only through the worker's sealing proxy and the worker's
//! resolver. The [`MicroVmRuntime`] runs each sandbox as a QEMU `microvm` guest with its own
//! kernel on a tap inside the same kind of namespace, link and rules (`host`), driven by the
//! guest agent (`osb-guest-agent`); [`DispatchRuntime`] serves both, by the spec's `runtime`.
//! Without root, [`DevelopmentRuntime`] runs plain processes and says loudly that its egress
//! control is only cooperative.
//!
//! Wiring, in short: build a [`NetnsConfig`] (prefix, data dir, address pool, resolver bind),
//! and optionally a [`MicroVmConfig`] (its own prefix, pool and data dir), call
//! [`select_runtimes`] (or [`select_runtime`] for netns alone) with an [`EventSink`] (the bus
//! maps `SandboxEvent::name()` to `osb.sandbox.<id>.<name>`), and give each sandbox a [`VmActor`] holding the shared
//! `Arc<dyn Runtime>` and its [`SandboxSpec`] (sealed tokens minted by the caller, the proxy's
//! ports and CA PEM). Register the returned `SandboxInfo::address` as the sandbox's identity
//! with the proxy; the proxy listens on all addresses at the spec's two ports.
//!
//! This crate must never see a secret value: sandboxes get sealed tokens minted by the caller,
//! and checkpoints record secret names and token ids only. It must never depend on the proxy
//! crate: the proxy's ports and CA are inputs.

#![forbid(unsafe_code)]

pub mod actor;
pub mod allowlist;
pub mod checkpoint;
pub mod config;
pub mod dev;
pub mod dispatch;
pub mod dns;
pub mod env;
pub mod error;
pub mod events;
pub mod exec;
pub mod faults;
pub mod host;
pub mod lifecycle;
pub mod microvm;
pub mod naming;
pub mod netns;
pub mod output;
pub mod pool;
pub mod runtime;
pub mod select;
pub mod spec;
pub mod system;
mod vm_error;

pub use actor::{VmActor, VmError};
pub use checkpoint::{CheckpointMeta, SecretRef};
pub use config::NetnsConfig;
pub use dev::DevelopmentRuntime;
pub use dispatch::DispatchRuntime;
pub use error::{RuntimeError, SpecError};
pub use events::{EventSink, LogSink, RecordingSink, SandboxEvent, SandboxEventKind};
pub use lifecycle::{Lifecycle, LifecycleError, VmCommand};
pub use microvm::{MicroVmConfig, MicroVmRuntime};
pub use netns::{NetnsRuntime, ResourceCensus};
pub use pool::Ipv4Pool;
pub use runtime::{
    ExecChunk, ExecOutput, ExecRequest, ExecStream, Isolation, Runtime, SandboxInfo, SandboxState,
};
pub use select::{select_runtime, select_runtimes};
pub use spec::{
    BootLayer, ProxyEndpoints, RuntimeKind, SandboxSpec, SealedEnv, HOST_SYSTEM_TEMPLATE,
};
