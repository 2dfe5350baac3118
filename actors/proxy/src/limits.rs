//! The data plane's bounds (DESIGN §6 rule 9, ADR 0110): how many connections a source address
//! and the whole worker may hold, how many bytes one sandbox may have buffered whole, and how fast
//! one source may make the proxy mint certificates. Each bound is a setting of [`Limits`] with a
//! default, is checked before the work it protects, and is released by a guard's `Drop`, so an
//! early return or a dropped task can never leak quota. Refusals are counted and explained by
//! the callers. It must never hold a lock across an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::refusal::Refusal;

/// Every bound of the data plane. Defaults are in [`Limits::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open client connections of the whole worker (both listeners).
    pub max_connections: usize,
    /// Open client connections of one source address (one sandbox).
    pub max_connections_per_sandbox: usize,
    /// Concurrent HTTP/2 streams on one client connection (HTTP/1.1 is one at a time).
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before they were served, before the connection is
    /// closed (rapid reset, CVE-2023-44487).
    pub max_pending_resets: usize,
    /// Largest request head (HTTP/2: header list, which also bounds CONTINUATION floods).
    pub max_header_bytes: u32,
    /// Bytes of whole bodies (requests and responses buffered to fix lengths) one sandbox may
    /// hold at once.
    pub max_buffered_bytes_per_sandbox: usize,
    /// Leaf certificates one source may make the proxy mint per second, and as a burst.
    pub mints_per_second: u32,
    pub mint_burst: u32,
    /// Pre-TLS peek, client hello and TLS handshake with the sandbox.
    pub handshake_timeout: Duration,
    /// A request head (and an idle keep-alive connection waiting for the next one).
    pub head_timeout: Duration,
    /// Silence on a body being relayed (request or response) before it is aborted.
    pub body_idle_timeout: Duration,
    /// Silence on an HTTP/2 client connection before it is closed.
    pub http2_idle_timeout: Duration,
    /// Silence in both directions of a WebSocket before it is closed.
    pub websocket_idle_timeout: Duration,
    /// After the proxy closes its side of a client connection, how many bytes the client may
    /// still send (read and discarded) before the socket is closed anyway (ADR 0114).
    pub linger_bytes: usize,
    /// … and for how long at most.
    pub linger_time: Duration,
}

/// Whole bodies up to this size are not charged to a sandbox's buffer budget.
pub const SMALL_BODY: usize = 64 * 1024;

/// Default for [`Limits::max_connections_per_sandbox`].
pub const DEFAULT_MAX_CONNECTIONS_PER_SANDBOX: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 16_384,
            max_connections_per_sandbox: DEFAULT_MAX_CONNECTIONS_PER_SANDBOX,
            max_concurrent_streams: 100,
            max_pending_resets: 20,
            max_header_bytes: 64 * 1024,
            max_buffered_bytes_per_sandbox: 64 * 1024 * 1024,
            mints_per_second: 5,
            mint_burst: 20,
            handshake_timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            http2_idle_timeout: Duration::from_secs(300),
            websocket_idle_timeout: Duration::from_secs(600),
            linger_bytes: 1024 * 1024,
            linger_time: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Default)]
struct SourceState {
    connections: usize,
    buffered: usize,
    mint_tokens: f64,
    mint_refilled: Option<Instant>,
}

impl SourceState {
    fn is_idle(&self) -> bool {
        self.connections == 0 && self.buffered == 0
    }
}

/// The counters behind [`Limits`], shared by every connection of one proxy.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    connections: AtomicUsize,
    sources: Mutex<HashMap<IpAddr, SourceState>>,
}

impl Limiter {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            connections: AtomicUsize::new(0),
            sources: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How a closing client socket lingers.
    pub fn linger_bounds(&self) -> crate::linger::LingerBounds {
        crate::linger::LingerBounds {
            bytes: self.limits.linger_bytes,
            time: self.limits.linger_time,
        }
    }

    fn sources(&self) -> MutexGuard<'_, HashMap<IpAddr, SourceState>> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one more client connection from `source`, or says which cap it hit.
    pub fn open_connection(self: &Arc<Self>, source: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let total = self.connections.fetch_add(1, Ordering::AcqRel);
        if total >= self.limits.max_connections {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::proxy_overloaded(&format!(
                "the worker already serves {} connections (its limit)",
                self.limits.max_connections
            )));
        }
        let mut sources = self.sources();
        let state = sources.entry(source).or_default();
        if state.connections >= self.limits.max_connections_per_sandbox {
            drop(sources);
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::rate_limited(&format!(
                "this sandbox already has {} open connections through the proxy (its limit): close some or reuse them",
                self.limits.max_connections_per_sandbox
            )));
        }
        state.connections += 1;
        Ok(ConnectionPermit {
            limiter: Arc::clone(self),
            source,
        })
    }

    /// Reserves `bytes` of whole-body buffer for `source`, or `None` when its budget is spent.
    /// Bodies up to [`SMALL_BODY`] are not charged (no lock on the hot path): they are bounded
    /// by the connection cap instead (256 connections × 64 KiB = 16 MiB per sandbox).
    pub fn reserve_buffer(self: &Arc<Self>, source: IpAddr, bytes: usize) -> Option<BufferPermit> {
        if bytes <= SMALL_BODY {
            return Some(BufferPermit {
                limiter: None,
                source,
                bytes: 0,
            });
        }
        let mut sources = self.sources();
        let state = sources.entry(source).or_default();
        if state.buffered + bytes > self.limits.max_buffered_bytes_per_sandbox {
            return None;
        }
        state.buffered += bytes;
        Some(BufferPermit {
            limiter: Some(Arc::clone(self)),
            source,
            bytes,
        })
    }

    /// Takes one mint from `source`'s bucket (`mints_per_second`, up to `mint_burst`).
    pub fn allow_mint(&self, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        let mut sources = self.sources();
        let state = sources.entry(source).or_default();
        let burst = f64::from(self.limits.mint_burst.max(1));
        let tokens = match state.mint_refilled {
            None => burst,
            Some(at) => (state.mint_tokens
                + now.duration_since(at).as_secs_f64() * f64::from(self.limits.mints_per_second))
            .min(burst),
        };
        state.mint_refilled = Some(now);
        if tokens < 1.0 {
            state.mint_tokens = tokens;
            return Err(Refusal::rate_limited(&format!(
                "this sandbox opened TLS connections to too many new hosts at once (at most {} new certificates per second): retry in a moment",
                self.limits.mints_per_second
            )));
        }
        state.mint_tokens = tokens - 1.0;
        Ok(())
    }

    /// Open client connections of the worker.
    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    fn release(&self, source: IpAddr, connections: usize, bytes: usize) {
        let mut sources = self.sources();
        if let Some(state) = sources.get_mut(&source) {
            state.connections = state.connections.saturating_sub(connections);
            state.buffered = state.buffered.saturating_sub(bytes);
            // A source's mint bucket is kept while it has anything open; an idle one refills anyway.
            if state.is_idle()
                && state
                    .mint_refilled
                    .is_none_or(|at| at.elapsed() > Duration::from_secs(60))
            {
                sources.remove(&source);
            }
        }
    }
}

/// One open client connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<Limiter>,
    source: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.limiter.connections.fetch_sub(1, Ordering::AcqRel);
        self.limiter.release(self.source, 1, 0);
    }
}

/// Bytes of one whole-body buffer; dropping it gives them back.
#[derive(Debug)]
pub struct BufferPermit {
    /// `None` for a small body that was not charged.
    limiter: Option<Arc<Limiter>>,
    source: IpAddr,
    bytes: usize,
}

impl Drop for BufferPermit {
    fn drop(&mut self) {
        if let Some(limiter) = &self.limiter {
            limiter.release(self.source, 0, self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn connections_are_capped_per_source_and_per_worker_and_given_back() {
        let limiter = Limiter::new(Limits {
            max_connections: 3,
            max_connections_per_sandbox: 2,
            ..Limits::default()
        });
        let a1 = limiter.open_connection(ip(1)).unwrap();
        let _a2 = limiter.open_connection(ip(1)).unwrap();
        let refused = limiter.open_connection(ip(1)).unwrap_err();
        assert_eq!(refused.code, osb_proto::ErrorCode::RateLimited);
        let _b1 = limiter.open_connection(ip(2)).unwrap();
        let full = limiter.open_connection(ip(3)).unwrap_err();
        assert_eq!(full.code, osb_proto::ErrorCode::ProxyOverloaded);
        drop(a1);
        let again = limiter.open_connection(ip(1));
        assert!(again.is_ok());
        assert_eq!(limiter.open_connections(), 3);
    }

    #[test]
    fn buffered_bytes_are_a_per_sandbox_budget() {
        let big = SMALL_BODY + 1;
        let limiter = Limiter::new(Limits {
            max_buffered_bytes_per_sandbox: big + big / 2,
            ..Limits::default()
        });
        let first = limiter.reserve_buffer(ip(1), big).unwrap();
        assert!(limiter.reserve_buffer(ip(1), big).is_none());
        assert!(
            limiter.reserve_buffer(ip(2), big).is_some(),
            "another sandbox has its own budget"
        );
        assert!(
            limiter.reserve_buffer(ip(1), SMALL_BODY).is_some(),
            "small bodies are not charged"
        );
        drop(first);
        assert!(limiter.reserve_buffer(ip(1), big).is_some());
    }

    #[test]
    fn mints_follow_a_token_bucket_per_source() {
        let limiter = Limiter::new(Limits {
            mints_per_second: 2,
            mint_burst: 3,
            ..Limits::default()
        });
        let start = Instant::now();
        for _ in 0..3 {
            limiter.allow_mint(ip(1), start).unwrap();
        }
        assert!(limiter.allow_mint(ip(1), start).is_err());
        assert!(limiter.allow_mint(ip(2), start).is_ok(), "per source");
        assert!(limiter
            .allow_mint(ip(1), start + Duration::from_millis(600))
            .is_ok());
        assert!(limiter
            .allow_mint(ip(1), start + Duration::from_millis(700))
            .is_err());
    }
}
