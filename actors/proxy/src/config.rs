//! Proxy configuration: listen addresses, CA data dir, body limits, upstream trust and address
//! policy, resolve overrides. Plain data with defaults; it must never hold a secret.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::cert_cache::CacheBounds;
pub use crate::limits::{Limits, DEFAULT_MAX_CONNECTIONS_PER_SANDBOX};
use crate::policy::AddressPolicy;

/// What to do with a `Content-Length` request body larger than the rewrite buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OversizedBody {
    /// Answer 413 with a reason (default: the length the client announced stays truthful).
    Refuse,
    /// Stream it with tokens substituted, re-framed as chunked toward HTTP/1.1 upstreams.
    Rechunk,
}

/// Everything the data plane needs to start.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Listener for clients that honour `HTTP(S)_PROXY` (CONNECT and absolute-URI HTTP).
    pub explicit_listen: SocketAddr,
    /// Listener for redirected tcp/80 and tcp/443 traffic; `None` disables transparent mode.
    pub transparent_listen: Option<SocketAddr>,
    /// Directory holding `proxy-ca.pem` and `proxy-ca-key.pem`.
    pub data_dir: PathBuf,
    /// Lifetime of minted leaf certificates.
    pub leaf_lifetime: Duration,
    /// How long a leaf stays cached (kept below `leaf_lifetime`).
    pub leaf_cache_ttl: Duration,
    /// How many leaves (and bytes of them) the cache holds before it evicts the least recently
    /// used.
    pub leaf_cache_bounds: CacheBounds,
    /// Largest body buffered to recompute `Content-Length` (requests) or scrub (responses).
    pub max_buffered_body: usize,
    pub oversized_body: OversizedBody,
    /// Which upstream address classes may be dialled.
    pub addresses: AddressPolicy,
    /// `host → address` overrides, like `curl --resolve` (the port stays the target's).
    pub resolve_overrides: HashMap<String, IpAddr>,
    /// Trust the system roots (falling back to the bundled Mozilla roots).
    pub use_system_roots: bool,
    /// Extra upstream CA certificates, PEM.
    pub extra_upstream_ca_pems: Vec<Vec<u8>>,
    pub connect_timeout: Duration,
    /// How long an idle upstream connection is kept for the next request of the same sandbox.
    pub upstream_idle_timeout: Duration,
    /// Most idle HTTP/1.1 upstream connections kept per sandbox and target.
    pub upstream_max_idle_per_host: usize,
    /// Data-plane lanes (threads with a runtime each; a connection lives on one): default one
    /// per CPU. 0 serves connections on the caller's runtime.
    pub lanes: usize,
    /// Serve simple HTTP/1.1 requests on the express lane (ADR 0107); everything else, and every
    /// request when this is off, goes through hyper.
    pub express: bool,
    /// Connections, streams, buffered bytes, mint rate and timeouts (ADR 0110).
    pub limits: Limits,
    /// How long the scrubber's held-back bytes wait for more of a body before they are handed out
    /// anyway (ADR 0108: the wait is the same whatever the bytes are).
    pub scrub_flush_after: Duration,
}

impl ProxyConfig {
    /// Defaults: explicit listener on 127.0.0.1:3128, no transparent listener, 1 MiB rewrite
    /// buffer, 7-day leaves cached for 1 day (at most 10 000 / 64 MiB), strict address policy,
    /// system roots, idle upstream connections kept 30 s (at most 128 per sandbox and target),
    /// the limits of [`Limits::default`], held-back response bytes flushed after 50 ms of quiet.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            explicit_listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            transparent_listen: None,
            data_dir: data_dir.into(),
            leaf_lifetime: Duration::from_secs(7 * 24 * 3600),
            leaf_cache_ttl: Duration::from_secs(24 * 3600),
            max_buffered_body: 1024 * 1024,
            oversized_body: OversizedBody::Refuse,
            addresses: AddressPolicy::default(),
            resolve_overrides: HashMap::new(),
            use_system_roots: true,
            extra_upstream_ca_pems: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            upstream_idle_timeout: Duration::from_secs(30),
            upstream_max_idle_per_host: 128,
            lanes: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            express: true,
            limits: Limits::default(),
            scrub_flush_after: Duration::from_millis(50),
            leaf_cache_bounds: CacheBounds::default(),
        }
    }
}

/// Why a `host=address` override is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resolve override {0:?} must look like `host=address`, for example `api.example.test=127.0.0.1`")]
pub struct ResolveOverrideError(pub String);

/// Parses `host=address` (host lowercased).
pub fn parse_resolve_override(text: &str) -> Result<(String, IpAddr), ResolveOverrideError> {
    let error = || ResolveOverrideError(text.chars().take(80).collect());
    let (host, address) = text.split_once('=').ok_or_else(error)?;
    let host = osb_proto::host_pattern::normalise_host(host);
    if host.is_empty() {
        return Err(error());
    }
    let address = address.trim().trim_start_matches('[').trim_end_matches(']');
    let ip = address.parse::<IpAddr>().map_err(|_| error())?;
    Ok((host, ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse() {
        assert_eq!(
            parse_resolve_override("API.example.test=127.0.0.1").unwrap(),
            ("api.example.test".into(), IpAddr::from([127, 0, 0, 1]))
        );
        assert!(parse_resolve_override("nohost").is_err());
        assert!(parse_resolve_override("a=notanip").is_err());
    }
}
