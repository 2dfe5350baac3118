//! What every connection of one proxy shares: the session registry, the policy, the leaf cache,
//! the upstream connector and pools, the limiter, the counters, the event sink and the settings
//! the request paths read. Built once by [`crate::proxy::SealingProxy`]; it holds no request
//! state and must never hold a secret value outside the registry's sessions.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cert_cache::LeafCache;
use crate::config::OversizedBody;
use crate::events::EventSink;
use crate::limits::Limiter;
use crate::metrics::ProxyMetrics;
use crate::policy::SealingPolicy;
use crate::pool::UpstreamPools;
use crate::registry::SessionRegistry;
use crate::upstream::UpstreamConnector;

/// State shared by every connection of one proxy.
#[derive(Debug)]
pub struct Shared {
    pub registry: Arc<SessionRegistry>,
    pub policy: SealingPolicy,
    pub leaves: Arc<LeafCache>,
    pub connector: UpstreamConnector,
    /// Upstream connections, per sandbox (ADR 0105).
    pub pools: Arc<UpstreamPools>,
    pub metrics: Arc<ProxyMetrics>,
    pub sink: Arc<dyn EventSink>,
    pub limiter: Arc<Limiter>,
    pub max_buffered_body: usize,
    pub oversized_body: OversizedBody,
    /// How long held-back response bytes wait for more before they are handed out (ADR 0108).
    pub scrub_flush_after: Duration,
    /// Whether simple HTTP/1.1 requests take the express lane (ADR 0107).
    pub express: bool,
    /// Where accepted connections are served (see `lanes`).
    pub(crate) lanes: crate::lanes::Lanes,
}

/// One downstream connection (TCP or TLS inside a tunnel).
#[derive(Debug)]
pub struct ClientConnection {
    pub shared: Arc<Shared>,
    pub source_ip: IpAddr,
    /// SNI the client sent, checked against the target (explicit CONNECT only).
    pub sni: Option<String>,
    pub client_http2: bool,
}
