//! Prometheus-text counters of the data plane: requests, substitutions, refusals by code,
//! certificate cache hits, misses and mints. Plain atomics; the counters every request touches
//! are striped by lane ([`LaneCounter`]) so two lanes never bounce one cache line per request.
//! Rendering never includes hosts, names, values or tokens (no high-cardinality or sensitive
//! labels).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use osb_proto::ErrorCode;

const BLOCK_CODES: [ErrorCode; 14] = [
    ErrorCode::UnknownSource,
    ErrorCode::HostNotAllowed,
    ErrorCode::SecretNotAllowedForHost,
    ErrorCode::UnknownToken,
    ErrorCode::MisdirectedRequest,
    ErrorCode::ForbiddenUpstreamAddress,
    ErrorCode::PlaintextSecret,
    ErrorCode::PayloadTooLarge,
    ErrorCode::UpstreamFailure,
    ErrorCode::InvalidInput,
    ErrorCode::UnscrubbableResponse,
    ErrorCode::RateLimited,
    ErrorCode::ProxyOverloaded,
    ErrorCode::RequestTimeout,
];

/// Stripes of a [`LaneCounter`]; lanes beyond it share stripes.
const STRIPES: usize = 8;

/// An atomic alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A counter touched on every request: each lane adds to its own stripe, a read sums them.
#[derive(Debug, Default)]
pub struct LaneCounter([Padded; STRIPES]);

impl LaneCounter {
    pub fn add(&self, count: u64) {
        let stripe = crate::lanes::current_lane() % STRIPES;
        self.0[stripe].0.fetch_add(count, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|stripe| stripe.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// The counters. Shared by `Arc`.
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    requests: LaneCounter,
    express_requests: LaneCounter,
    substitutions: LaneCounter,
    scrubbed_responses: LaneCounter,
    blocks: [AtomicU64; BLOCK_CODES.len() + 1],
    cert_cache_hits: AtomicU64,
    cert_cache_misses: AtomicU64,
    cert_mints: AtomicU64,
    cert_evictions: AtomicU64,
    timeouts: AtomicU64,
    websocket_frames: AtomicU64,
    decoded_responses: LaneCounter,
    lingering_closes: AtomicU64,
    lingering_cut: AtomicU64,
    lingering_discarded_bytes: AtomicU64,
}

impl ProxyMetrics {
    pub fn request(&self) {
        self.requests.add(1);
    }

    /// A request served by the express lane (also counted by [`Self::request`]).
    pub fn express_request(&self) {
        self.express_requests.add(1);
    }

    /// Requests the express lane served since start.
    pub fn express_requests(&self) -> u64 {
        self.express_requests.get()
    }

    pub fn substituted(&self, count: u64) {
        self.substitutions.add(count);
    }

    pub fn scrubbed(&self) {
        self.scrubbed_responses.add(1);
    }

    /// Responses in which at least one value was scrubbed.
    pub fn scrubbed_responses(&self) -> u64 {
        self.scrubbed_responses.get()
    }

    pub fn blocked(&self, code: ErrorCode) {
        let index = BLOCK_CODES
            .iter()
            .position(|c| *c == code)
            .unwrap_or(BLOCK_CODES.len());
        self.blocks[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn cert_cache_hit(&self) {
        self.cert_cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cert_cache_miss(&self) {
        self.cert_cache_misses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cert_minted(&self) {
        self.cert_mints.fetch_add(1, Ordering::Relaxed);
    }

    /// A cached leaf certificate was evicted to stay within the cache's bounds.
    pub fn cert_evicted(&self) {
        self.cert_evictions.fetch_add(1, Ordering::Relaxed);
    }

    /// A read timed out (handshake, head, body, idle connection or WebSocket).
    pub fn timed_out(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads that timed out since start.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    /// A WebSocket frame was relayed (either way).
    pub fn websocket_frame(&self) {
        self.websocket_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// A compressed response was decoded to be scrubbed.
    pub fn decoded_response(&self) {
        self.decoded_responses.add(1);
    }

    /// A client socket closed after lingering (ADR 0114): `discarded` bytes the client still
    /// sent were thrown away; `cut` when a bound ended the linger while the client was still
    /// there.
    pub fn lingered(&self, discarded: u64, cut: bool) {
        self.lingering_closes.fetch_add(1, Ordering::Relaxed);
        self.lingering_discarded_bytes
            .fetch_add(discarded, Ordering::Relaxed);
        if cut {
            self.lingering_cut.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Client sockets closed after lingering, since start.
    pub fn lingering_closes(&self) -> u64 {
        self.lingering_closes.load(Ordering::Relaxed)
    }

    /// Lingering closes a bound ended (bytes or time) while the client was still there.
    pub fn lingering_cut(&self) -> u64 {
        self.lingering_cut.load(Ordering::Relaxed)
    }

    /// Bytes clients sent after a lingering close began, read and thrown away.
    pub fn lingering_discarded_bytes(&self) -> u64 {
        self.lingering_discarded_bytes.load(Ordering::Relaxed)
    }

    /// Certificates minted since start.
    pub fn cert_mints(&self) -> u64 {
        self.cert_mints.load(Ordering::Relaxed)
    }

    /// Requests seen since start.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// Tokens substituted since start.
    pub fn substitutions(&self) -> u64 {
        self.substitutions.get()
    }

    /// Refusals with this code since start.
    pub fn blocks(&self, code: ErrorCode) -> u64 {
        let index = BLOCK_CODES
            .iter()
            .position(|c| *c == code)
            .unwrap_or(BLOCK_CODES.len());
        self.blocks[index].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every counter.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "osb_proxy_requests_total",
            "Requests handled by the sealing proxy.",
            self.requests(),
        );
        counter(
            "osb_proxy_express_requests_total",
            "Requests served by the express lane (the rest by hyper).",
            self.express_requests(),
        );
        counter(
            "osb_proxy_substitutions_total",
            "Sealed tokens replaced by their values.",
            self.substitutions(),
        );
        counter(
            "osb_proxy_scrubbed_responses_total",
            "Responses in which an echoed secret value was replaced by its token.",
            self.scrubbed_responses.get(),
        );
        counter(
            "osb_proxy_cert_cache_hits_total",
            "Leaf certificate cache hits.",
            self.cert_cache_hits.load(Ordering::Relaxed),
        );
        counter(
            "osb_proxy_cert_cache_misses_total",
            "Leaf certificate cache misses.",
            self.cert_cache_misses.load(Ordering::Relaxed),
        );
        counter(
            "osb_proxy_cert_mints_total",
            "Leaf certificates minted.",
            self.cert_mints(),
        );
        counter(
            "osb_proxy_cert_evictions_total",
            "Leaf certificates evicted from the bounded cache.",
            self.cert_evictions.load(Ordering::Relaxed),
        );
        counter(
            "osb_proxy_timeouts_total",
            "Reads that timed out (handshake, head, body, idle connection, WebSocket).",
            self.timeouts(),
        );
        counter(
            "osb_proxy_websocket_frames_total",
            "WebSocket frames relayed with substitution or scrubbing.",
            self.websocket_frames.load(Ordering::Relaxed),
        );
        counter(
            "osb_proxy_decoded_responses_total",
            "Compressed responses decoded to be scrubbed.",
            self.decoded_responses.get(),
        );
        counter(
            "osb_proxy_lingering_closes_total",
            "Client connections closed after lingering (write half shut, late bytes discarded).",
            self.lingering_closes(),
        );
        counter(
            "osb_proxy_lingering_cut_total",
            "Lingering closes ended by their byte or time bound while the client was still there.",
            self.lingering_cut(),
        );
        counter(
            "osb_proxy_lingering_discarded_bytes_total",
            "Bytes clients sent after a lingering close began, read and thrown away.",
            self.lingering_discarded_bytes(),
        );
        let _ = writeln!(out, "# HELP osb_proxy_blocks_total Requests refused, by reason code.\n# TYPE osb_proxy_blocks_total counter");
        for (index, code) in BLOCK_CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "osb_proxy_blocks_total{{code=\"{code}\"}} {}",
                self.blocks[index].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "osb_proxy_blocks_total{{code=\"other\"}} {}",
            self.blocks[BLOCK_CODES.len()].load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let metrics = ProxyMetrics::default();
        metrics.request();
        metrics.substituted(2);
        metrics.blocked(ErrorCode::HostNotAllowed);
        let text = metrics.render_prometheus();
        assert!(text.contains("osb_proxy_requests_total 1"));
        assert!(text.contains("osb_proxy_substitutions_total 2"));
        assert!(text.contains("osb_proxy_blocks_total{code=\"host_not_allowed\"} 1"));
        assert_eq!(metrics.blocks(ErrorCode::HostNotAllowed), 1);
    }
}
