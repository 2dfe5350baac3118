//! Body plumbing: the boxed body type both legs use, the per-request ledger that emits exactly one
//! `secret_used` event when the request is done, and the two body transforms run by
//! [`crate::transform::TransformedBody`]: [`Substitution`] (request bodies: tokens replaced as
//! they stream, a forbidden token aborts the upstream request) and [`Scrubbing`] (response
//! bodies: decoded if compressed, echoed values replaced, trailers scrubbed). Nothing here
//! buffers without a bound; nothing logs a value.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use osb_proto::{ErrorCode, SandboxId};

use crate::encoding::Decoder;
use crate::events::{EventSink, ProxyEvent};
use crate::metrics::ProxyMetrics;
use crate::policy::RequestSubstitution;
use crate::refusal::Refusal;
use crate::replacer::StreamReplacer;
use crate::scrubber::{ScrubTable, StreamScrubber};
use crate::transform::FrameTransform;

/// Why a proxied body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body refused by the sealing proxy ({0})")]
    Refused(ErrorCode),
    #[error("body stream failed: {0}")]
    Stream(#[from] hyper::Error),
    #[error("the body went silent for too long")]
    TimedOut,
}

/// The body type of both legs.
pub type ProxyBody = UnsyncBoxBody<Bytes, BodyError>;

pub fn empty_body() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn full_body(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn incoming_body(incoming: hyper::body::Incoming) -> ProxyBody {
    incoming.map_err(BodyError::Stream).boxed_unsync()
}

/// Facts of one request for its events, and what happened to it.
#[derive(Debug)]
pub struct RequestLedger {
    sink: Arc<dyn EventSink>,
    pub(crate) metrics: Arc<ProxyMetrics>,
    sandbox_id: SandboxId,
    source_ip: std::net::IpAddr,
    host: String,
    method: String,
    path: String,
    used: Mutex<BTreeSet<String>>,
    refusal: Mutex<Option<Refusal>>,
}

impl RequestLedger {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sink: Arc<dyn EventSink>,
        metrics: Arc<ProxyMetrics>,
        sandbox_id: SandboxId,
        source_ip: std::net::IpAddr,
        host: String,
        method: String,
        path: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            sink,
            metrics,
            sandbox_id,
            source_ip,
            host,
            method,
            path,
            used: Mutex::new(BTreeSet::new()),
            refusal: Mutex::new(None),
        })
    }

    /// Records substituted secrets (names) and the count.
    pub fn record_use(&self, resolver: &RequestSubstitution) {
        if resolver.used().is_empty() {
            return;
        }
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        used.extend(resolver.used().iter().cloned());
    }

    /// Records and reports a refusal discovered while streaming a body or frames.
    pub fn block(&self, refusal: Refusal) {
        self.metrics.blocked(refusal.code);
        tracing::info!(sandbox_id = %self.sandbox_id, host = %self.host, code = %refusal.code, "request body refused");
        self.sink.emit(ProxyEvent::EgressBlocked {
            sandbox_id: Some(self.sandbox_id),
            source_ip: self.source_ip,
            host: Some(self.host.clone()),
            method: Some(self.method.clone()),
            path: Some(self.path.clone()),
            code: refusal.code,
            secret: refusal.secret.clone(),
            reason: refusal.message.clone(),
        });
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal);
    }

    /// The refusal recorded by the body, if any (already reported).
    pub fn take_refusal(&self) -> Option<Refusal> {
        self.refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for RequestLedger {
    fn drop(&mut self) {
        let used = std::mem::take(self.used.get_mut().unwrap_or_else(PoisonError::into_inner));
        if used.is_empty() {
            return;
        }
        self.sink.emit(ProxyEvent::SecretUsed {
            sandbox_id: self.sandbox_id,
            secret_names: used.into_iter().collect(),
            host: std::mem::take(&mut self.host),
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
        });
    }
}

/// Request bodies: tokens replaced while the body streams; a token the policy refuses ends the
/// body with an error, which makes hyper abort the upstream request (no terminating chunk on
/// HTTP/1.1, `RST_STREAM` on HTTP/2), so the origin never sees it as complete.
pub struct Substitution {
    replacer: StreamReplacer,
    resolver: RequestSubstitution,
    ledger: Arc<RequestLedger>,
    counted: u64,
}

impl std::fmt::Debug for Substitution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Substitution").finish_non_exhaustive()
    }
}

impl Substitution {
    pub fn new(resolver: RequestSubstitution, ledger: Arc<RequestLedger>) -> Self {
        let counted = resolver.substitutions();
        Self {
            replacer: StreamReplacer::new(),
            resolver,
            ledger,
            counted,
        }
    }

    fn account(&mut self) {
        let total = self.resolver.substitutions();
        self.ledger.metrics.substituted(total - self.counted);
        self.counted = total;
        self.ledger.record_use(&self.resolver);
    }
}

impl FrameTransform for Substitution {
    fn data(&mut self, chunk: Bytes) -> Result<Bytes, Refusal> {
        let out = self.replacer.feed(chunk, &mut self.resolver)?;
        self.account();
        Ok(out)
    }

    fn trailers(&mut self, trailers: HeaderMap) -> Result<HeaderMap, Refusal> {
        let mut rewritten = HeaderMap::with_capacity(trailers.len());
        for (name, value) in &trailers {
            let value = crate::rewrite::substitute_header_value(name, value, &mut self.resolver)?;
            rewritten.append(name.clone(), value);
        }
        self.account();
        Ok(rewritten)
    }

    fn finish(&mut self) -> Result<Bytes, Refusal> {
        Ok(self.replacer.finish())
    }

    fn refused(&mut self, refusal: Refusal) -> BodyError {
        let code = refusal.code;
        self.ledger.block(refusal);
        BodyError::Refused(code)
    }

    fn timed_out(&mut self) {
        self.ledger.metrics.timed_out();
    }
}

/// Response bodies: decoded when compressed (ADR 0109), then scrubbed with a constant shape
/// (ADR 0108); trailers scrubbed too.
pub struct Scrubbing {
    decoder: Option<Decoder>,
    scrubber: StreamScrubber,
    table: ScrubTable,
    metrics: Arc<ProxyMetrics>,
    counted: bool,
}

impl std::fmt::Debug for Scrubbing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubbing").finish_non_exhaustive()
    }
}

fn decode_failed(error: impl std::fmt::Display) -> Refusal {
    Refusal::upstream_failure("the upstream", &error.to_string())
}

impl Scrubbing {
    pub fn new(table: ScrubTable, decoder: Option<Decoder>, metrics: Arc<ProxyMetrics>) -> Self {
        if decoder.is_some() {
            metrics.decoded_response();
        }
        Self {
            decoder,
            scrubber: StreamScrubber::new(table.clone()),
            table,
            metrics,
            counted: false,
        }
    }

    fn scrub(&mut self, decoded: &[u8]) -> Bytes {
        let out = self.scrubber.feed(decoded);
        self.count();
        out
    }

    fn count(&mut self) {
        if self.scrubber.scrubbed() && !self.counted {
            self.counted = true;
            self.metrics.scrubbed();
        }
    }
}

impl FrameTransform for Scrubbing {
    fn data(&mut self, chunk: Bytes) -> Result<Bytes, Refusal> {
        match &mut self.decoder {
            None => Ok(self.scrub(&chunk)),
            Some(decoder) => {
                let decoded = decoder.push(&chunk).map_err(decode_failed)?;
                Ok(self.scrub(&decoded))
            }
        }
    }

    fn more(&mut self) -> Result<Option<Bytes>, Refusal> {
        let Some(decoder) = self.decoder.as_mut().filter(|decoder| decoder.has_input()) else {
            return Ok(None);
        };
        let decoded = decoder.step().map_err(decode_failed)?;
        Ok(Some(self.scrub(&decoded)))
    }

    fn trailers(&mut self, mut trailers: HeaderMap) -> Result<HeaderMap, Refusal> {
        crate::rewrite::scrub_header_values(&mut trailers, &self.table);
        Ok(trailers)
    }

    fn finish(&mut self) -> Result<Bytes, Refusal> {
        let mut out = bytes::BytesMut::new();
        if let Some(decoder) = &mut self.decoder {
            let rest = decoder.finish().map_err(decode_failed)?;
            out.extend_from_slice(&self.scrubber.feed(&rest));
        }
        out.extend_from_slice(&self.scrubber.finish());
        self.count();
        Ok(out.freeze())
    }

    fn holds_back(&self) -> bool {
        self.scrubber.pending() > 0
    }

    fn flush(&mut self) -> Bytes {
        self.scrubber.flush()
    }

    fn refused(&mut self, refusal: Refusal) -> BodyError {
        self.metrics.blocked(refusal.code);
        BodyError::Refused(refusal.code)
    }

    fn timed_out(&mut self) {
        self.metrics.timed_out();
    }
}

#[cfg(test)]
mod tests;
