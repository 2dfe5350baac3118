//! `ControlNode`: one control-plane process — placement from heartbeats, the sandbox sagas
//! (`SandboxService`, resuming unfinished sagas at start and whenever a crashed owner's lease
//! runs out), lost-worker reporting, and the REST gateway. `osbd control` and `osbd up` run
//! one; several may share one database and bus (sagas are claimed row by row).
//!
//! It must never serve sandbox routes without the control plane behind them, and never act on
//! a saga another live control plane holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use osb_bus::Bus;
use osb_placement::{PlacementService, WorkerChange};
use osb_proto::WorkerName;
use osb_saga::ExecutorOptions;
use osb_store::SandboxStatus;
use osb_vault::Vault;
use serde_json::json;
use tokio::task::JoinHandle;

use osb_control::{
    sandbox_event_record, CommandTimings, ControlPlane, GrpcAllowlistPusher, GrpcSecretPusher,
    OutboxRelay, SandboxService, WorkerLinks,
};
use osb_gateway::{configure, AppState};
use osb_grpc::GrpcSecurity;

/// Settings of a control plane.
#[derive(Debug, Clone)]
pub struct ControlNodeConfig {
    /// Where the REST gateway listens.
    pub listen: SocketAddr,
    /// This process's control-plane TLS material (or the loopback plaintext mode).
    pub security: GrpcSecurity,
    /// A worker silent this long is lost.
    pub lost_after: Duration,
    /// How often unfinished sagas of crashed owners are looked for.
    pub resume_every: Duration,
    /// The saga claim lease.
    pub lease: Duration,
    /// Unique name of this control-plane instance (saga owner).
    pub owner: String,
    /// Crash failpoint (tests only): abort the process right after this create step ran. Only
    /// a build with the `failpoints` feature sets it from the environment.
    pub crash_after: Option<String>,
    /// How often sandboxes past their `timeoutSec` are looked for and destroyed.
    pub expire_every: Duration,
    /// How saga steps wait for workers' answers to their commands (and re-send).
    pub commands: CommandTimings,
}

/// Overrides the saga claim lease in seconds (default 30): how long a crashed control plane's
/// sagas wait before another one takes them over.
pub const SAGA_LEASE_ENV: &str = "OPENSANDBOX_SAGA_LEASE_SECS";

impl ControlNodeConfig {
    /// Defaults for one control plane listening on `listen`.
    pub fn new(listen: SocketAddr, security: GrpcSecurity) -> Self {
        let lease = std::env::var(SAGA_LEASE_ENV)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .filter(|seconds| (1..=3600).contains(seconds))
            .unwrap_or(30);
        Self {
            listen,
            security,
            lost_after: Duration::from_secs(6),
            resume_every: Duration::from_secs(lease.min(15)),
            lease: Duration::from_secs(lease),
            owner: format!("control-{}", osb_proto::SagaId::new()),
            crash_after: None,
            expire_every: Duration::from_secs(5),
            commands: CommandTimings::default(),
        }
    }
}

/// A running control plane.
pub struct ControlNode {
    service: Arc<SandboxService>,
    state: AppState,
    server: ServerHandle,
    http_addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ControlNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlNode")
            .field("http", &self.http_addrs)
            .finish_non_exhaustive()
    }
}

impl ControlNode {
    /// Starts placement, the saga service, the resume loop and the gateway.
    pub async fn start(
        config: ControlNodeConfig,
        vault: Vault,
        bus: Arc<dyn Bus>,
    ) -> Result<Self, String> {
        let (placement, changes) =
            PlacementService::start(bus.clone(), config.lost_after, Duration::from_millis(500))
                .await
                .map_err(|error| format!("placement could not subscribe to heartbeats: {error}"))?;
        let links = Arc::new(WorkerLinks::new(config.security.clone(), placement.clone()));
        let limiter = osb_gateway::RateLimiter::from_setting(
            std::env::var(osb_gateway::RATE_LIMIT_ENV).ok().as_deref(),
        )?;
        let http_workers = crate::http_workers::from_env(crate::http_workers::Share::Half)?;
        let listings = osb_gateway::ListingBounds::from_setting(
            std::env::var(osb_gateway::LISTING_TTL_ENV).ok().as_deref(),
        )?;
        let state = AppState::new(vault, bus.clone())
            .with_rate_limiter(Arc::new(limiter))
            .with_listing_cache(Arc::new(osb_gateway::ListingCache::new(listings)));
        let secret_vault = osb_vault::spawn_secret_vault(
            state.vault.clone(),
            Arc::new(GrpcSecretPusher::new(links.clone())),
        )
        .map_err(|error| format!("the secret vault actor could not start: {error}"))?;
        let projects = osb_project::spawn_project_actor(
            state.store.clone(),
            Arc::new(GrpcAllowlistPusher::new(links.clone())),
        )
        .map_err(|error| format!("the project actor could not start: {error}"))?;
        let outbox = OutboxRelay::start(state.store.clone(), bus.clone());
        let plane = ControlPlane {
            store: state.store.clone(),
            vault: state.vault.clone(),
            links,
            bus,
            secret_vault,
            projects,
            outbox,
            commands: config.commands,
        };
        let options = ExecutorOptions {
            lease: chrono::Duration::from_std(config.lease)
                .map_err(|_| "the saga lease is too long".to_owned())?,
            ..ExecutorOptions::default()
        };
        let service = match &config.crash_after {
            Some(step) => SandboxService::with_crash_after(plane, &config.owner, options, step),
            None => SandboxService::new(plane, &config.owner, options),
        }
        .map(Arc::new)
        .map_err(|error| format!("the sagas could not be defined: {error}"))?;
        let state = state.with_control(service.clone());

        let resume = tokio::spawn(resume_loop(
            service.clone(),
            config.lost_after,
            config.resume_every,
        ));
        let lost = tokio::spawn(report_lost_workers(service.clone(), placement, changes));
        let expiry = tokio::spawn(expire_loop(service.clone(), config.expire_every));

        let data = web::Data::new(state.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).configure(configure))
                .workers(http_workers)
                .disable_signals()
                .shutdown_timeout(5)
                .bind(config.listen)
                .map_err(|error| {
                    format!(
                        "cannot listen on {}: {error}; choose another address with --listen",
                        config.listen
                    )
                })?;
        let http_addrs = server.addrs();
        let server = server.run();
        let handle = server.handle();
        let http = tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "the gateway stopped");
            }
        });
        Ok(Self {
            service,
            state,
            server: handle,
            http_addrs,
            tasks: vec![resume, lost, expiry, http],
        })
    }

    /// The addresses the gateway is bound to.
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// The sandbox service.
    pub fn service(&self) -> &Arc<SandboxService> {
        &self.service
    }

    /// The gateway state (store, vault, bus).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Destroys every sandbox still running on `worker` (orderly shutdown of `osbd up`).
    pub async fn destroy_sandboxes_on(&self, worker: &WorkerName) -> usize {
        let store = &self.state.store;
        let Ok(sandboxes) = store.list_active_sandboxes_on_worker(worker).await else {
            return 0;
        };
        let mut destroyed = 0;
        for sandbox in sandboxes {
            match self.service.destroy(sandbox.org_id, sandbox.id).await {
                Ok(_) => destroyed += 1,
                Err(error) => {
                    tracing::warn!(sandbox = %sandbox.id, %error, "sandbox not destroyed at shutdown")
                }
            }
        }
        destroyed
    }

    /// Stops the gateway and the loops.
    pub async fn shutdown(self) {
        self.server.stop(true).await;
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Resumes unfinished sagas once workers have had time to heartbeat, then periodically (a
/// crashed control plane's sagas become claimable when its lease runs out).
async fn resume_loop(service: Arc<SandboxService>, settle: Duration, every: Duration) {
    tokio::time::sleep(settle.min(Duration::from_secs(3))).await;
    loop {
        match service.resume_unfinished().await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "unfinished sagas driven to an end"),
            Err(error) => tracing::warn!(%error, "unfinished sagas could not be listed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Destroys sandboxes whose `timeoutSec` ran out (every control plane runs it; destroy is
/// idempotent, so two control planes expiring the same sandbox is harmless).
async fn expire_loop(service: Arc<SandboxService>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let count = service.expire_timed_out().await;
        if count > 0 {
            tracing::info!(count, "sandboxes past their timeout destroyed");
        }
    }
}

/// Reports every sandbox of a lost worker: an event per sandbox, and the row marked failed with
/// the reason (its processes are unreachable; the worker reaps them when it starts again).
async fn report_lost_workers(
    service: Arc<SandboxService>,
    placement: PlacementService,
    mut changes: tokio::sync::mpsc::Receiver<WorkerChange>,
) {
    while let Some(change) = changes.recv().await {
        let WorkerChange::Lost(id) = change else {
            continue;
        };
        let Some(name) = placement.name_of(id) else {
            continue;
        };
        let plane = service.plane();
        plane.links.forget(&name);
        // A worker that restarted heartbeats under a new id with the same name: only the
        // sandboxes it no longer holds are gone.
        let held = match placement.live_worker_named(&name) {
            Some((live, _)) if live != id => held_by(plane, &name).await,
            _ => None,
        };
        tracing::warn!(worker = %name, restarted = held.is_some(), "worker lost: no heartbeat");
        let Ok(sandboxes) = plane.store.list_active_sandboxes_on_worker(&name).await else {
            continue;
        };
        for sandbox in sandboxes {
            if sandbox.status == SandboxStatus::Creating {
                // Its create saga fails on its own and unwinds.
                continue;
            }
            if held.as_ref().is_some_and(|held| held.contains(&sandbox.id)) {
                continue;
            }
            let reason = if held.is_some() {
                format!("worker {name} restarted; the sandbox did not survive it")
            } else {
                format!("worker {name} was lost (no heartbeat); the sandbox is unreachable")
            };
            // The failure and its `worker_lost` event commit together (the outbox relay
            // publishes it).
            let event = match sandbox_event_record(
                sandbox.org_id,
                sandbox.id,
                "worker_lost",
                &id.to_string(),
                json!({ "status": "failed", "workerID": name, "reason": reason }),
            ) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(%error, "worker_lost event not encoded");
                    continue;
                }
            };
            let recorded = plane
                .store
                .transition_sandbox_announcing(
                    sandbox.id,
                    sandbox.generation,
                    SandboxStatus::Failed,
                    (None, Some(&reason)),
                    &event,
                )
                .await;
            match recorded {
                Ok(_) => plane.outbox.poke(),
                Err(error) => {
                    tracing::warn!(sandbox = %sandbox.id, %error, "lost sandbox not marked failed")
                }
            }
        }
    }
}

/// The sandboxes a live worker holds now, or `None` when it cannot say.
async fn held_by(
    plane: &ControlPlane,
    worker: &WorkerName,
) -> Option<std::collections::HashSet<osb_proto::SandboxId>> {
    let mut client = plane.links.client(worker).await.ok()?;
    let held = client
        .list_sandboxes(osb_grpc::proto::ListSandboxesRequest {})
        .await
        .ok()?
        .into_inner();
    Some(
        held.sandbox_ids
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect(),
    )
}
