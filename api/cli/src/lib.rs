//! `oc`: the command-line client of the REST API. Parses arguments into a typed command, finds
//! the API and key (flag, environment, then `~/.config/opensandbox/config.toml`), calls the API,
//! prints a human table (or the API's JSON with `--json`), and exits with a code that says what
//! kind of failure it was. A secret value is read from standard input only — never from an
//! argument, which would land in shell history and process listings — and is never printed; the
//! API key is never taken from an argument nor printed either.
//!
//! It is a client of the REST API only: it depends on no server crate (gateway, control,
//! worker, gRPC, store, vault), so it builds fast and cannot reach around the API.

#![forbid(unsafe_code)]

mod cli;
mod client;
mod config;
mod connection;
mod envs;
mod events_cmd;
mod exec_cmd;
mod failure;
mod project_cmd;
mod prompt;
mod render;
mod run;
mod sandbox_cmd;
mod secret_cmd;
mod snapshot_cmd;
mod spinner;
mod sse;

pub use cli::OcCli;
pub use client::{ApiClient, API_KEY_ENV, API_URL_ENV, DEFAULT_API_URL};
pub use config::{CliConfig, ConfigError, CONFIG_ENV};
pub use failure::{Failure, EXIT_AUTH, EXIT_CONFLICT, EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_USAGE};
pub use run::{run, Io};
