//! How sandboxes, checkpoints and snapshots look in the API (camelCase, `sandboxID`), and how a
//! control-plane failure becomes an API error. A sandbox on a development runtime carries a
//! loud `warning`: its egress control is cooperative only.

use chrono::{DateTime, Utc};
use osb_proto::{CheckpointId, ErrorCode, ProjectId, SandboxId};
use osb_store::{CheckpointRecord, SandboxRecord, SnapshotRecord};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use osb_control::ControlError;

/// Shown on sandboxes whose egress is not enforced by the network layer.
pub const COOPERATIVE_WARNING: &str = "development runtime: egress control is cooperative (proxy variables only); do not run untrusted code here";

/// A sandbox as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SandboxView {
    #[serde(rename = "sandboxID")]
    pub sandbox_id: SandboxId,
    pub status: String,
    #[serde(rename = "workerID")]
    pub worker_id: Option<String>,
    pub project: Option<String>,
    #[serde(rename = "projectID")]
    pub project_ref: Option<ProjectId>,
    /// Deprecated spelling of `projectID`; the same value.
    pub project_id: Option<ProjectId>,
    pub template: String,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    pub timeout_sec: u32,
    pub runtime: Option<String>,
    pub egress: Option<String>,
    pub warning: Option<String>,
    pub failure_reason: Option<String>,
    /// The caller's labels (`{}` when none).
    pub metadata: std::collections::BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SandboxRecord> for SandboxView {
    fn from(record: SandboxRecord) -> Self {
        let warning = (record.egress.as_deref() == Some("cooperative"))
            .then(|| COOPERATIVE_WARNING.to_owned());
        Self {
            sandbox_id: record.id,
            status: record.status.as_str().to_owned(),
            worker_id: record.worker_id.map(|worker| worker.to_string()),
            project: record.project_name,
            project_ref: record.project_id,
            project_id: record.project_id,
            template: record.template,
            cpu_count: record.cpu_count,
            memory_mb: record.memory_mb,
            timeout_sec: record.timeout_sec,
            runtime: record.runtime,
            egress: record.egress,
            warning,
            failure_reason: record.failure_reason,
            metadata: record.metadata,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// A checkpoint as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointView {
    #[serde(rename = "checkpointID")]
    pub checkpoint_id: CheckpointId,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: Option<SandboxId>,
    #[serde(rename = "workerID")]
    pub worker_id: String,
    pub created_at: DateTime<Utc>,
    /// Bytes on the worker's disk (`null`: taken before sizes were recorded; ADR 0032).
    pub size_bytes: Option<u64>,
}

impl From<CheckpointRecord> for CheckpointView {
    fn from(record: CheckpointRecord) -> Self {
        Self {
            checkpoint_id: record.id,
            sandbox_id: record.sandbox_id,
            worker_id: record.worker.to_string(),
            created_at: record.created_at,
            size_bytes: record.size_bytes,
        }
    }
}

/// A golden snapshot as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotView {
    pub name: String,
    #[serde(rename = "checkpointID")]
    pub checkpoint_id: Option<CheckpointId>,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: Option<String>,
    #[serde(rename = "workerID")]
    pub worker_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Its checkpoint's bytes on the worker's disk (`null`: not recorded; ADR 0032).
    pub size_bytes: Option<u64>,
}

impl From<SnapshotRecord> for SnapshotView {
    fn from(record: SnapshotRecord) -> Self {
        let text = |key: &str| record.metadata[key].as_str().map(str::to_owned);
        Self {
            sandbox_id: text("sandboxID"),
            worker_id: text("workerID"),
            name: record.name,
            checkpoint_id: record.checkpoint_id,
            created_at: record.created_at,
            size_bytes: record.size_bytes,
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::NotFound(message) => ApiError::new(ErrorCode::NotFound, message),
            ControlError::Conflict(message) => ApiError::new(ErrorCode::Conflict, message),
            ControlError::Invalid(message) => ApiError::new(ErrorCode::Unprocessable, message),
            ControlError::Unavailable(message) => ApiError::new(ErrorCode::Unavailable, message),
            ControlError::Failed(message) => ApiError::new(ErrorCode::Internal, message),
            ControlError::Store(store) => store.into(),
        }
    }
}
