//! The heartbeat a worker publishes every interval: who it is, where its gRPC service listens,
//! what it can hold and what it holds now.

use osb_proto::{RuntimeName, WorkerId, WorkerName, DEV_RUNTIME_ADVERTISED};
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
    /// The runtimes this worker serves: `netns`, `microvm`, `dev` (ADR 0025). Heartbeats of
    /// workers older than this field carry none; their isolation stands in.
    #[serde(default)]
    pub runtimes: Vec<String>,
    pub capacity: Capacity,
    pub usage: Usage,
    /// Increases by one per heartbeat; a restarted worker starts again at 0.
    pub sequence: u64,
}

impl WorkerHeartbeat {
    /// The runtimes the worker advertises (from `isolation` when the heartbeat predates them).
    pub fn advertised_runtimes(&self) -> Vec<&str> {
        if self.runtimes.is_empty() {
            return vec![if self.isolation == RuntimeName::Netns.as_str() {
                RuntimeName::Netns.as_str()
            } else {
                DEV_RUNTIME_ADVERTISED
            }];
        }
        self.runtimes.iter().map(String::as_str).collect()
    }

    /// Whether the worker can run a sandbox on `runtime`: it advertises it, or (for `netns`
    /// only) it has the development runtime and the org opted in to it.
    pub fn serves(&self, runtime: RuntimeName, allow_development: bool) -> bool {
        let advertised = self.advertised_runtimes();
        advertised.contains(&runtime.as_str())
            || (runtime == RuntimeName::Netns
                && allow_development
                && advertised.contains(&DEV_RUNTIME_ADVERTISED))
    }

    /// Whether the worker would serve `runtime` only through its development runtime.
    pub fn serves_only_by_development(&self, runtime: RuntimeName) -> bool {
        self.serves(runtime, true) && !self.serves(runtime, false)
    }
}
