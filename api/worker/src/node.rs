//! `WorkerNode`: one whole worker — the sandbox runtime (netns when possible, the loud
//! development runtime otherwise), the sealing proxy, the worker gRPC service with mutual TLS
//! (reads and the value channel), the command runner that executes saga steps sent on the bus,
//! data-plane events on the bus, and heartbeats that let placement find it. `osbd worker` and
//! `osbd up` run one; tests run several in one process with distinct prefixes and pools.
//!
//! It must never start serving when the runtime or the proxy could not be set up (fail
//! closed), and shutdown destroys every sandbox it holds (namespaces, rules, layers).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use osb_bus::Bus;
use osb_placement::{publish_heartbeats, Capacity, WorkerHeartbeat};
use osb_proto::{WorkerId, WorkerName};
use osb_proxy::{AddressPolicy, ChannelSink, ProxyConfig, SealingProxy};
use osb_vm::{Ipv4Pool, Isolation, NetnsConfig, ProxyEndpoints, Runtime};
use tokio::task::JoinHandle;

use super::commands;
use super::events::forward_events;
use super::runtime_choice::{advertised_runtimes, refuse_weak_runtime, RuntimeOptions};
use super::service::{WorkerService, WorkerServiceConfig};
use osb_grpc::{serve_worker, GrpcSecurity, WorkerServerHandle};

/// Operator settings of the proxy (private upstreams, extra trust) — DESIGN.md §8.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// `host → address` overrides, like `curl --resolve`.
    pub resolve_overrides: HashMap<String, IpAddr>,
    /// Extra CA certificates (PEM) trusted for upstreams.
    pub extra_upstream_ca_pems: Vec<Vec<u8>>,
    /// Whether upstreams on loopback / private addresses may be dialled.
    pub allow_loopback: bool,
    pub allow_private: bool,
    /// Whether the system trust store is used for upstreams (default true).
    pub skip_system_roots: bool,
}

/// Everything a worker needs.
#[derive(Debug, Clone)]
pub struct WorkerNodeConfig {
    /// The worker's name: the name in its certificate.
    pub name: WorkerName,
    /// Directory owned by this worker (proxy CA, sandbox layers, checkpoints).
    pub data_dir: PathBuf,
    /// Where the gRPC service listens.
    pub grpc_listen: SocketAddr,
    /// `host:port` announced in heartbeats (default: the bound address).
    pub advertise: Option<String>,
    pub security: GrpcSecurity,
    /// Prefix of the host objects of this worker's sandboxes (distinct per worker on a host).
    pub netns_prefix: String,
    /// Address pool of sandbox links (distinct per worker on a host).
    pub address_pool: Option<Ipv4Pool>,
    pub proxy: ProxyOptions,
    pub capacity: Capacity,
    pub heartbeat_every: Duration,
    /// Development runtime allowed? microVMs too? (ADR 0025)
    pub runtimes: RuntimeOptions,
    /// Crash tests only: die after recording this command's outcome, before publishing it.
    /// `osbd` sets it from its test-only `failpoints` feature; everything else passes `None`.
    pub abort_after_record: Option<commands::AbortAfterRecord>,
}

/// A running worker.
pub struct WorkerNode {
    id: WorkerId,
    name: WorkerName,
    server: Option<WorkerServerHandle>,
    runtime: Arc<dyn Runtime>,
    proxy: Arc<SealingProxy>,
    service: WorkerService,
    tasks: Vec<JoinHandle<()>>,
    prefix: String,
    data_dir: PathBuf,
}

impl std::fmt::Debug for WorkerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerNode")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WorkerNode {
    /// Starts the worker and its heartbeats. Errors are sentences for operators.
    pub async fn start(config: WorkerNodeConfig, bus: Arc<dyn Bus>) -> Result<Self, String> {
        let id = WorkerId::new();
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|error| format!("cannot create {}: {error}", config.data_dir.display()))?;
        // Leftovers of an earlier run of this worker (a crash, a kill -9) go first.
        let sandboxes_dir = config.data_dir.join("sandboxes");
        let _ = osb_vm::netns::reap_worker(&config.netns_prefix, &sandboxes_dir).await;

        let (proxy_sink, proxy_events) = ChannelSink::new(4096);
        let (runtime_sink, forwarder) = forward_events(bus.clone(), id, proxy_events);
        let mut proxy_config = ProxyConfig::new(config.data_dir.join("proxy"));
        proxy_config.explicit_listen = SocketAddr::from(([0, 0, 0, 0], 0));
        proxy_config.transparent_listen = Some(SocketAddr::from(([0, 0, 0, 0], 0)));
        proxy_config.addresses = AddressPolicy {
            allow_loopback: config.proxy.allow_loopback,
            allow_private: config.proxy.allow_private,
        };
        proxy_config.resolve_overrides = config.proxy.resolve_overrides.clone();
        proxy_config.use_system_roots = !config.proxy.skip_system_roots;
        proxy_config.extra_upstream_ca_pems = config.proxy.extra_upstream_ca_pems.clone();
        let proxy = Arc::new(
            SealingProxy::start(proxy_config, Arc::new(proxy_sink))
                .await
                .map_err(|error| format!("the sealing proxy could not start: {error}"))?,
        );
        let transparent = proxy
            .transparent_addr()
            .ok_or("the sealing proxy has no transparent listener")?;
        let endpoints = ProxyEndpoints {
            transparent_port: transparent.port(),
            explicit_port: proxy.explicit_addr().port(),
        };

        let mut runtime_config = NetnsConfig::new(&config.netns_prefix, &sandboxes_dir);
        if let Some(pool) = config.address_pool {
            runtime_config.address_pool = pool;
        }
        if let Some(warm_pool) = config.runtimes.warm_pool {
            runtime_config.warm_pool = warm_pool;
        }
        runtime_config.warm_pool_proxy = Some(endpoints);
        let mut microvm_config = config.runtimes.microvm.clone();
        if let Some(disk_mb) = config.runtimes.sandbox_disk_mb {
            runtime_config.disk_mb = disk_mb;
            if let Some(microvm) = microvm_config.as_mut() {
                microvm.disk_mb = disk_mb;
            }
        }
        refuse_weak_runtime(
            osb_vm::netns::unavailable_reason().as_deref(),
            config.runtimes.allow_development,
        )?;
        let dispatch = osb_vm::select_runtimes(runtime_config, microvm_config, runtime_sink)
            .await
            .map_err(|error| format!("the sandbox runtime could not start: {error}"))?;
        let runtimes = advertised_runtimes(dispatch.isolation(), &dispatch.kinds());
        let runtime: Arc<dyn Runtime> = dispatch;
        let isolation = match runtime.isolation() {
            Isolation::Enforced => "netns",
            Isolation::DevelopmentCooperative => "development",
        };

        let service = WorkerService::new(
            runtime.clone(),
            proxy.clone(),
            WorkerServiceConfig {
                proxy_endpoints: endpoints,
            },
        )
        .map_err(|error| format!("the worker actor system could not start: {error}"))?;
        let holdings = service.holdings();
        // Saga commands arrive on the bus; their outcomes are recorded beside the sandboxes.
        let records = commands::OutcomeRecords::open(&config.data_dir.join("commands"))?;
        let runner = commands::start(
            bus.clone(),
            config.name.clone(),
            service.clone(),
            records,
            config.abort_after_record.clone(),
        );
        let server = serve_worker(config.grpc_listen, &config.security, service.clone())
            .await
            .map_err(|error| format!("the worker gRPC service could not start: {error}"))?;
        let address = config
            .advertise
            .clone()
            .unwrap_or_else(|| server.local_addr().to_string());
        let beat_holdings = holdings.clone();
        let name = config.name.clone();
        let capacity = config.capacity;
        let isolation = isolation.to_owned();
        let beat_runtimes = runtimes.clone();
        let heartbeats = publish_heartbeats(bus, config.heartbeat_every, move |sequence| {
            WorkerHeartbeat {
                worker_id: id,
                name: name.clone(),
                grpc_addr: address.clone(),
                isolation: isolation.clone(),
                runtimes: beat_runtimes.clone(),
                capacity,
                usage: beat_holdings.usage(),
                sequence,
            }
        });
        tracing::info!(worker = %config.name, grpc = %server.local_addr(), runtimes = ?runtimes, "worker started");
        Ok(Self {
            id,
            name: config.name,
            server: Some(server),
            runtime,
            proxy,
            service,
            tasks: vec![heartbeats, forwarder, runner],
            prefix: config.netns_prefix,
            data_dir: sandboxes_dir,
        })
    }

    /// The worker's id (changes on every start).
    pub fn id(&self) -> WorkerId {
        self.id
    }

    /// The worker's name.
    pub fn name(&self) -> &WorkerName {
        &self.name
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(WorkerServerHandle::local_addr)
    }

    /// The runtime (tests inspect it).
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// The worker service (tests reach its actors through it).
    pub fn service(&self) -> &WorkerService {
        &self.service
    }

    /// The proxy (tests read its CA and metrics).
    pub fn proxy(&self) -> &Arc<SealingProxy> {
        &self.proxy
    }

    /// Stops heartbeats at once (the control plane will see the worker as lost), leaving
    /// sandboxes and the gRPC service up — what a network partition looks like.
    pub fn stop_heartbeats(&mut self) {
        if let Some(task) = self.tasks.first() {
            task.abort();
        }
    }

    /// Stops heartbeats, destroys every sandbox this worker holds and stops serving.
    pub async fn shutdown(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // No pooled sandbox may be built after the reap below.
        self.runtime.drain_warm_pool().await;
        self.service.destroy_all().await;
        let _ = osb_vm::netns::reap_worker(&self.prefix, &self.data_dir).await;
        if let Some(server) = self.server.take() {
            let _ = server.shutdown().await;
        }
        tracing::info!(worker = %self.name, "worker stopped");
    }
}
