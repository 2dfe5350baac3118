//! The express lane (ADR 0107): serves simple HTTP/1.1 requests of a decrypted client connection
//! in one task, without hyper — parse the head, apply the same policy decisions and token
//! substitution as [`crate::handler`], write the rewritten request on a pooled raw upstream
//! connection, and relay the response with echoed values scrubbed. Profiling showed hyper's two
//! connection state machines, the task hop to the upstream connection and their allocations
//! costing more CPU than the TLS and the policy together.
//!
//! The lane serves only requests it fully understands (see [`request::parse`]); the first one it
//! does not — an upgrade, `Expect`, chunked or oversized body, HTTP/2, anything malformed — hands
//! the connection, with the bytes already read put back in front, to hyper for the rest of its
//! life. It must never forward a request the policy refused, never reuse an upstream connection
//! across sandboxes, and never log a value or a token.

pub mod chunked;
mod deadline;
mod prefixed;
mod relay;
pub mod request;
pub mod response;
mod stage;
mod upload;
pub mod upstream;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::admission::{admit, Admission, Authority};
use crate::config::OversizedBody;
use crate::events::ProxyEvent;
use crate::handler::authority_for;
use crate::policy::Target;
use crate::pool::PoolKey;
use crate::refusal::Refusal;
use crate::rewrite::redact_path;
use crate::shared::Shared;
use relay::Relayed;
use request::{Parsed, RequestHead};
use upstream::{round_trip, ExpressUpstream};

/// Spare room kept in a read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// What one connection remembers between its requests. Only facts that cannot change while the
/// connection lives (its target, SNI and lane) go in here; session and policy are read anew for
/// every request.
#[derive(Debug, Default)]
struct ConnectionMemo {
    /// The pool key of the last request (valid while the source belongs to the same sandbox).
    key: Option<PoolKey>,
    /// The `Host` bytes (or none) that last passed the authority check.
    authority_ok: Option<Option<Vec<u8>>>,
}

/// Where `part` (a slice of `buffer`, as `httparse` hands them out) sits in `buffer`.
fn range_of(buffer: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - buffer.as_ptr() as usize;
    start..start + part.len()
}

/// A `Content-Length` value: digits only (no sign, no list, no spaces), at most 19 of them.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Request text for checks and events (valid UTF-8 borrowed, anything else replaced).
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Whether the client connection stays open after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    KeepAlive,
    Close,
}

/// One decrypted client connection and what is known about it.
#[derive(Debug)]
pub(crate) struct ExpressClient {
    pub shared: Arc<Shared>,
    pub source_ip: IpAddr,
    pub target: Target,
    /// SNI to check against the target (explicit CONNECT only).
    pub sni: Option<String>,
    /// The ALPN protocol negotiated (`http/1.1` or none).
    pub alpn: Option<Vec<u8>>,
}

/// Why an upstream exchange failed.
#[derive(Debug)]
enum UpstreamError {
    /// The connection was gone before any byte of a response arrived (a retry may be safe).
    Lost(String),
    /// Anything else: the request may have been processed.
    Failed(String),
}

impl UpstreamError {
    fn reason(&self) -> &str {
        match self {
            UpstreamError::Lost(reason) | UpstreamError::Failed(reason) => reason,
        }
    }
}

async fn read_more<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut BytesMut,
) -> std::io::Result<usize> {
    if buffer.capacity() - buffer.len() < READ_CHUNK / 4 {
        buffer.reserve(READ_CHUNK);
    }
    io.read_buf(buffer).await
}

/// A refusal as an HTTP/1.1 response (also what the explicit door answers a connection over
/// its cap with).
pub(crate) fn refusal_bytes(refusal: &Refusal, close: bool) -> Vec<u8> {
    let body = refusal.body();
    let reason = http::StatusCode::from_u16(refusal.status())
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("");
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n",
        refusal.status(),
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

impl ExpressClient {
    /// Serves the connection until it closes, or hands it to hyper.
    pub async fn serve<S>(self, mut client: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut buffer = BytesMut::with_capacity(READ_CHUNK);
        let mut memo = ConnectionMemo::default();
        let head_timeout = self.shared.limiter.limits().head_timeout;
        let mut head_deadline = deadline::HeadDeadline::new(Instant::now() + head_timeout);
        loop {
            let limits = self.shared.limiter.limits();
            let deadline = Instant::now() + limits.head_timeout;
            let head = loop {
                let stream_larger = self.shared.oversized_body == OversizedBody::Rechunk;
                match request::parse_with(&buffer, self.shared.max_buffered_body, stream_larger) {
                    Parsed::Express(head) => break head,
                    Parsed::Hyper => return self.hand_to_hyper(client, buffer).await,
                    Parsed::Partial => {}
                }
                match head_deadline
                    .within(deadline, read_more(&mut client, &mut buffer))
                    .await
                {
                    Some(Ok(0)) | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                    None => {
                        tracing::debug!(source_ip = %self.source_ip, "request head timed out");
                        self.shared.metrics.timed_out();
                        if !buffer.is_empty() {
                            let refusal = Refusal::request_timeout("the request head");
                            self.shared.metrics.blocked(refusal.code);
                            let _ = client.write_all(&refusal_bytes(&refusal, true)).await;
                        }
                        return;
                    }
                }
            };
            // A streamed body holds one read at a time: it is not charged to the buffer budget.
            let buffered_length = head
                .content_length
                .filter(|length| *length > 0 && !head.streamed);
            let _body_permit = match buffered_length {
                None => None,
                Some(length) => match self.shared.limiter.reserve_buffer(self.source_ip, length) {
                    Some(permit) => Some(permit),
                    None => {
                        let refusal = Refusal::rate_limited(
                            "this sandbox has too many request bodies buffered in the proxy at once: retry when earlier requests are done",
                        );
                        let method = text(&buffer[head.method.clone()]).into_owned();
                        self.refuse_unread(&mut client, &method, refusal).await;
                        return;
                    }
                },
            };
            while buffer.len() < head.total_len() {
                let read = tokio::time::timeout(
                    limits.body_idle_timeout,
                    read_more(&mut client, &mut buffer),
                );
                match read.await {
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(_)) => {}
                    Err(_) => {
                        self.shared.metrics.timed_out();
                        let method = text(&buffer[head.method.clone()]).into_owned();
                        self.refuse_unread(
                            &mut client,
                            &method,
                            Refusal::request_timeout("the request body"),
                        )
                        .await;
                        return;
                    }
                }
            }
            let flow = if head.streamed {
                // The head stays in `buffer`; `rest` is the body read so far, and after the
                // exchange whatever the client sent after the body.
                let mut rest = buffer.split_off(head.head_len);
                let flow = self
                    .exchange(&mut client, &buffer, &head, &mut memo, Some(&mut rest))
                    .await;
                buffer = rest;
                flow
            } else {
                let flow = self
                    .exchange(
                        &mut client,
                        &buffer[..head.total_len()],
                        &head,
                        &mut memo,
                        None,
                    )
                    .await;
                buffer.advance(head.total_len());
                flow
            };
            if flow == Flow::Close || head.close {
                let _ = client.shutdown().await;
                return;
            }
        }
    }

    async fn hand_to_hyper<S>(self, client: S, buffer: BytesMut)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = prefixed::Prefixed::new(buffer.freeze(), client);
        crate::hyper_front::serve_hyper(
            self.shared,
            io,
            self.source_ip,
            self.target,
            self.sni,
            self.alpn,
        )
        .await;
    }

    /// Answers a request the lane could not read to its end, and closes: the shutdown lingers
    /// (ADR 0114), so a client still writing the body reads the answer instead of a reset.
    async fn refuse_unread<S>(&self, client: &mut S, method: &str, refusal: Refusal)
    where
        S: AsyncWrite + Unpin,
    {
        let session = self.shared.registry.lookup(self.source_ip);
        let admission = self.admission(method, None, Authority::Verified);
        admission.report(&self.shared, session.as_deref(), &refusal);
        let _ = client.write_all(&refusal_bytes(&refusal, true)).await;
        let _ = client.shutdown().await;
    }

    /// Answers a refusal; the connection closes after it when `close` (the client asked, or
    /// the request's body was not read) or when the answer could not be written.
    async fn answer_refusal<S>(&self, client: &mut S, refusal: &Refusal, close: bool) -> Flow
    where
        S: AsyncWrite + Unpin,
    {
        if client
            .write_all(&refusal_bytes(refusal, close))
            .await
            .is_err()
            || client.flush().await.is_err()
            || close
        {
            return Flow::Close;
        }
        Flow::KeepAlive
    }

    fn admission<'a>(
        &'a self,
        method: &'a str,
        path: Option<&'a str>,
        authority: Authority<'a>,
    ) -> Admission<'a> {
        Admission {
            source_ip: self.source_ip,
            target: &self.target,
            authority,
            sni: self.sni.as_deref(),
            method: Some(method),
            path,
        }
    }

    /// One request (head and body in `request`, or the body still to come in `upload` when it
    /// is streamed), start to finish, along the same hooks as the hyper front end: admission,
    /// head and body substitution, upstream exchange, response relay.
    async fn exchange<S>(
        &self,
        client: &mut S,
        request: &[u8],
        head: &RequestHead,
        memo: &mut ConnectionMemo,
        upload: Option<&mut BytesMut>,
    ) -> Flow
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let shared = &self.shared;
        shared.metrics.request();
        shared.metrics.express_request();
        // A streamed body is still on its way: a refusal before it was read must end the
        // connection (its bytes are no request head), with a lingering close.
        let close_on_refusal = head.close || upload.is_some();
        let method = text(&request[head.method.clone()]);
        let path = text(&request[head.path.clone()]);
        let raw_path = path.split('?').next().unwrap_or("/");
        let claimed_bytes = head.host.clone().map(|range| &request[range]);
        let claimed = claimed_bytes.map(text);
        // The target and SNI are fixed for the connection, so the authority check is a pure
        // function of the Host bytes: a Host that already passed passes again.
        let authority = if memo.authority_ok.as_ref().map(|ok| ok.as_deref()) == Some(claimed_bytes)
        {
            Authority::Verified
        } else {
            Authority::Claimed(claimed.as_deref())
        };
        let admission = self.admission(&method, Some(raw_path), authority);
        let admitted = match admit(shared, &admission) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                return self
                    .answer_refusal(client, &refusal, close_on_refusal)
                    .await
            }
        };
        if matches!(authority, Authority::Claimed(_)) {
            memo.authority_ok = Some(claimed_bytes.map(<[u8]>::to_vec));
        }
        let session = admitted.session;
        let mut resolver = admitted.resolver;
        let refuse = |refusal: Refusal| {
            let refusal = refusal.scrubbed(session.scrub_table());
            admission.report(shared, Some(&session), &refusal);
            refusal
        };
        let offered = session.has_secrets().then_some(crate::encoding::OFFERED);
        let authority_text: std::borrow::Cow<'_, str> = match claimed.as_deref() {
            Some(claimed) => std::borrow::Cow::Borrowed(claimed),
            None => authority_for(&self.target).into(),
        };
        let wire = request::upstream_request_offering(
            request,
            head,
            &authority_text,
            offered,
            &mut resolver,
        );
        let wire = match wire {
            Ok(wire) => wire,
            Err(refusal) => {
                let refusal = refuse(refusal);
                return self
                    .answer_refusal(client, &refusal, close_on_refusal)
                    .await;
            }
        };
        shared.metrics.substituted(resolver.substitutions());
        let report_use = |resolver: &crate::policy::RequestSubstitution| {
            if !resolver.used().is_empty() {
                shared.sink.emit(ProxyEvent::SecretUsed {
                    sandbox_id: session.sandbox_id,
                    secret_names: resolver.used().iter().cloned().collect(),
                    host: self.target.host.clone(),
                    method: method.clone().into_owned(),
                    path: redact_path(raw_path, Some(&session)),
                });
            }
        };
        // Target and lane are fixed for the connection; the key changes only with the sandbox.
        let key_slot = &mut memo.key;
        if key_slot
            .as_ref()
            .is_none_or(|key| key.sandbox_id() != session.sandbox_id)
        {
            *key_slot = Some(PoolKey::new(
                session.sandbox_id,
                self.target.clone(),
                false,
                crate::lanes::current_lane(),
            ));
        }
        let Some(key) = key_slot.as_ref() else {
            return Flow::Close;
        };
        let request_was_head = method == "HEAD";
        let replayable = head.content_length.is_none()
            && http::Method::from_bytes(method.as_bytes()).is_ok_and(|m| m.is_idempotent());
        let sent = match upload {
            None => {
                report_use(&resolver);
                self.send(key, &wire, request_was_head, replayable).await
            }
            Some(buffer) => {
                let length = head.content_length.unwrap_or(0) as u64;
                let upload = upload::Upload { buffer, length };
                let sent = self
                    .send_streamed(client, key, &wire, upload, &mut resolver)
                    .await;
                report_use(&resolver);
                match sent {
                    Ok(sent) => Ok(sent),
                    Err(upload::UploadFailure::Gone) => return Flow::Close,
                    Err(upload::UploadFailure::Answer(refusal)) => {
                        // The body may be half read: answer, then close.
                        let refusal = refuse(refusal);
                        self.answer_refusal(client, &refusal, true).await;
                        return Flow::Close;
                    }
                }
            }
        };
        drop(wire);
        let (upstream, response) = match sent {
            Ok(sent) => sent,
            Err(refusal) => {
                let refusal = refuse(refusal);
                return self.answer_refusal(client, &refusal, head.close).await;
            }
        };
        let table = session.scrub_table().cloned();
        let relay = relay::Relay {
            client: self,
            key,
            table: table.as_ref(),
            client_close: head.close,
        };
        match relay.run(client, upstream, &response).await {
            Relayed::Done(flow) => flow,
            Relayed::Refused(refusal) => {
                let refusal = refuse(refusal);
                self.answer_refusal(client, &refusal, head.close).await
            }
        }
    }

    /// Sends the request on a pooled (or new) connection and reads the response head; retries
    /// once on a new connection when a reused one turns out closed and the request may be
    /// replayed (idempotent, no body — RFC 9110 §9.2.2).
    async fn send(
        &self,
        key: &PoolKey,
        wire: &[u8],
        request_was_head: bool,
        replayable: bool,
    ) -> Result<(Box<ExpressUpstream>, response::ResponseHead), Refusal> {
        let host = &self.target.host;
        let failure = |error: UpstreamError| {
            Refusal::upstream_failure(host, &format!("request failed: {}", error.reason()))
        };
        if let Some(mut upstream) = self.shared.pools.take_express(key) {
            match round_trip(&mut upstream, wire, request_was_head).await {
                Ok(response) => return Ok((upstream, response)),
                Err(UpstreamError::Lost(reason)) if replayable => {
                    tracing::debug!(host = %host, %reason, "reused upstream connection was lost; retrying on a new one");
                }
                Err(error) => return Err(failure(error)),
            }
        }
        let mut upstream = ExpressUpstream::dial(&self.shared.connector, &self.target).await?;
        let response = round_trip(&mut upstream, wire, request_was_head)
            .await
            .map_err(failure)?;
        Ok((upstream, response))
    }

    /// Returns a connection to the pool when its response was read exactly to the end and the
    /// upstream did not ask to close it. Called before the last write to the client, so the
    /// connection is available by the time the client sees the end of the response.
    fn give_back(
        &self,
        key: &PoolKey,
        upstream: Box<ExpressUpstream>,
        response: &response::ResponseHead,
    ) {
        if !response.close && upstream.buffer.is_empty() {
            self.shared.pools.release_express(key, upstream);
        }
    }
}

/// Reads into `buffer` at most `limit` bytes (with room for a few full TLS records first).
async fn read_limited<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut BytesMut,
    limit: u64,
) -> std::io::Result<usize> {
    if buffer.capacity() - buffer.len() < stage::BODY_READ / 4 {
        buffer.reserve(stage::BODY_READ);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut limited = BufMut::limit(&mut *buffer, limit);
    io.read_buf(&mut limited).await
}

/// After a read that waited, takes whatever else is already readable, without waiting, until
/// `buffer` holds `want` bytes or `limit` more were read: fewer and fuller writes (and TLS
/// records) downstream, at no added latency. Returns the bytes read; an error or the end of the
/// stream is left for the next read to report.
fn read_ready<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut BytesMut,
    mut limit: u64,
    want: usize,
) -> usize {
    use futures_util::FutureExt as _;
    let mut total = 0;
    while buffer.len() < want && limit > 0 {
        match read_limited(io, buffer, limit).now_or_never() {
            Some(Ok(read)) if read > 0 => {
                total += read;
                limit -= read as u64;
            }
            _ => break,
        }
    }
    total
}

/// Writes body pieces to `io` with vectored writes (the TLS layer packs them into full records
/// without copying them together first): as one chunk when `chunked`, followed by the last
/// chunk when `last`; then flushes.
async fn write_body<S: AsyncWrite + Unpin>(
    io: &mut S,
    pieces: &[bytes::Bytes],
    chunked: bool,
    last: bool,
) -> Result<(), UpstreamError> {
    let size: usize = pieces.iter().map(bytes::Bytes::len).sum();
    let size_line = chunked::SizeLine::new(size);
    let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(pieces.len() + 3);
    if chunked && size > 0 {
        slices.push(std::io::IoSlice::new(size_line.as_bytes()));
    }
    slices.extend(
        pieces
            .iter()
            .filter(|piece| !piece.is_empty())
            .map(|piece| std::io::IoSlice::new(piece)),
    );
    if chunked && size > 0 {
        slices.push(std::io::IoSlice::new(chunked::CRLF));
    }
    if chunked && last {
        slices.push(std::io::IoSlice::new(chunked::LAST_CHUNK));
    }
    write_all_vectored(io, &mut slices)
        .await
        .map_err(|error| UpstreamError::Failed(format!("write failed: {error}")))
}

/// `write_all` for vectored writes, then a flush.
async fn write_all_vectored<S: AsyncWrite + Unpin>(
    io: &mut S,
    mut slices: &mut [std::io::IoSlice<'_>],
) -> std::io::Result<()> {
    if slices.is_empty() {
        return Ok(());
    }
    while !slices.is_empty() {
        let written = io.write_vectored(slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut slices, written);
    }
    io.flush().await
}

async fn write_out<S: AsyncWrite + Unpin>(client: &mut S, out: &[u8]) -> Result<(), UpstreamError> {
    if out.is_empty() {
        return Ok(());
    }
    client
        .write_all(out)
        .await
        .map_err(|error| UpstreamError::Failed(format!("client write failed: {error}")))?;
    client
        .flush()
        .await
        .map_err(|error| UpstreamError::Failed(format!("client write failed: {error}")))
}
