//! The real `oc` binary for the tests that run it against real servers (`oc_cli`,
//! `oc_sandbox`). `oc` is the `osb-cli` package's binary, so cargo gives this package no
//! `CARGO_BIN_EXE_oc`. `cargo nextest run --workspace` (CI, `scripts/test.sh`) builds it next
//! to `osbd`; when it is missing or older than the CLI's sources (only `-p osbd` was built),
//! the first call in a test process builds it with the cargo that built this test, into the
//! same target directory and profile, so a test never runs a stale `oc`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

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
    let path = profile_dir.join("oc");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built_at = std::fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .ok();
    if built_at.is_some_and(|built| newest_source(&workspace) <= built) {
        return path;
    }
    let target_dir = profile_dir.parent().expect("a target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("a profile directory");
    let manifest = workspace.join("Cargo.toml");
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
    assert!(path.exists(), "cargo built no {}", path.display());
    path
}

/// The newest modification time among the CLI's sources, its manifest and the lock file.
fn newest_source(workspace: &Path) -> SystemTime {
    fn walk(dir: &Path, newest: &mut SystemTime) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(modified) = entry.metadata().and_then(|meta| meta.modified()) {
                *newest = (*newest).max(modified);
            }
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    walk(&workspace.join("api/cli/src"), &mut newest);
    for file in ["api/cli/Cargo.toml", "Cargo.lock"] {
        if let Ok(modified) =
            std::fs::metadata(workspace.join(file)).and_then(|meta| meta.modified())
        {
            newest = newest.max(modified);
        }
    }
    newest
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
