//! The `Runtime` trait: what the worker needs from any sandbox technology (network namespaces,
//! QEMU microVMs). Nothing here assumes namespaces: a sandbox is an id, a network
//! identity (`SandboxInfo::address`) the proxy recognises, commands run inside it, and a
//! writable layer that can be checkpointed. Implementations must fail closed: if egress control
//! cannot be set up, `create` fails and leaves nothing behind.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::checkpoint::CheckpointMeta;
use crate::error::RuntimeError;
use crate::spec::SandboxSpec;

/// Default bound on captured stdout and on captured stderr.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Default exec timeout.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Exit code reported when an exec hit its timeout (as coreutils `timeout` does).
pub const TIMEOUT_EXIT_CODE: i32 = 124;

/// How strongly a runtime confines egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Kernel-enforced: own network namespace (netns runtime) or own VM on a tap in one
    /// (microvm runtime), egress only through the proxy.
    Enforced,
    /// Development only: plain host processes; egress control is cooperative (proxy variables
    /// only). Never use this for untrusted code.
    DevelopmentCooperative,
}

/// Whether a sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    /// Processes run; exec is possible.
    Running,
    /// Processes are stopped; the writable layer and network identity remain.
    Stopped,
}

/// What the caller learns about a created sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxInfo {
    /// The sandbox.
    #[serde(rename = "sandboxID")]
    pub sandbox_id: SandboxId,
    /// The source address the proxy identifies it by.
    pub address: Ipv4Addr,
    /// The worker-side address the sandbox reaches the proxy and resolver at.
    pub gateway: Ipv4Addr,
    /// Running or stopped.
    pub state: SandboxState,
    /// How egress is confined.
    pub isolation: Isolation,
    /// A human warning when isolation is not enforced (shown in `GET /sandboxes/{id}`).
    pub warning: Option<String>,
}

/// A command to run inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    /// Program and arguments (looked up on `PATH` inside the sandbox).
    pub cmd: Vec<String>,
    /// Extra variables on top of the sandbox environment.
    pub env: BTreeMap<String, String>,
    /// Working directory inside the sandbox (default: `/workspace`).
    pub cwd: Option<String>,
    /// Kill the command after this long.
    pub timeout: Duration,
    /// Bound on each of stdout and stderr (non-streaming exec).
    pub max_output_bytes: usize,
}

impl ExecRequest {
    /// A request with default timeout and output bound.
    pub fn new<I, S>(cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            cmd: cmd.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            cwd: None,
            timeout: DEFAULT_EXEC_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }

    /// Shorthand for `sh -c script`.
    pub fn shell(script: &str) -> Self {
        Self::new(["sh", "-c", script])
    }
}

/// The result of a finished command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecOutput {
    /// Exit code; 128+n when killed by signal n; 124 on timeout.
    pub exit_code: i32,
    /// Captured stdout (lossy UTF-8), with a marker line when truncated.
    pub stdout: String,
    /// Captured stderr (lossy UTF-8), with a marker line when truncated.
    pub stderr: String,
    /// Whether stdout was cut at the bound.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the bound.
    pub stderr_truncated: bool,
    /// Whether the timeout killed the command.
    pub timed_out: bool,
}

/// One piece of a streaming exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecChunk {
    /// Bytes from stdout.
    Stdout(Vec<u8>),
    /// Bytes from stderr.
    Stderr(Vec<u8>),
    /// The command ended (always the last chunk).
    Exited {
        /// Exit code as in `ExecOutput`.
        exit_code: i32,
        /// Whether the timeout killed it.
        timed_out: bool,
    },
}

/// The receiving end of a streaming exec. Dropping it kills the command.
#[derive(Debug)]
pub struct ExecStream {
    /// Chunks in arrival order; the last one is `Exited`.
    pub chunks: mpsc::Receiver<ExecChunk>,
}

/// A sandbox technology. Every method is keyed by `SandboxId`; the runtime owns the handles.
#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug + 'static {
    /// How this runtime confines egress.
    fn isolation(&self) -> Isolation;

    /// Creates and boots a sandbox. On any failure everything created so far is undone.
    async fn create(&self, spec: SandboxSpec) -> Result<SandboxInfo, RuntimeError>;

    /// Runs a command to completion with bounded output.
    async fn exec(&self, id: SandboxId, request: ExecRequest) -> Result<ExecOutput, RuntimeError>;

    /// Runs a command and streams its output.
    async fn exec_streaming(
        &self,
        id: SandboxId,
        request: ExecRequest,
    ) -> Result<ExecStream, RuntimeError>;

    /// The sandbox's current info.
    async fn info(&self, id: SandboxId) -> Result<SandboxInfo, RuntimeError>;

    /// Stops every process of the sandbox; its layer and network identity remain.
    async fn stop(&self, id: SandboxId) -> Result<(), RuntimeError>;

    /// Boots a stopped sandbox again from its current writable layer.
    async fn start(&self, id: SandboxId) -> Result<(), RuntimeError>;

    /// Removes the sandbox and everything it owns. Destroying an unknown id is not an error.
    async fn destroy(&self, id: SandboxId) -> Result<(), RuntimeError>;

    /// Saves the writable layer plus metadata (names and token ids, never values).
    async fn checkpoint(&self, id: SandboxId) -> Result<CheckpointMeta, RuntimeError>;

    /// Replaces the sandbox's egress allowlist (what its resolver answers; the proxy session is
    /// updated separately by the worker). Later checkpoints record the new list.
    async fn set_egress_allowlist(
        &self,
        id: SandboxId,
        allowlist: Vec<String>,
    ) -> Result<(), RuntimeError>;

    /// Removes a checkpoint's layer and metadata; returns whether it existed. Removing an
    /// unknown checkpoint is not an error.
    async fn delete_checkpoint(&self, checkpoint: CheckpointId) -> Result<bool, RuntimeError>;

    /// Brings the same sandbox back from a checkpoint: same id, address and tokens.
    async fn restore(&self, id: SandboxId, checkpoint: CheckpointId) -> Result<(), RuntimeError>;

    /// Creates a new sandbox from a checkpoint's layer. `spec` carries the new id and freshly
    /// minted tokens; its `boot_from` is ignored.
    async fn fork(
        &self,
        checkpoint: CheckpointId,
        spec: SandboxSpec,
    ) -> Result<SandboxInfo, RuntimeError>;

    /// Stops keeping pre-built sandboxes and removes those not yet claimed (worker shutdown,
    /// before the last sandboxes are destroyed). Runtimes without a warm pool do nothing.
    async fn drain_warm_pool(&self) {}

    /// Names a checkpoint as a golden snapshot that `BootLayer::Snapshot(name)` boots from.
    async fn register_snapshot(
        &self,
        name: &str,
        checkpoint: CheckpointId,
    ) -> Result<(), RuntimeError>;
}
