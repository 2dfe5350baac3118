//! `oc`: the command-line client of the REST API. Parses arguments into a typed command, calls
//! the API, prints a human table (or the API's JSON with `--json`), and exits with a code that
//! says what kind of failure it was. A secret value is read from standard input only — never
//! from an argument, which would land in shell history and process listings — and is never
//! printed.

mod cli;
mod client;
mod config;
mod output;

pub use cli::{
    finish, run, stdin_is_terminal, Failure, OcCli, EXIT_AUTH, EXIT_CONFLICT, EXIT_NOT_FOUND,
    EXIT_USAGE,
};
pub use config::{CliConfig, ConfigError, CONFIG_ENV};
pub use client::{ApiClient, API_KEY_ENV, API_URL_ENV, DEFAULT_API_URL};
