//! The heartbeat a worker publishes every interval: who it is, where its gRPC service listens,
//! what it can hold and what it holds now.

use osb_proto::{WorkerId, WorkerName};
use serde::{Deserialize, Serialize};

/// The envelope kind of heartbeats.
pub const HEARTBEAT_KIND: &str = "worker.heartbeat";

/// What a worker can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    pub sandboxes: u32,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
}

/// What a worker holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub sandboxes: u32,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
}

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerHeartbeat {
    pub worker_id: WorkerId,
    /// The name in the worker's certificate (`spiffe://opensandbox/worker/<name>`).
    pub name: WorkerName,
    /// `host:port` of the worker's gRPC service.
    pub grpc_addr: String,
    /// `netns` or `development` (placement prefers isolated workers).
    pub isolation: String,
    pub capacity: Capacity,
    pub usage: Usage,
    /// Increases by one per heartbeat; a restarted worker starts again at 0.
    pub sequence: u64,
}
