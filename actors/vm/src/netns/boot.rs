//! Booting a sandbox's pid 1 and entering the sandbox to run commands, with util-linux
//! (`nsenter`, `unshare`) rather than hand-written `unsafe` pre-exec code (ADR 0201). Every
//! process first joins the sandbox's cgroups through a tiny `sh` shim, so nothing of the sandbox
//! ever runs outside its limits. Commands run as the unprivileged sandbox user with an
//! environment built by `env::compose_env` and nothing inherited from the worker. This module
//! must never run a command in the host's namespaces with the sandbox's environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::error::RuntimeError;
use crate::netns::rootfs::{BOOT_SCRIPT, CGROUP_JOIN_SCRIPT};
use crate::system::HOST_TOOL_PATH;

/// The running pid 1 of a sandbox.
#[derive(Debug)]
pub struct InitProcess {
    /// The `unshare` process (our child); dropping it kills the sandbox (`--kill-child`).
    pub unshare: Child,
    /// Host pid of the sandbox's pid 1 (the target of `nsenter`).
    pub pid1: i32,
    /// The pipes a pid 1 booted without a name waits on for it (warm pool); None once named.
    pub naming: Option<NameChannel>,
}

/// Pid 1's stdin and stdout while it waits for its hostname (a pooled sandbox): the worker
/// writes the name, pid 1 sets it and answers `named`, then drops both pipes.
#[derive(Debug)]
pub struct NameChannel {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl NameChannel {
    /// Gives pid 1 its hostname (UTS) and waits until it has set it.
    pub async fn name(mut self, hostname: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let refuse = |detail: String| RuntimeError::Setup {
            step: "naming the claimed sandbox (hostname)",
            detail,
        };
        let exchange = async {
            self.stdin
                .write_all(format!("{hostname}\n").as_bytes())
                .await
                .map_err(|e| refuse(format!("pid 1 no longer reads its name ({e})")))?;
            let mut line = String::new();
            self.stdout
                .read_line(&mut line)
                .await
                .map_err(|e| refuse(format!("pid 1 did not answer ({e})")))?;
            match line.trim() {
                "named" => Ok(()),
                other => Err(refuse(format!(
                    "pid 1 answered {other:?} instead of `named`"
                ))),
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| refuse(format!("pid 1 did not answer within {timeout:?}")))?
    }
}

/// What booting needs.
#[derive(Debug, Clone)]
pub struct BootPlan<'a> {
    /// Name of the sandbox's network namespace.
    pub netns: &'a str,
    /// cgroup.procs files to join.
    pub cgroup_procs: &'a [PathBuf],
    /// Mount point of the root (an empty directory).
    pub root: &'a Path,
    /// overlay lowerdir value.
    pub lowerdir: &'a str,
    /// overlay upperdir.
    pub upper: &'a Path,
    /// overlay workdir.
    pub work: &'a Path,
    /// UTS hostname; None: pid 1 waits for it on stdin after reporting ready (warm pool,
    /// [`NameChannel`]).
    pub hostname: Option<&'a str>,
    /// Host trees bound read-only.
    pub binds: &'a [PathBuf],
}

pub(crate) fn join_cgroups(command: &mut Command, cgroup_procs: &[PathBuf]) {
    command
        .arg("-c")
        .arg(CGROUP_JOIN_SCRIPT)
        .arg("osb-join")
        .arg(cgroup_procs.len().to_string())
        .args(cgroup_procs);
}

/// Starts pid 1 and waits until it reports ready.
pub async fn boot(plan: &BootPlan<'_>, timeout: Duration) -> Result<InitProcess, RuntimeError> {
    let mut command = Command::new("/bin/sh");
    join_cgroups(&mut command, plan.cgroup_procs);
    command
        .arg("nsenter")
        .arg(format!("--net=/run/netns/{}", plan.netns))
        .args([
            "--",
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--propagation",
            "private",
            "--uts",
            "--ipc",
            "--",
            "/bin/sh",
            "-c",
            BOOT_SCRIPT,
            "osb-boot",
        ])
        .arg(plan.root)
        .arg(plan.lowerdir)
        .arg(plan.upper)
        .arg(plan.work)
        .arg(plan.hostname.unwrap_or_default())
        .args(plan.binds)
        .env_clear()
        .env("PATH", HOST_TOOL_PATH)
        .stdin(if plan.hostname.is_some() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut unshare = command.spawn().map_err(|e| RuntimeError::Setup {
        step: "starting the sandbox init",
        detail: format!("cannot run /bin/sh ({e})"),
    })?;
    let mut stdout = unshare.stdout.take().map(BufReader::new);
    let mut stderr = unshare.stderr.take();
    let ready = async {
        let mut line = String::new();
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_line(&mut line).await;
        }
        line
    };
    let line = tokio::time::timeout(timeout, ready)
        .await
        .unwrap_or_default();
    let pid1 = line
        .strip_prefix("ready ")
        .and_then(|rest| rest.trim().parse::<i32>().ok());
    let naming = match (unshare.stdin.take(), stdout) {
        (Some(stdin), Some(stdout)) => Some(NameChannel { stdin, stdout }),
        _ => None,
    };
    match pid1 {
        Some(pid1) if plan.hostname.is_some() || naming.is_some() => Ok(InitProcess {
            unshare,
            pid1,
            naming,
        }),
        _ => {
            let _ = unshare.start_kill();
            let _ = unshare.wait().await;
            let mut detail = String::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    stderr.read_to_string(&mut detail),
                )
                .await;
            }
            Err(RuntimeError::Setup {
                step: "booting the sandbox (mounts, pivot_root)",
                detail: if detail.trim().is_empty() {
                    format!("init did not report ready within {timeout:?}")
                } else {
                    detail.trim().chars().take(600).collect()
                },
            })
        }
    }
}

/// What entering the sandbox needs.
#[derive(Debug, Clone)]
pub struct EnterPlan<'a> {
    /// Host pid of the sandbox's pid 1.
    pub pid1: i32,
    /// cgroup.procs files to join.
    pub cgroup_procs: &'a [PathBuf],
    /// uid of the command.
    pub uid: u32,
    /// gid of the command.
    pub gid: u32,
    /// The complete environment of the command.
    pub env: &'a BTreeMap<String, String>,
    /// Working directory inside the sandbox (None: `/workspace`).
    pub cwd: Option<&'a str>,
    /// Program and arguments.
    pub cmd: &'a [String],
}

/// Path of `env` inside the sandbox; it applies the sandbox environment and working directory
/// after the sandbox has been entered, so no host-side process ever sees the sandbox's variables
/// (a user `LD_PRELOAD` must never reach `nsenter`, which runs as host root).
pub const SANDBOX_ENV_TOOL: &str = "/usr/bin/env";

/// Builds the command that runs `plan.cmd` inside the sandbox.
pub fn enter_command(plan: &EnterPlan<'_>) -> Command {
    let mut command = Command::new("/bin/sh");
    join_cgroups(&mut command, plan.cgroup_procs);
    command
        .arg("nsenter")
        .arg("-t")
        .arg(plan.pid1.to_string())
        .args(["-m", "-u", "-i", "-n", "-p", "-r", "-w"])
        .arg(format!("--setuid={}", plan.uid))
        .arg(format!("--setgid={}", plan.gid))
        .args(["--", SANDBOX_ENV_TOOL, "-i"]);
    if let Some(cwd) = plan.cwd {
        // `env --chdir` runs inside the sandbox root, so symlinks cannot lead outside it.
        command.arg(format!("--chdir={cwd}"));
    }
    command
        .arg("--")
        .args(
            plan.env
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        )
        .args(plan.cmd)
        .env_clear()
        .env("PATH", HOST_TOOL_PATH);
    command
}
