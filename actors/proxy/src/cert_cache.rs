//! Leaf certificate cache: one TLS server configuration per host, minted exactly once even when
//! many connections miss at the same time (single-flight through a per-host `OnceCell`), kept for a
//! TTL below the leaf lifetime and then minted afresh. It must never mint with the CA key as the
//! leaf key (see `ca`), and never block readers while minting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::server::ResolvesServerCert;
use rustls::ServerConfig;
use tokio::sync::OnceCell;

use crate::ca::{CaError, CertificateAuthority};
use crate::metrics::ProxyMetrics;

/// ALPN protocols the proxy offers to sandboxes, in preference order.
pub const DOWNSTREAM_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

#[derive(Debug)]
struct Entry {
    created: Instant,
    cell: Arc<OnceCell<Arc<ServerConfig>>>,
}

/// Host → server configuration cache.
#[derive(Debug)]
pub struct LeafCache {
    ca: Arc<CertificateAuthority>,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    metrics: Arc<ProxyMetrics>,
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

impl LeafCache {
    /// `ttl` must be below the CA's leaf lifetime; it is clamped to half of it otherwise.
    pub fn new(ca: Arc<CertificateAuthority>, ttl: Duration, metrics: Arc<ProxyMetrics>) -> Self {
        let ttl = if ttl >= ca.leaf_lifetime() {
            ca.leaf_lifetime() / 2
        } else {
            ttl
        };
        Self {
            ca,
            ttl,
            entries: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The CA behind the cache.
    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    /// The server configuration for `host` (normalised: lowercase, IPv6 without brackets).
    pub async fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let cell = self.cell_for(host, Instant::now());
        if let Some(config) = cell.get() {
            self.metrics.cert_cache_hit();
            return Ok(Arc::clone(config));
        }
        self.metrics.cert_cache_miss();
        let config = cell
            .get_or_try_init(|| async {
                let config = self.mint(host)?;
                self.metrics.cert_minted();
                tracing::debug!(host, "leaf certificate minted");
                Ok::<_, CaError>(config)
            })
            .await?;
        Ok(Arc::clone(config))
    }

    /// The cached configuration if present and fresh (no minting): the hot path benchmarked.
    pub fn cached(&self, host: &str) -> Option<Arc<ServerConfig>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(host)?;
        if entry.created.elapsed() >= self.ttl {
            return None;
        }
        entry.cell.get().cloned()
    }

    fn cell_for(&self, host: &str, now: Instant) -> Arc<OnceCell<Arc<ServerConfig>>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(host) {
            Some(entry) if now.duration_since(entry.created) < self.ttl => Arc::clone(&entry.cell),
            _ => {
                let cell = Arc::new(OnceCell::new());
                entries.insert(
                    host.to_owned(),
                    Entry {
                        created: now,
                        cell: Arc::clone(&cell),
                    },
                );
                cell
            }
        }
    }

    fn mint(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let certified = self.ca.mint_leaf(host)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FixedCert(certified)));
        config.alpn_protocols = DOWNSTREAM_ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &std::path::Path) -> Arc<LeafCache> {
        let ca =
            Arc::new(CertificateAuthority::load_or_create(dir, Duration::from_secs(3600)).unwrap());
        Arc::new(LeafCache::new(
            ca,
            Duration::from_secs(600),
            Arc::new(ProxyMetrics::default()),
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exactly_one_mint_under_64_concurrent_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path());
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    cache.server_config("burst.example.test").await.unwrap()
                })
            })
            .collect();
        let mut configs = Vec::new();
        for task in tasks {
            configs.push(task.await.unwrap());
        }
        assert_eq!(cache.metrics.cert_mints(), 1);
        assert!(configs
            .iter()
            .all(|config| Arc::ptr_eq(config, &configs[0])));
        assert!(cache.cached("burst.example.test").is_some());
    }

    #[tokio::test]
    async fn expired_entries_are_minted_again() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Arc::new(
            CertificateAuthority::load_or_create(dir.path(), Duration::from_secs(3600)).unwrap(),
        );
        let metrics = Arc::new(ProxyMetrics::default());
        let cache = LeafCache::new(ca, Duration::ZERO, Arc::clone(&metrics));
        cache.server_config("a.test").await.unwrap();
        cache.server_config("a.test").await.unwrap();
        assert_eq!(metrics.cert_mints(), 2);
        assert!(cache.cached("a.test").is_none());
    }
}
