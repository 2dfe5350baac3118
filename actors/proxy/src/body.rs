//! Body plumbing: the boxed body type both legs use, the streaming request body that substitutes
//! tokens as it flows (refusing mid-stream on a forbidden token), the streaming response body
//! that scrubs echoed values, and the per-request ledger that emits exactly one `secret_used`
//! event when the request is done. Nothing here buffers without a bound; nothing logs a value.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use osb_proto::{ErrorCode, SandboxId};

use crate::events::{EventSink, ProxyEvent};
use crate::metrics::ProxyMetrics;
use crate::policy::RequestSubstitution;
use crate::refusal::Refusal;
use crate::replacer::StreamReplacer;
use crate::scrubber::StreamScrubber;

/// Why a proxied body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body refused by the sealing proxy ({0})")]
    Refused(ErrorCode),
    #[error("body stream failed: {0}")]
    Stream(#[from] hyper::Error),
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
    metrics: Arc<ProxyMetrics>,
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

    /// Records and reports a refusal discovered while streaming the body.
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

/// A request body whose tokens are replaced while it streams.
pub struct SubstitutingBody {
    inner: ProxyBody,
    replacer: StreamReplacer,
    resolver: RequestSubstitution,
    ledger: Arc<RequestLedger>,
    done: bool,
    counted: u64,
    pending_trailers: Option<Frame<Bytes>>,
}

impl std::fmt::Debug for SubstitutingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubstitutingBody")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl SubstitutingBody {
    pub fn new(
        inner: ProxyBody,
        resolver: RequestSubstitution,
        ledger: Arc<RequestLedger>,
    ) -> Self {
        let counted = resolver.substitutions();
        Self {
            inner,
            replacer: StreamReplacer::new(),
            resolver,
            ledger,
            done: false,
            counted,
            pending_trailers: None,
        }
    }

    fn rewrite_trailers(&mut self, frame: Frame<Bytes>) -> Result<Frame<Bytes>, Refusal> {
        let Ok(trailers) = frame.into_trailers() else {
            return Err(Refusal::bad_request("unexpected body frame"));
        };
        let mut rewritten = http::HeaderMap::with_capacity(trailers.len());
        for (name, value) in &trailers {
            let value = crate::rewrite::substitute_header_value(name, value, &mut self.resolver)?;
            rewritten.append(name.clone(), value);
        }
        Ok(Frame::trailers(rewritten))
    }

    fn account(&mut self) {
        let total = self.resolver.substitutions();
        self.ledger.metrics.substituted(total - self.counted);
        self.counted = total;
        self.ledger.record_use(&self.resolver);
    }
}

impl Body for SubstitutingBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(trailers) = this.pending_trailers.take() {
            return Poll::Ready(Some(Ok(trailers)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => {
                    this.done = true;
                    this.account();
                    let tail = this.replacer.finish();
                    return Poll::Ready((!tail.is_empty()).then(|| Ok(Frame::data(tail))));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => match this.replacer.feed(data, &mut this.resolver) {
                        Ok(out) if out.is_empty() => continue,
                        Ok(out) => {
                            this.account();
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                        Err(refusal) => {
                            this.done = true;
                            let code = refusal.code;
                            this.ledger.block(refusal);
                            return Poll::Ready(Some(Err(BodyError::Refused(code))));
                        }
                    },
                    Err(frame) => {
                        // Trailers get the same substitution and policy as headers.
                        let trailers = match this.rewrite_trailers(frame) {
                            Ok(trailers) => trailers,
                            Err(refusal) => {
                                this.done = true;
                                let code = refusal.code;
                                this.ledger.block(refusal);
                                return Poll::Ready(Some(Err(BodyError::Refused(code))));
                            }
                        };
                        this.account();
                        // Held-back bytes go out before the trailers.
                        let tail = this.replacer.finish();
                        if tail.is_empty() {
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        this.pending_trailers = Some(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(tail))));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A response body whose echoed secret values are replaced by tokens while it streams.
pub struct ScrubbingBody {
    inner: ProxyBody,
    scrubber: StreamScrubber,
    done: bool,
    pending_trailers: Option<Frame<Bytes>>,
}

impl std::fmt::Debug for ScrubbingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrubbingBody")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ScrubbingBody {
    pub fn new(inner: ProxyBody, scrubber: StreamScrubber) -> Self {
        Self {
            inner,
            scrubber,
            done: false,
            pending_trailers: None,
        }
    }
}

impl Body for ScrubbingBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(trailers) = this.pending_trailers.take() {
            return Poll::Ready(Some(Ok(trailers)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => {
                    this.done = true;
                    let tail = this.scrubber.finish();
                    return Poll::Ready((!tail.is_empty()).then(|| Ok(Frame::data(tail))));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.scrubber.feed(data);
                        if out.is_empty() {
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    Err(trailers) => {
                        let tail = this.scrubber.finish();
                        if tail.is_empty() {
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        this.pending_trailers = Some(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(tail))));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests;
