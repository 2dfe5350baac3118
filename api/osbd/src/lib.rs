//! `osbd`: the daemon and the wiring of the platform. `init` prepares the data directory,
//! database and keys; `migrate` manages the schema; `keys` generates, inspects and rewraps
//! master keys; `up` runs the whole platform on one machine; `control` and `worker` are the
//! distributed roles. Each command returns a typed outcome and writes human text to the given
//! writers, so tests run them in-process or through the real binary. [`platform`] assembles a
//! control-plane node from `osb-control` and `osb-gateway`; `osb-worker` provides the worker
//! node; the `testkit` feature adds the in-process test platform the tests and benches share.
//!
//! Nothing here may print a secret value or a master key, except `osbd keys generate`, whose
//! whole purpose is to print one fresh key to stdout. Wiring only: domain logic belongs in the
//! role crates, not here.

#![forbid(unsafe_code)]

mod admin;
mod admin_keys;
mod certs;
mod cli;
mod context;
mod failpoints;
mod gateway;
mod http_workers;
mod init;
mod keys;
mod migrate;
mod node_env;
pub mod platform;
mod roles;
pub mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;
mod up;

pub use certs::{CertRole, CertsCommand};
pub use cli::{run, AdminCommand, Cli, Command, KeysCommand, MigrateCommand};
pub use context::CommandError;
