//! `osbd`: the daemon's commands. `init` prepares the data directory, database and keys;
//! `migrate` manages the schema; `keys` generates, inspects and rewraps master keys; `up` runs
//! the whole platform on one machine; `control` and `worker` are the distributed roles. Each
//! command returns a typed outcome and writes human text to the given writers, so tests run
//! them in-process or through the real binary.

mod admin;
mod certs;
mod cli;
mod context;
mod gateway;
mod init;
mod keys;
mod migrate;
mod node_env;
mod roles;
mod up;

pub use certs::{CertRole, CertsCommand};
pub use cli::{run, AdminCommand, Cli, Command, KeysCommand, MigrateCommand};
pub use context::CommandError;
