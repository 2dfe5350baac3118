//! The user-facing edge of OpenSandbox: the `osbd` daemon binary (and, with the gateway work,
//! the REST gateway, the worker gRPC service and the `oc` CLI). Binaries stay thin: they parse
//! arguments into a typed command and call into this library, so every command is testable.
//! Nothing here may print a secret value or a master key, except `osbd keys generate`, whose
//! whole purpose is to print one fresh key to stdout.

#![forbid(unsafe_code)]

pub mod control;
pub mod gateway;
pub mod grpc;
pub mod oc;
pub mod osbd;
pub mod platform;
pub mod settings;
pub mod worker;
