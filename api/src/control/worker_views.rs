//! The workers this control plane's placement knows, for read-only views (the gateway's
//! `GET /api/workers`). It hands out placement's whole view; deciding what an org may see of
//! shared workers is the gateway's job (ADR 0014).

use std::time::Duration;

use osb_placement::WorkerView;

use super::sandboxes::SandboxService;

impl SandboxService {
    /// Every worker placement has seen, live or lost, with the time since its last heartbeat.
    pub fn worker_views(&self) -> Vec<(WorkerView, Duration)> {
        self.plane()
            .links
            .placement()
            .map(|placement| placement.worker_views())
            .unwrap_or_default()
    }
}
