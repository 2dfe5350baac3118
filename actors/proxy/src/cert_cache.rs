//! Leaf certificate cache: one TLS server configuration per host, minted exactly once even when
//! many connections miss at the same time (single-flight through a per-host `OnceCell`), kept for a
//! TTL below the leaf lifetime, and bounded by count and by bytes — the least recently used entry
//! goes first (issue 11 item 5). Minting (key generation and signing) runs on the blocking pool,
//! never on a data-plane lane. Callers mint only for hosts the policy admitted (see `listener`).
//! It must never mint with the CA key as the leaf key (see `ca`), and never block readers while
//! minting.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustls::server::ResolvesServerCert;
use rustls::ServerConfig;
use tokio::sync::OnceCell;

use crate::ca::{CaError, CertificateAuthority};
use crate::metrics::ProxyMetrics;

/// ALPN protocols the proxy offers to sandboxes, in preference order.
pub const DOWNSTREAM_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Bytes an entry is charged besides its certificate chain (key, configuration, map entry).
const ENTRY_OVERHEAD: usize = 2048;

/// How many entries and bytes the cache may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheBounds {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for CacheBounds {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Entry {
    created: Instant,
    cell: Arc<Minted>,
    /// Position in the recency order.
    used: u64,
    /// Bytes charged (0 until minted).
    bytes: usize,
}

#[derive(Debug, Default)]
struct Entries {
    by_host: HashMap<String, Entry>,
    /// Recency tick → host, oldest first.
    recency: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
}

impl Entries {
    fn touch(&mut self, host: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.by_host.get_mut(host) {
            self.recency.remove(&entry.used);
            entry.used = tick;
            self.recency.insert(tick, host.to_owned());
        }
    }

    fn remove(&mut self, host: &str) {
        if let Some(entry) = self.by_host.remove(host) {
            self.recency.remove(&entry.used);
            self.bytes = self.bytes.saturating_sub(entry.bytes);
        }
    }

    /// Evicts least recently used entries (never `keep`) until within bounds; how many went.
    fn evict(&mut self, bounds: CacheBounds, keep: &str) -> u64 {
        let mut evicted = 0;
        while self.by_host.len() > bounds.max_entries || self.bytes > bounds.max_bytes {
            let oldest = self
                .recency
                .values()
                .find(|host| host.as_str() != keep)
                .cloned();
            let Some(oldest) = oldest else { break };
            self.remove(&oldest);
            evicted += 1;
        }
        evicted
    }
}

/// A host's configuration once minted, with its chain's size in bytes.
type Minted = OnceCell<(Arc<ServerConfig>, usize)>;

/// Host → server configuration cache.
#[derive(Debug)]
pub struct LeafCache {
    ca: Arc<CertificateAuthority>,
    ttl: Duration,
    bounds: CacheBounds,
    entries: Mutex<Entries>,
    metrics: Arc<ProxyMetrics>,
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

/// Resolves no certificate: rustls then ends the handshake with an `access_denied` alert.
#[derive(Debug)]
struct NoCert;

impl ResolvesServerCert for NoCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

/// A server configuration that refuses every handshake with `access_denied` (for sources and
/// hosts the policy refused: no certificate is minted for them).
pub fn refusing_config() -> Arc<ServerConfig> {
    static REFUSING: std::sync::OnceLock<Option<Arc<ServerConfig>>> = std::sync::OnceLock::new();
    let built = REFUSING.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert));
        Some(Arc::new(config))
    });
    match built {
        Some(config) => Arc::clone(config),
        // Unreachable with the ring provider; a default-built config refuses just the same.
        None => Arc::new(
            ServerConfig::builder()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(NoCert)),
        ),
    }
}

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
        Self::with_bounds(ca, ttl, CacheBounds::default(), metrics)
    }

    /// A cache holding at most `bounds` (each at least one entry).
    pub fn with_bounds(
        ca: Arc<CertificateAuthority>,
        ttl: Duration,
        bounds: CacheBounds,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        let ttl = if ttl >= ca.leaf_lifetime() {
            ca.leaf_lifetime() / 2
        } else {
            ttl
        };
        Self {
            ca,
            ttl,
            bounds: CacheBounds {
                max_entries: bounds.max_entries.max(1),
                max_bytes: bounds.max_bytes.max(ENTRY_OVERHEAD),
            },
            entries: Mutex::new(Entries::default()),
            metrics,
        }
    }

    /// The CA behind the cache.
    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server configuration for `host` (normalised: lowercase, IPv6 without brackets),
    /// minted on the blocking pool when missing.
    pub async fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let cell = self.cell_for(host, Instant::now());
        if let Some((config, _)) = cell.get() {
            self.metrics.cert_cache_hit();
            return Ok(Arc::clone(config));
        }
        self.metrics.cert_cache_miss();
        let config = cell
            .get_or_try_init(|| async {
                let ca = Arc::clone(&self.ca);
                let owned = host.to_owned();
                let minted = tokio::task::spawn_blocking(move || mint(&ca, &owned))
                    .await
                    .map_err(|_| CaError::MintInterrupted)??;
                self.metrics.cert_minted();
                tracing::debug!(host, "leaf certificate minted");
                Ok::<_, CaError>(minted)
            })
            .await?;
        let (config, chain_bytes) = (Arc::clone(&config.0), config.1);
        self.charge(host, &cell, chain_bytes);
        Ok(config)
    }

    /// Records the size of a freshly minted entry and evicts to stay within the bounds.
    fn charge(&self, host: &str, cell: &Arc<Minted>, chain_bytes: usize) {
        let mut entries = self.lock();
        let Some(entry) = entries.by_host.get_mut(host) else {
            return;
        };
        if !Arc::ptr_eq(&entry.cell, cell) || entry.bytes != 0 {
            return;
        }
        entry.bytes = chain_bytes + ENTRY_OVERHEAD;
        entries.bytes += chain_bytes + ENTRY_OVERHEAD;
        let evicted = entries.evict(self.bounds, host);
        drop(entries);
        for _ in 0..evicted {
            self.metrics.cert_evicted();
        }
    }

    /// The cached configuration if present and fresh (no minting): the hot path benchmarked.
    pub fn cached(&self, host: &str) -> Option<Arc<ServerConfig>> {
        let mut entries = self.lock();
        let entry = entries.by_host.get(host)?;
        if entry.created.elapsed() >= self.ttl {
            return None;
        }
        let config = entry.cell.get().map(|(config, _)| Arc::clone(config))?;
        entries.touch(host);
        Some(config)
    }

    /// Number of cached hosts.
    pub fn len(&self) -> usize {
        self.lock().by_host.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cell_for(&self, host: &str, now: Instant) -> Arc<Minted> {
        let mut entries = self.lock();
        let fresh = entries
            .by_host
            .get(host)
            .filter(|entry| now.duration_since(entry.created) < self.ttl)
            .map(|entry| Arc::clone(&entry.cell));
        if let Some(cell) = fresh {
            entries.touch(host);
            return cell;
        }
        entries.remove(host);
        let cell = Arc::new(OnceCell::new());
        entries.tick += 1;
        let tick = entries.tick;
        entries.by_host.insert(
            host.to_owned(),
            Entry {
                created: now,
                cell: Arc::clone(&cell),
                used: tick,
                bytes: 0,
            },
        );
        entries.recency.insert(tick, host.to_owned());
        let evicted = entries.evict(self.bounds, host);
        drop(entries);
        for _ in 0..evicted {
            self.metrics.cert_evicted();
        }
        cell
    }
}

/// Mints a leaf and its server configuration; also returns the chain's size in bytes.
fn mint(ca: &CertificateAuthority, host: &str) -> Result<(Arc<ServerConfig>, usize), CaError> {
    let certified = ca.mint_leaf(host)?;
    let chain_bytes = certified.cert.iter().map(|cert| cert.len()).sum();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(certified)));
    config.alpn_protocols = DOWNSTREAM_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok((Arc::new(config), chain_bytes))
}

#[cfg(test)]
mod tests;
