//! Starting and steering the data plane: loads the CA, builds the upstream connector, binds the
//! listeners and returns a [`SealingProxy`] handle through which the control shell registers
//! sessions, reads the CA certificate and renders metrics. Dropping the handle stops accepting.
//! It must never start with a missing or corrupt CA (fail closed).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ca::{CaError, CertificateAuthority};
use crate::cert_cache::LeafCache;
use crate::config::ProxyConfig;
use crate::events::EventSink;
use crate::limits::Limiter;
use crate::listener::{run_explicit, run_transparent};
use crate::metrics::ProxyMetrics;
use crate::original_dst::{KernelOriginalDestination, OriginalDestination};
use crate::policy::SealingPolicy;
use crate::pool::UpstreamPools;
use crate::registry::{RegistryError, SessionRegistry};
use crate::session::{Session, SessionSpec};
use crate::shared::Shared;
use crate::upstream::{root_store, UpstreamConnector, UpstreamTlsError};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy certificate authority unusable: {0}")]
    Ca(#[from] CaError),
    #[error("upstream tls trust unusable: {0}")]
    UpstreamTls(#[from] UpstreamTlsError),
    #[error("cannot listen on {address}: {source} (is another process using the port?)")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// A running proxy.
#[derive(Debug)]
pub struct SealingProxy {
    shared: Arc<Shared>,
    explicit_addr: SocketAddr,
    transparent_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    runtime: tokio::runtime::Handle,
}

async fn bind(address: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ProxyError::Bind { address, source })
}

/// How often idle upstream connections and those of departed sandboxes are dropped.
const POOL_PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Drops expired idle upstream connections, and every connection of a sandbox whose session is
/// gone, until shutdown.
async fn prune_pools(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(POOL_PRUNE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = ticks.tick() => {
                let live = shared.registry.sandbox_ids();
                shared.pools.prune(std::time::Instant::now(), |sandbox_id| {
                    live.binary_search(&sandbox_id).is_ok()
                });
            }
        }
    }
}

impl SealingProxy {
    /// Starts with the kernel's `SO_ORIGINAL_DST` for transparent mode. Call inside a tokio runtime.
    pub async fn start(config: ProxyConfig, sink: Arc<dyn EventSink>) -> Result<Self, ProxyError> {
        Self::start_with(config, sink, Arc::new(KernelOriginalDestination)).await
    }

    /// Starts with an injected original-destination source (tests).
    pub async fn start_with(
        config: ProxyConfig,
        sink: Arc<dyn EventSink>,
        original: Arc<dyn OriginalDestination>,
    ) -> Result<Self, ProxyError> {
        let metrics = Arc::new(ProxyMetrics::default());
        let ca = Arc::new(CertificateAuthority::load_or_create(
            &config.data_dir,
            config.leaf_lifetime,
        )?);
        let leaves = Arc::new(LeafCache::with_bounds(
            ca,
            config.leaf_cache_ttl,
            config.leaf_cache_bounds,
            Arc::clone(&metrics),
        ));
        let policy = SealingPolicy {
            addresses: config.addresses,
        };
        let roots = root_store(config.use_system_roots, &config.extra_upstream_ca_pems)?;
        let connector = UpstreamConnector::new(
            roots,
            config.resolve_overrides.clone(),
            policy,
            config.connect_timeout,
        )?;
        let pools = Arc::new(UpstreamPools::new(
            config.upstream_idle_timeout,
            config.upstream_max_idle_per_host,
        ));
        let shared = Arc::new(Shared {
            registry: Arc::new(SessionRegistry::new()),
            policy,
            leaves,
            connector,
            pools,
            metrics,
            sink,
            limiter: Limiter::new(config.limits.clone()),
            max_buffered_body: config.max_buffered_body,
            scrub_flush_after: config.scrub_flush_after,
            oversized_body: config.oversized_body,
            express: config.express,
            lanes: crate::lanes::Lanes::start(config.lanes).map_err(|source| ProxyError::Bind {
                address: config.explicit_listen,
                source,
            })?,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let explicit = bind(config.explicit_listen).await?;
        let explicit_addr = explicit.local_addr().map_err(|source| ProxyError::Bind {
            address: config.explicit_listen,
            source,
        })?;
        let transparent = match config.transparent_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let transparent_addr = match &transparent {
            Some(listener) => Some(listener.local_addr().map_err(|source| ProxyError::Bind {
                address: explicit_addr,
                source,
            })?),
            None => None,
        };
        tokio::spawn(run_explicit(
            explicit,
            Arc::clone(&shared),
            shutdown_rx.clone(),
        ));
        tokio::spawn(prune_pools(Arc::clone(&shared), shutdown_rx.clone()));
        if let Some(listener) = transparent {
            tokio::spawn(run_transparent(
                listener,
                Arc::clone(&shared),
                original,
                shutdown_rx,
            ));
        }
        tracing::info!(%explicit_addr, ?transparent_addr, "sealing proxy listening");
        Ok(Self {
            shared,
            explicit_addr,
            transparent_addr,
            shutdown,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Address of the explicit (`HTTPS_PROXY`) listener.
    pub fn explicit_addr(&self) -> SocketAddr {
        self.explicit_addr
    }

    /// Address of the transparent listener, if enabled.
    pub fn transparent_addr(&self) -> Option<SocketAddr> {
        self.transparent_addr
    }

    /// The session registry (lock-free reads; writes swap snapshots).
    pub fn registry(&self) -> &Arc<SessionRegistry> {
        &self.shared.registry
    }

    /// Registers a session and pre-mints certificates for its exact allowlist hosts.
    pub fn register_session(&self, spec: SessionSpec) -> Result<Arc<Session>, RegistryError> {
        let session = self.shared.registry.register(spec)?;
        for host in session.exact_hosts() {
            let leaves = Arc::clone(&self.shared.leaves);
            self.runtime.spawn(async move {
                if let Err(error) = leaves.server_config(&host).await {
                    tracing::warn!(host = %host, %error, "pre-minting leaf certificate failed");
                }
            });
        }
        Ok(session)
    }

    /// The CA certificate (PEM) sandboxes must trust.
    pub fn ca_cert_pem(&self) -> &str {
        self.shared.leaves.ca().cert_pem()
    }

    /// Where the CA certificate lives on disk (`<data_dir>/proxy-ca.pem`).
    pub fn ca_cert_path(&self) -> &Path {
        self.shared.leaves.ca().cert_path()
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<ProxyMetrics> {
        &self.shared.metrics
    }

    /// Prometheus text of the counters.
    pub fn render_metrics(&self) -> String {
        self.shared.metrics.render_prometheus()
    }

    /// The upstream connection pools (tests check per-sandbox reuse).
    pub fn upstream_pools(&self) -> &Arc<UpstreamPools> {
        &self.shared.pools
    }

    /// Open client connections (both listeners).
    pub fn open_connections(&self) -> usize {
        self.shared.limiter.open_connections()
    }

    /// The leaf cache (for benchmarks and the pre-mint check).
    pub fn leaf_cache(&self) -> &Arc<LeafCache> {
        &self.shared.leaves
    }

    /// Stops accepting new connections; open ones finish their current exchanges.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for SealingProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}
