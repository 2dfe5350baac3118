//! Integration tests of `osbd` against real databases: the `osbd` binary run as a real
//! process, the REST gateway driven through actix-web's test service, the whole platform in
//! process (`osbd::testkit`), the worker service over the real link, and the `oc` binary
//! against real servers (its stub-only tests are `osb-cli`'s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod cluster_kill;
mod full_chain;
mod gateway;
mod oc_bin;
mod oc_cli;
mod oc_sandbox;
mod osbd_admin;
mod osbd_certs;
mod osbd_gateway;
mod osbd_init;
mod osbd_keys;
mod osbd_up;
mod outbox;
mod sandboxes;
mod settings;
mod soak;
mod support;
mod worker_service;

use std::process::{Command, Output};

/// Runs the real `osbd` with exactly the given OpenSandbox environment.
pub(crate) fn osbd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_osbd"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("OPENSANDBOX_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("osbd runs")
}

pub(crate) fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
