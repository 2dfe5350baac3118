//! Errors of the sandbox runtime. Each message says what was wrong and what to do next. No
//! error ever carries a secret value or a sealed token: secrets appear by name only.

use osb_proto::{CheckpointId, ErrorCode, SandboxId};

/// Why a `SandboxSpec` was refused before anything was created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// An env or secret name is not a valid variable name.
    #[error("env name {name:?} is invalid: use letters, digits and `_`, not starting with a digit, at most 128 characters")]
    EnvName { name: String },
    /// An env value contains a NUL byte.
    #[error("the value of env {name} contains a NUL byte, which no process environment can hold")]
    EnvValueHasNul { name: String },
    /// The same secret name was given twice.
    #[error("secret {name} is listed twice: give each secret name once")]
    DuplicateSecret { name: String },
    /// cpuCount out of range.
    #[error("cpuCount {given} is out of range: use 1 to 64")]
    CpuCount { given: u32 },
    /// memoryMB out of range.
    #[error("memoryMB {given} is out of range: use 32 to 262144")]
    MemoryMb { given: u32 },
    /// A proxy port is zero.
    #[error(
        "the proxy endpoints need both a transparent and an explicit listener port (non-zero)"
    )]
    ProxyPort,
    /// The CA PEM is missing or not a certificate.
    #[error("the proxy CA must be a PEM certificate (`-----BEGIN CERTIFICATE-----`); without it the sandbox cannot trust the proxy")]
    CaPem,
    /// The runtime name is not one this worker knows.
    #[error("runtime {given:?} is unknown: use \"netns\" or \"microvm\"")]
    Runtime { given: String },
    /// diskMB out of range (below the minimum, or above this worker's maximum).
    #[error(
        "diskMB {given} is out of range: use {min} to {max} (this worker's --sandbox-disk-mb)"
    )]
    DiskMb { given: u32, min: u32, max: u32 },
    /// An allowlist entry is malformed.
    #[error("egress allowlist entry {pattern:?} is invalid: {why}")]
    HostPattern { pattern: String, why: &'static str },
}

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec was refused.
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(#[from] SpecError),
    /// No sandbox with this id lives on this runtime.
    #[error("sandbox {0} does not exist on this worker")]
    UnknownSandbox(SandboxId),
    /// A sandbox with this id already exists.
    #[error("sandbox {0} already exists on this worker: choose a new id or destroy the old one")]
    AlreadyExists(SandboxId),
    /// The sandbox is stopped and cannot run commands.
    #[error("sandbox {0} is stopped: restore or start it before running commands")]
    NotRunning(SandboxId),
    /// The template name is not registered.
    #[error("template {0:?} is not registered on this worker: register it or use `host-system`")]
    UnknownTemplate(String),
    /// A template directory is unusable.
    #[error("template directory {path} is unusable: {why}")]
    BadTemplate { path: String, why: String },
    /// No checkpoint with this id.
    #[error("checkpoint {0} does not exist on this worker")]
    UnknownCheckpoint(CheckpointId),
    /// No snapshot with this name.
    #[error(
        "golden snapshot {0:?} does not exist on this worker: register it from a checkpoint first"
    )]
    UnknownSnapshot(String),
    /// The checkpoint was taken from another template than the spec asks for.
    #[error("checkpoint {checkpoint} belongs to template {expected:?}, not {given:?}: fork with the checkpoint's template")]
    TemplateMismatch {
        checkpoint: CheckpointId,
        expected: String,
        given: String,
    },
    /// The address pool has no free slot.
    #[error("the sandbox address pool {pool} is exhausted: destroy sandboxes or configure a larger pool")]
    PoolExhausted { pool: String },
    /// The spec asks for a runtime this worker does not run.
    #[error("the {kind} runtime is not available on this worker ({reason}): create the sandbox with another runtime or on a worker that offers {kind}")]
    RuntimeUnavailable { kind: String, reason: String },
    /// What had to be copied into the sandbox's disk does not fit its size.
    #[error("{what} does not fit the sandbox's disk of {disk_mb} MiB: ask for a larger diskMB (up to the worker's --sandbox-disk-mb) or start from a smaller checkpoint")]
    DiskFull { what: &'static str, disk_mb: u32 },
    /// A system tool failed while setting something up.
    #[error("{step} failed: {detail}")]
    Setup { step: &'static str, detail: String },
    /// The command to execute is empty.
    #[error("exec needs a command: `cmd` must have at least one element")]
    EmptyCommand,
    /// Plain I/O failure.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }

    /// The stable code for REST and events.
    pub fn code(&self) -> ErrorCode {
        match self {
            RuntimeError::InvalidSpec(_) | RuntimeError::EmptyCommand => ErrorCode::InvalidInput,
            RuntimeError::UnknownSandbox(_)
            | RuntimeError::UnknownTemplate(_)
            | RuntimeError::UnknownCheckpoint(_)
            | RuntimeError::UnknownSnapshot(_) => ErrorCode::NotFound,
            RuntimeError::AlreadyExists(_) | RuntimeError::NotRunning(_) => ErrorCode::Conflict,
            RuntimeError::TemplateMismatch { .. }
            | RuntimeError::BadTemplate { .. }
            | RuntimeError::DiskFull { .. } => ErrorCode::Unprocessable,
            RuntimeError::PoolExhausted { .. } | RuntimeError::RuntimeUnavailable { .. } => {
                ErrorCode::Unavailable
            }
            RuntimeError::Setup { .. } | RuntimeError::Io { .. } => ErrorCode::Internal,
        }
    }
}
