//! `WorkerLinks`: the control plane's gRPC connections to workers, by worker name (the name in
//! the worker's certificate, which is what sandbox rows record). A link is dialled on first use
//! at the address placement learned from the worker's heartbeats, with mutual TLS that accepts
//! only that worker's certificate, and reused afterwards (tonic multiplexes one HTTP/2
//! connection). A failed call drops the cached link so the next one redials.
//!
//! It must never dial a worker without the security the control plane was started with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use osb_placement::PlacementService;
use osb_proto::WorkerName;
use tonic::transport::Channel;

use osb_grpc::proto::worker_client::WorkerClient;
use osb_grpc::{connect_worker, GrpcSecurity};

/// Connections to workers.
#[derive(Debug)]
pub struct WorkerLinks {
    security: GrpcSecurity,
    placement: Option<PlacementService>,
    /// Worker name → (address dialled, client). A worker that restarts on another address is
    /// redialled.
    clients: Mutex<HashMap<WorkerName, (String, WorkerClient<Channel>)>>,
}

impl WorkerLinks {
    /// Links dialled through `placement`'s view of live workers.
    pub fn new(security: GrpcSecurity, placement: PlacementService) -> Self {
        Self {
            security,
            placement: Some(placement),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Links to fixed, already connected workers only (tests of single pieces).
    pub fn fixed(security: GrpcSecurity) -> Self {
        Self {
            security,
            placement: None,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Registers (or replaces) a connected worker (fixed links: no address to follow).
    pub fn insert(&self, worker: &WorkerName, client: WorkerClient<Channel>) {
        self.lock().insert(worker.clone(), (String::new(), client));
    }

    /// Forgets a worker's connection (after a transport failure, or when it is lost).
    pub fn forget(&self, worker: &WorkerName) {
        self.lock().remove(worker);
    }

    /// The client for `worker`, dialling it if needed (or again, when its heartbeats name a
    /// new address). The error is a sentence for users.
    pub async fn client(&self, worker: &WorkerName) -> Result<WorkerClient<Channel>, String> {
        let Some(placement) = self.placement.as_ref() else {
            return self
                .lock()
                .get(worker)
                .map(|(_, client)| client.clone())
                .ok_or_else(|| format!("no connection to worker {worker}"));
        };
        let (_, address) = placement.live_worker_named(worker).ok_or_else(|| {
            format!(
                "worker {worker} is not live (no recent heartbeat); its sandboxes are unreachable"
            )
        })?;
        if let Some((dialled, client)) = self.lock().get(worker) {
            if *dialled == address {
                return Ok(client.clone());
            }
        }
        let connection = connect_worker(&address, &self.security, Some(worker.as_str()))
            .await
            .map_err(|error| format!("cannot reach worker {worker} at {address}: {error}"))?;
        self.lock()
            .insert(worker.clone(), (address, connection.client.clone()));
        Ok(connection.client)
    }

    /// Whether placement currently sees `worker` as live (always true for fixed links).
    pub fn is_live(&self, worker: &WorkerName) -> bool {
        match &self.placement {
            Some(placement) => placement.live_worker_named(worker).is_some(),
            None => self.lock().contains_key(worker),
        }
    }

    /// The placement service, when links follow it.
    pub fn placement(&self) -> Option<&PlacementService> {
        self.placement.as_ref()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<WorkerName, (String, WorkerClient<Channel>)>> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Shared links.
pub type SharedLinks = Arc<WorkerLinks>;
