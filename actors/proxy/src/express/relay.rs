//! The express lane's response relay: bodiless answers, small `Content-Length` bodies buffered
//! (within the sandbox's buffer budget) and scrubbed whole, everything else streamed — decoded
//! when compressed (ADR 0109), scrubbed with a constant shape and a flush after a quiet period
//! (ADR 0108), re-chunked — with the body idle timeout on every upstream read. A response whose
//! coding cannot be scrubbed is refused before a byte reaches the sandbox. It must never give an
//! upstream connection back to the pool unless its response was read exactly to the end.

use bytes::{Buf, Bytes};
use futures_util::FutureExt as _;
use tokio::io::AsyncWrite;

use super::chunked::ChunkedDecoder;
use super::response::{self, ClientFraming, Framing, ResponseHead};
use super::stage::{Stage, BODY_READ};
use super::upstream::ExpressUpstream;
use super::{read_limited, read_more, write_body, write_out, ExpressClient, Flow, UpstreamError};
use crate::encoding::Coding;
use crate::pool::PoolKey;
use crate::refusal::Refusal;
use crate::scrubber::ScrubTable;

/// How a relay ended.
#[derive(Debug)]
pub(super) enum Relayed {
    /// The response was relayed (or the relay failed after it started: then the flow is close).
    Done(Flow),
    /// The response cannot be relayed; nothing was written to the client yet.
    Refused(Refusal),
}

/// One response on its way to the sandbox.
pub(super) struct Relay<'a> {
    pub client: &'a ExpressClient,
    pub key: &'a PoolKey,
    pub table: Option<&'a ScrubTable>,
    /// The client asked to close after this exchange.
    pub client_close: bool,
}

fn failed(refusal: Refusal) -> UpstreamError {
    UpstreamError::Failed(refusal.message)
}

impl Relay<'_> {
    /// Relays the response to the client and, when the upstream connection is clean afterwards,
    /// gives it back to the pool.
    pub(super) async fn run<S>(
        &self,
        client: &mut S,
        upstream: Box<ExpressUpstream>,
        head: &ResponseHead,
    ) -> Relayed
    where
        S: AsyncWrite + Unpin,
    {
        let shared = &self.client.shared;
        let cap = shared.max_buffered_body;
        let coding = match (self.table, head.framing) {
            (None, _) | (_, Framing::Bodiless) => Coding::Identity,
            (Some(_), _) => match response::coding(&upstream.buffer, head) {
                Ok(coding) => coding,
                Err(reason) => {
                    return Relayed::Refused(Refusal::unscrubbable(
                        &self.client.target.host,
                        &reason,
                    ))
                }
            },
        };
        let outcome = match head.framing {
            Framing::Bodiless => self.bodiless(client, upstream, head).await,
            Framing::Length(length) if length <= cap as u64 && coding == Coding::Identity => {
                match shared
                    .limiter
                    .reserve_buffer(self.client.source_ip, length as usize)
                {
                    Some(_permit) => self.buffered(client, upstream, head, length as usize).await,
                    None => self.streamed(client, upstream, head, coding).await,
                }
            }
            _ => self.streamed(client, upstream, head, coding).await,
        };
        Relayed::Done(match outcome {
            Ok(()) => Flow::KeepAlive,
            Err(error) => {
                tracing::debug!(host = %self.client.target.host, reason = error.reason(), "response relay ended early");
                Flow::Close
            }
        })
    }

    async fn bodiless<S>(
        &self,
        client: &mut S,
        mut upstream: Box<ExpressUpstream>,
        head: &ResponseHead,
    ) -> Result<(), UpstreamError>
    where
        S: AsyncWrite + Unpin,
    {
        let mut out = Vec::with_capacity(head.head_len + 256);
        response::client_head(
            &upstream.buffer,
            head,
            self.table,
            ClientFraming::Bodiless,
            self.client_close,
            &mut out,
        );
        upstream.buffer.advance(head.head_len);
        self.client.give_back(self.key, upstream, head);
        write_out(client, &out).await
    }

    async fn buffered<S>(
        &self,
        client: &mut S,
        mut upstream: Box<ExpressUpstream>,
        head: &ResponseHead,
        length: usize,
    ) -> Result<(), UpstreamError>
    where
        S: AsyncWrite + Unpin,
    {
        let idle = self.client.shared.limiter.limits().body_idle_timeout;
        let end = head.head_len + length;
        while upstream.buffer.len() < end {
            let upstream = &mut *upstream;
            match tokio::time::timeout(idle, read_more(&mut upstream.tls, &mut upstream.buffer))
                .await
            {
                Ok(Ok(0)) => return Err(UpstreamError::Failed("upstream closed mid-body".into())),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(UpstreamError::Failed(error.to_string())),
                Err(_) => {
                    self.client.shared.metrics.timed_out();
                    return Err(UpstreamError::Failed(
                        "the response body went silent".into(),
                    ));
                }
            }
        }
        let body = &upstream.buffer[head.head_len..end];
        let scrubbed = self.table.and_then(|table| table.scrub_all(body));
        if scrubbed.is_some() {
            self.client.shared.metrics.scrubbed();
        }
        let body = scrubbed.as_deref().unwrap_or(body);
        let mut out = Vec::with_capacity(head.head_len + body.len() + 64);
        response::client_head(
            &upstream.buffer,
            head,
            self.table,
            ClientFraming::Length(body.len()),
            self.client_close,
            &mut out,
        );
        out.extend_from_slice(body);
        upstream.buffer.advance(end);
        self.client.give_back(self.key, upstream, head);
        write_out(client, &out).await
    }

    async fn streamed<S>(
        &self,
        client: &mut S,
        mut upstream: Box<ExpressUpstream>,
        head: &ResponseHead,
        coding: Coding,
    ) -> Result<(), UpstreamError>
    where
        S: AsyncWrite + Unpin,
    {
        let shared = &self.client.shared;
        let limits = shared.limiter.limits();
        let framing = head.framing;
        // Without a scrub table a known length passes through as it is; otherwise the body
        // changes length and is re-framed as chunks.
        let plain_length = match framing {
            Framing::Length(length) if self.table.is_none() => Some(length),
            _ => None,
        };
        let client_framing = match plain_length {
            Some(length) => ClientFraming::Length(length as usize),
            None => ClientFraming::Chunked,
        };
        let rechunk = plain_length.is_none();
        let decoding = coding != Coding::Identity;
        let mut head_out = Vec::with_capacity(head.head_len + 512);
        response::write_client_head(
            &upstream.buffer,
            head,
            self.table,
            client_framing,
            self.client_close,
            decoding,
            &mut head_out,
        );
        upstream.buffer.advance(head.head_len);
        write_out(client, &head_out).await?;
        let mut stage = Stage::new(self.table, coding, &shared.metrics);
        let mut dechunk = (framing == Framing::Chunked).then(ChunkedDecoder::new);
        let mut remaining = match framing {
            Framing::Length(length) => length,
            _ => u64::MAX,
        };
        let mut out: Vec<Bytes> = Vec::new();
        loop {
            // What the upstream buffer holds of the body (bytes that came with the head, or
            // chunked framing); a length-framed body is read straight into the stage below.
            match &mut dechunk {
                Some(decoder) => decoder
                    .decode(&mut upstream.buffer, stage.input())
                    .map_err(|error| UpstreamError::Failed(error.to_string()))?,
                None if !upstream.buffer.is_empty() => {
                    let take = (upstream.buffer.len() as u64).min(remaining) as usize;
                    stage.input().extend_from_slice(&upstream.buffer[..take]);
                    upstream.buffer.advance(take);
                    remaining -= take as u64;
                }
                None => {}
            }
            let finished = match (&dechunk, framing) {
                (Some(decoder), _) => decoder.is_done(),
                (None, Framing::Length(_)) => remaining == 0,
                _ => false,
            };
            stage.drain(&mut out).map_err(failed)?;
            if finished {
                stage.finish(&mut out).map_err(failed)?;
                self.client.give_back(self.key, upstream, head);
                return write_body(client, &out, rechunk, rechunk).await;
            }
            // Fewer, fuller writes (and TLS records): while less than a few records are ready,
            // take what the upstream already sent, without waiting, through the stage first.
            // The stage is drained after every read, so it never holds more than one.
            let ready: usize = out.iter().map(Bytes::len).sum();
            if ready < BODY_READ {
                let upstream = &mut *upstream;
                let early = match dechunk {
                    Some(_) => read_limited(&mut upstream.tls, &mut upstream.buffer, u64::MAX)
                        .now_or_never(),
                    None => {
                        read_limited(&mut upstream.tls, stage.input(), remaining).now_or_never()
                    }
                };
                if let Some(Ok(read)) = early.filter(|read| matches!(read, Ok(read) if *read > 0)) {
                    if dechunk.is_none() {
                        remaining = remaining.saturating_sub(read as u64);
                    }
                    continue;
                }
            }
            write_body(client, &out, rechunk, false).await?;
            out.clear();
            let read = {
                let upstream = &mut *upstream;
                let quiet = if stage.holds_back() {
                    shared.scrub_flush_after
                } else {
                    limits.body_idle_timeout
                };
                let reading = match dechunk {
                    Some(_) => read_limited(&mut upstream.tls, &mut upstream.buffer, u64::MAX),
                    None => read_limited(&mut upstream.tls, stage.input(), remaining),
                };
                tokio::time::timeout(quiet, reading).await
            };
            match read {
                Err(_) if stage.holds_back() => {
                    stage.flush(&mut out);
                    write_body(client, &out, rechunk, false).await?;
                    out.clear();
                }
                Err(_) => {
                    shared.metrics.timed_out();
                    return Err(UpstreamError::Failed(
                        "the response body went silent".into(),
                    ));
                }
                Ok(Ok(0)) if framing == Framing::UntilClose => {
                    stage.finish(&mut out).map_err(failed)?;
                    // The close ended the body; `head.close` keeps the connection out of the pool.
                    return write_body(client, &out, true, true).await;
                }
                Ok(Ok(0)) => return Err(UpstreamError::Failed("upstream closed mid-body".into())),
                Ok(Ok(read)) => {
                    if dechunk.is_none() {
                        remaining = remaining.saturating_sub(read as u64);
                    }
                }
                Ok(Err(error)) => return Err(UpstreamError::Failed(error.to_string())),
            }
        }
    }
}
