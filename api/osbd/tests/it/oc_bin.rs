//! The real `oc` binary for the tests that run it against real servers (`oc_cli`,
//! `oc_sandbox`). `oc` is the `osb-cli` package's binary, so cargo gives this package no
//! `CARGO_BIN_EXE_oc`: the first call in a test process builds it with the cargo that built
//! this test, into the same target directory and profile — a no-op when `cargo nextest run
//! --workspace` built it already, and never a stale binary when only `-p osbd` was built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A path no test machine has: keeps a developer's real config out of the tests.
pub(crate) const NO_CONFIG: &str = "/nonexistent/opensandbox-test/config.toml";

/// The freshly built `oc`.
pub(crate) fn oc_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(build_oc)
}

fn build_oc() -> PathBuf {
    let osbd = Path::new(env!("CARGO_BIN_EXE_osbd"));
    let profile_dir = osbd
        .parent()
        .expect("the osbd binary sits in target/<profile>");
    let target_dir = profile_dir.parent().expect("a target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("a profile directory");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args([
            "build", "--quiet", "--locked", "-p", "osb-cli", "--bin", "oc",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    let built = cargo.output().expect("cargo runs");
    assert!(
        built.status.success(),
        "building oc failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let path = profile_dir.join("oc");
    assert!(path.exists(), "cargo built no {}", path.display());
    path
}

/// The real `oc` with every OpenSandbox variable removed and no config file, then `env` applied.
pub(crate) fn oc_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(oc_path());
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("OPENSANDBOX_") || name == "XDG_CONFIG_HOME" {
            command.env_remove(name);
        }
    }
    command.env("OPENSANDBOX_CONFIG", NO_CONFIG);
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub(crate) fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
