//! `GET /api/workers`: the workers sandboxes run on, as an org may see them (ADR 0017). Workers
//! are shared by every org, so an org sees what it needs to judge where its sandboxes run —
//! name, liveness, last heartbeat, isolation and total capacity — plus how many of **its own**
//! sandboxes are active on each. It never sees what other orgs run there: no usage or free
//! room (both move with other tenants' activity), and no gRPC address (internal topology).
//!
//! A restarted worker heartbeats under a new id while its old id is still remembered as lost:
//! one entry per worker name, the freshest.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::sandboxes::control;
use super::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/workers", web::get().to(list));
}

/// What a worker can hold (its total, not what is free).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCapacityView {
    pub sandboxes: u32,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
}

/// A worker as an org sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    /// The worker's name, as sandboxes show it in their `workerID`.
    #[serde(rename = "workerID")]
    pub worker_id: String,
    /// `live`, or `lost` when its heartbeats stopped.
    pub status: String,
    /// `netns` (egress enforced) or `development` (cooperative).
    pub isolation: String,
    pub last_heartbeat_at: DateTime<Utc>,
    pub capacity: WorkerCapacityView,
    /// The caller's sandboxes active there (creating, running or stopped).
    pub your_sandboxes: u64,
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let service = control(&state)?;
    let ours: HashMap<String, u64> = state
        .store
        .count_active_sandboxes_by_worker(caller.org_id)
        .await?
        .into_iter()
        .collect();
    let now = Utc::now();
    let mut by_name: BTreeMap<String, WorkerView> = BTreeMap::new();
    for worker in service.known_workers() {
        let last_heartbeat_at = now
            - chrono::Duration::from_std(worker.heartbeat_age).unwrap_or(chrono::Duration::zero());
        let name = worker.name.to_string();
        let entry = WorkerView {
            your_sandboxes: ours.get(&name).copied().unwrap_or(0),
            worker_id: name,
            status: if worker.live { "live" } else { "lost" }.to_owned(),
            isolation: worker.isolation,
            last_heartbeat_at,
            capacity: WorkerCapacityView {
                sandboxes: worker.capacity_sandboxes,
                cpu_count: worker.capacity_cpus,
                memory_mb: worker.capacity_memory_mb,
            },
        };
        let fresher = by_name
            .get(&entry.worker_id)
            .is_none_or(|known| known.last_heartbeat_at < entry.last_heartbeat_at);
        if fresher {
            by_name.insert(entry.worker_id.clone(), entry);
        }
    }
    Ok(HttpResponse::Ok().json(by_name.into_values().collect::<Vec<_>>()))
}
