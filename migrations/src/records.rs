//! Plain records the store hands out and takes in. They carry typed ids and validated shapes;
//! none of them can hold a plaintext secret value.

use chrono::{DateTime, Utc};
use osb_proto::{CheckpointId, OrgId, ProjectId, SandboxId, SecretId, SnapshotId, WorkerName};

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Opted in to development workers (cooperative egress; ADR 0025).
    pub development_runtime: bool,
    /// Bounds on the org's active sandboxes (ADR 0027).
    pub quotas: OrgQuotas,
}

/// Bounds on an org's active (creating, running, stopped) sandboxes (ADR 0027) and on the
/// bytes its checkpoints hold on workers (ADR 0032); `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrgQuotas {
    pub sandboxes: Option<u64>,
    pub cpus: Option<u64>,
    pub memory_mb: Option<u64>,
    /// The sum of the sizes of the org's checkpoints (golden snapshots are checkpoints).
    pub checkpoint_bytes: Option<u64>,
}

/// An org's checkpoint bytes: what its checkpoints hold and its quota (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointBytes {
    pub used: u64,
    pub quota: Option<u64>,
}

/// An API key's metadata (the key itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: uuid::Uuid,
    pub org_id: OrgId,
    pub name: String,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `admin`, `sandboxes` or `read` (ADR 0026; the gateway gives them meaning).
    pub scope: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated in batches, not per request: it may lag by the flush interval.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key to record (the caller hashed it; the key itself never reaches the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub org_id: OrgId,
    pub name: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub scope: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A registered master key: its public fingerprint and the version number it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionKeyRecord {
    pub version: u16,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
}

/// A project and its sandbox defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub org_id: OrgId,
    pub name: String,
    pub template: Option<String>,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub timeout_sec: u32,
    pub egress_allowlist: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Default runtime of the project's sandboxes (`netns` or `microvm`; `None`: netns).
    pub runtime: Option<String>,
}

/// What is needed to create a project (already validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    pub org_id: OrgId,
    pub name: String,
    pub template: Option<String>,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub timeout_sec: u32,
    pub egress_allowlist: Vec<String>,
    pub runtime: Option<String>,
}

/// A partial update: `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub template: Option<Option<String>>,
    pub cpu_count: Option<u32>,
    pub memory_mb: Option<u32>,
    pub timeout_sec: Option<u32>,
    pub egress_allowlist: Option<Vec<String>>,
    pub runtime: Option<Option<String>>,
}

/// A secret's metadata: everything but the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub id: SecretId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub name: String,
    pub key_version: u16,
    pub secret_version: u64,
    pub allowed_hosts: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The associated-data layout of the row's ciphertext (ADR 0019).
    pub row_binding: u16,
}

/// A secret with its ciphertext, for the vault only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecretRow {
    pub record: SecretRecord,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedSecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecretRow")
            .field("record", &self.record)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A new ciphertext for a secret, produced by the vault.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretWrite {
    /// The row id: chosen by the vault for a new secret (the ciphertext is bound to it), the
    /// existing row's id for a replacement.
    pub id: SecretId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub name: String,
    pub ciphertext: Vec<u8>,
    pub key_version: u16,
    pub secret_version: u64,
    pub allowed_hosts: Option<Vec<String>>,
    /// The associated-data layout the ciphertext was sealed with.
    pub row_binding: u16,
}

impl std::fmt::Debug for SecretWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWrite")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("name", &self.name)
            .field("key_version", &self.key_version)
            .field("secret_version", &self.secret_version)
            .finish_non_exhaustive()
    }
}

/// Lifecycle states of a sandbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxStatus {
    Creating,
    Running,
    Stopped,
    Failed,
    Destroyed,
}

impl SandboxStatus {
    /// The stored (and API) form.
    pub const fn as_str(self) -> &'static str {
        match self {
            SandboxStatus::Creating => "creating",
            SandboxStatus::Running => "running",
            SandboxStatus::Stopped => "stopped",
            SandboxStatus::Failed => "failed",
            SandboxStatus::Destroyed => "destroyed",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "creating" => SandboxStatus::Creating,
            "running" => SandboxStatus::Running,
            "stopped" => SandboxStatus::Stopped,
            "failed" => SandboxStatus::Failed,
            "destroyed" => SandboxStatus::Destroyed,
            _ => return None,
        })
    }
}

/// A sandbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    pub id: SandboxId,
    pub org_id: OrgId,
    pub project_id: Option<ProjectId>,
    pub project_name: Option<String>,
    /// The worker (certificate name) the sandbox is placed on.
    pub worker_id: Option<WorkerName>,
    pub status: SandboxStatus,
    pub generation: u64,
    pub template: String,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub timeout_sec: u32,
    pub failure_reason: Option<String>,
    /// The runtime that runs it (`netns`, `dev`), once booted.
    pub runtime: Option<String>,
    /// How its egress is confined (`enforced` or `cooperative`), once booted.
    pub egress: Option<String>,
    /// The caller's labels (a string map; `{}` when none were given).
    pub metadata: std::collections::BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What is needed to record a new sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSandbox {
    pub id: SandboxId,
    pub org_id: OrgId,
    pub project_id: Option<ProjectId>,
    pub project_name: Option<String>,
    pub template: String,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub timeout_sec: u32,
    /// The caller's labels, bounded by the gateway.
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// One page of a keyset listing: at most the requested number of items, in the listing's
/// order, and whether more follow the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// Where a newest-first listing (sandboxes, checkpoints) resumes: strictly after the item
/// created at `created_at` with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewestFirstKey<Id> {
    pub created_at: DateTime<Utc>,
    pub id: Id,
}

/// Where a saga stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaStatus {
    /// Steps are being done.
    Running,
    /// A step failed; completed steps are being undone.
    Unwinding,
    /// Every step completed.
    Completed,
    /// Unwound after a failure: nothing is left behind.
    Unwound,
    /// An undo kept failing: needs an operator (resumed again on every start).
    Stuck,
}

impl SagaStatus {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            SagaStatus::Running => "running",
            SagaStatus::Unwinding => "unwinding",
            SagaStatus::Completed => "completed",
            SagaStatus::Unwound => "unwound",
            SagaStatus::Stuck => "stuck",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "running" => SagaStatus::Running,
            "unwinding" => SagaStatus::Unwinding,
            "completed" => SagaStatus::Completed,
            "unwound" => SagaStatus::Unwound,
            "stuck" => SagaStatus::Stuck,
            _ => return None,
        })
    }

    /// True while the saga still has work to do.
    pub const fn is_unfinished(self) -> bool {
        matches!(
            self,
            SagaStatus::Running | SagaStatus::Unwinding | SagaStatus::Stuck
        )
    }
}

/// A saga row.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaRecord {
    pub id: osb_proto::SagaId,
    pub kind: String,
    pub status: SagaStatus,
    pub owner: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub params: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every claim: a write under an older generation is refused (fencing).
    pub generation: i64,
}

impl SagaRecord {
    /// The claim this record shows, if the saga has an owner.
    pub fn claim(&self) -> Option<SagaClaim> {
        self.owner.as_ref().map(|owner| SagaClaim {
            owner: owner.clone(),
            generation: self.generation,
        })
    }
}

/// One owner's hold on a saga: every step and status write names it, and the store refuses the
/// write (`StoreError::Stale`) once another claim has replaced it. A control plane that lost its
/// lease (paused, partitioned) can therefore never record anything for a saga another one has
/// taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaClaim {
    pub owner: String,
    pub generation: i64,
}

/// Doing or undoing a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepAction {
    Do,
    Undo,
}

impl StepAction {
    /// Stored form (also the last part of the idempotency key).
    pub const fn as_str(self) -> &'static str {
        match self {
            StepAction::Do => "do",
            StepAction::Undo => "undo",
        }
    }
}

/// Where one step action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Logged before the action runs: after a crash, the action is run again (it is idempotent).
    Started,
    /// The action finished; its output is stored.
    Completed,
    /// The action failed; the output holds the error message.
    Failed,
}

impl StepStatus {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepStatus::Started => "started",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "started" => StepStatus::Started,
            "completed" => StepStatus::Completed,
            "failed" => StepStatus::Failed,
            _ => return None,
        })
    }
}

/// One saga log row.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaLogEntry {
    pub seq: u32,
    pub step: String,
    pub action: StepAction,
    pub status: StepStatus,
    pub output: Option<serde_json::Value>,
}

/// A checkpoint: which sandbox it was taken from, on which worker its layer lives, and its
/// metadata (env names, secret names and token ids — never values, never usable tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub id: CheckpointId,
    pub org_id: OrgId,
    pub sandbox_id: Option<SandboxId>,
    pub project_id: Option<ProjectId>,
    /// The worker (certificate name) holding the checkpoint's layer.
    pub worker: WorkerName,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Bytes the layer and its metadata take on the worker's disk, as the worker measured them
    /// when it wrote them; `None` for checkpoints taken before sizes were recorded (ADR 0032).
    pub size_bytes: Option<u64>,
}

/// A golden snapshot: an org-unique name for a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub id: SnapshotId,
    pub org_id: OrgId,
    pub name: String,
    pub checkpoint_id: Option<CheckpointId>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Its checkpoint's size (counted once, as the checkpoint's, by the quota; ADR 0032).
    pub size_bytes: Option<u64>,
}

/// An event waiting in the outbox: published to `subject` with `Nats-Msg-Id` = `msg_id`. The
/// payload is the event's envelope (ids, names, statuses — never a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub msg_id: String,
    pub subject: String,
    pub payload: Vec<u8>,
}
