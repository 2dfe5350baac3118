//! The workers this control plane's placement knows, for read-only views (the gateway's
//! `GET /api/workers`), as a plain snapshot type so the gateway never reaches into placement.
//! It hands out every worker's name, liveness, isolation and total capacity; deciding what an
//! org may see of shared workers is the gateway's job (ADR 0017). It never hands out usage.

use std::time::Duration;

use osb_placement::WorkerStatus;
use osb_proto::WorkerName;

use super::sandboxes::SandboxService;

/// One worker as placement last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownWorker {
    pub name: WorkerName,
    /// False once its heartbeats stopped (placement counts it lost).
    pub live: bool,
    /// `netns` (egress enforced) or `development` (cooperative), as the worker advertises.
    pub isolation: String,
    /// Total sandboxes, CPUs and memory (MB) it can hold.
    pub capacity_sandboxes: u32,
    pub capacity_cpus: u32,
    pub capacity_memory_mb: u64,
    /// Time since its last heartbeat.
    pub heartbeat_age: Duration,
}

impl SandboxService {
    /// Every worker placement has seen, live or lost.
    pub fn known_workers(&self) -> Vec<KnownWorker> {
        let Some(placement) = self.plane().links.placement() else {
            return Vec::new();
        };
        placement
            .worker_views()
            .into_iter()
            .map(|(view, heartbeat_age)| KnownWorker {
                live: view.status == WorkerStatus::Live,
                isolation: view.heartbeat.isolation.clone(),
                capacity_sandboxes: view.heartbeat.capacity.sandboxes,
                capacity_cpus: view.heartbeat.capacity.cpu_count,
                capacity_memory_mb: view.heartbeat.capacity.memory_mb,
                name: view.heartbeat.name,
                heartbeat_age,
            })
            .collect()
    }
}
