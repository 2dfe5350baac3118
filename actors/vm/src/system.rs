//! Running the host tools the netns runtime is built on (`ip`, `nft`, `cp`, util-linux) with
//! their errors captured into `RuntimeError::Setup`. Commands get a cleared environment so no
//! worker variable (let alone a secret) leaks into them. This module must never run anything
//! inside a sandbox; that is `exec`'s job.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::RuntimeError;

/// PATH given to host tools.
pub const HOST_TOOL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs `program args…`, feeding `stdin` if given; a non-zero exit becomes `Setup { step }`.
pub async fn run_tool(
    step: &'static str,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<(), RuntimeError> {
    run_tool_output(step, program, args, stdin).await.map(drop)
}

/// Like `run_tool` and returns stdout.
pub async fn run_tool_output(
    step: &'static str,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, RuntimeError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", HOST_TOOL_PATH)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|error| RuntimeError::Setup {
        step,
        detail: format!("cannot start `{program}` ({error}); is it installed?"),
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| RuntimeError::io(format!("writing to `{program}`"), e))?;
        drop(pipe);
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| RuntimeError::io(format!("waiting for `{program}`"), e))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(RuntimeError::Setup {
            step,
            detail: format!(
                "`{program} {}` exited with {}: {}",
                args.first().copied().unwrap_or_default(),
                output.status,
                stderr.trim().chars().take(600).collect::<String>()
            ),
        })
    }
}

/// Sends SIGKILL to a process; a process that is already gone is fine.
pub fn kill_process(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Sends SIGKILL to a process group; a group that is already gone is fine.
pub fn kill_process_group(pgid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Whether the current process runs with effective uid 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether an executable named `program` is on the host tool PATH.
pub fn tool_exists(program: &str) -> bool {
    HOST_TOOL_PATH
        .split(':')
        .any(|dir| std::path::Path::new(dir).join(program).is_file())
}
