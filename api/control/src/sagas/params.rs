//! Saga parameters and step outputs, persisted as JSON in the saga log. They hold ids, names,
//! limits, plain user envs and sealed tokens (capabilities bound to one sandbox's source
//! address, recorded so a resumed saga registers exactly the tokens it booted the sandbox
//! with — ADR 0012); never a secret value.

use std::collections::BTreeMap;

use osb_proto::{CheckpointId, OrgId, ProjectId, RuntimeName, SandboxId, WorkerName};
use serde::{Deserialize, Serialize};

/// Where a new sandbox's writable layer starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum BootFrom {
    /// An empty layer over the template.
    Fresh,
    /// A copy of a checkpoint's layer (fork, or boot from a golden snapshot). The layer lives
    /// on `worker`, so the sandbox is placed there.
    #[serde(rename_all = "camelCase")]
    Checkpoint {
        checkpoint_id: CheckpointId,
        worker: WorkerName,
        /// The runtime the checkpoint was taken on: its copy boots on the same one.
        #[serde(default, skip_serializing_if = "is_netns")]
        runtime: RuntimeName,
    },
}

/// Parameters of the create saga (also used for forks and snapshot boots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateParams {
    pub sandbox_id: SandboxId,
    pub org_id: OrgId,
    pub project_id: Option<ProjectId>,
    pub project_name: Option<String>,
    pub template: String,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    pub timeout_sec: u32,
    /// Plain user envs (they win over sealed envs on a name clash).
    pub envs: BTreeMap<String, String>,
    pub boot: BootFrom,
    /// The caller's labels, stored with the sandbox (absent in sagas logged before they existed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The runtime asked for (ADR 0025); a checkpoint boot uses the checkpoint's instead.
    #[serde(default, skip_serializing_if = "is_netns")]
    pub runtime: RuntimeName,
}

impl CreateParams {
    /// The runtime the sandbox boots on: the checkpoint's for a fork or snapshot boot.
    pub fn effective_runtime(&self) -> RuntimeName {
        match &self.boot {
            BootFrom::Fresh => self.runtime,
            BootFrom::Checkpoint { runtime, .. } => *runtime,
        }
    }
}

/// The runtime a sandbox row ran on, as a runtime a copy of it can ask for (`dev` and unknown
/// names are the namespace slot, `netns`).
pub fn runtime_of_row(runtime: Option<&str>) -> RuntimeName {
    match runtime {
        Some(name) => name.parse().unwrap_or_default(),
        None => RuntimeName::default(),
    }
}

// Serde's `skip_serializing_if` takes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_netns(runtime: &RuntimeName) -> bool {
    *runtime == RuntimeName::Netns
}

/// Output of `resolve_project`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub egress_allowlist: Vec<String>,
}

/// Output of `place_on_worker`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placed {
    pub worker: WorkerName,
}

/// One secret's name and the token minted for it in this sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedName {
    pub name: String,
    pub token: String,
}

/// Output of `seal_secrets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    pub secrets: Vec<SealedName>,
}

/// Output of `boot_sandbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booted {
    pub source_address: String,
    pub runtime: String,
    pub egress: String,
}

/// Parameters of the sagas that act on one existing sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxParams {
    pub sandbox_id: SandboxId,
    pub org_id: OrgId,
    /// Unique per request: the idempotency key of the worker calls this saga makes.
    pub request: String,
    /// Restore: the checkpoint to go back to.
    #[serde(default)]
    pub checkpoint_id: Option<CheckpointId>,
    /// Golden snapshot: its name and id.
    #[serde(default)]
    pub snapshot_name: Option<String>,
    #[serde(default)]
    pub snapshot_id: Option<osb_proto::SnapshotId>,
}

impl SandboxParams {
    /// Parameters for one request on `sandbox`, with a fresh request key.
    pub fn new(sandbox_id: SandboxId, org_id: OrgId) -> Self {
        Self {
            sandbox_id,
            org_id,
            request: osb_proto::SagaId::new().to_string(),
            checkpoint_id: None,
            snapshot_name: None,
            snapshot_id: None,
        }
    }
}

/// Output of `register_session`: how many secrets the session was registered with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub secrets: usize,
}

/// Output of `destroy_sandbox`: whether the worker still held the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destroyed {
    pub existed: bool,
}

/// Output of the steps that record nothing for later steps (`{}` in the log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// Output of `checkpoint_on_worker`: the checkpoint, its worker and the bytes it takes there
/// (`None` in outputs logged before workers measured checkpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpointed {
    pub checkpoint_id: CheckpointId,
    pub worker: WorkerName,
    #[serde(default)]
    pub size_bytes: Option<u64>,
}

/// Output of `check_restorable`: the worker that holds the checkpoint (and the sandbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restorable {
    pub worker: WorkerName,
}
