//! The express lane's response relay: bodiless answers, small `Content-Length` bodies buffered
//! (within the sandbox's buffer budget) and scrubbed whole, everything else streamed — decoded
//! when compressed (ADR 0109), scrubbed with a constant shape and a flush after a quiet period
//! (ADR 0108), re-chunked — with the body idle timeout on every upstream read. A response whose
//! coding cannot be scrubbed is refused before a byte reaches the sandbox. It must never give an
//! upstream connection back to the pool unless its response was read exactly to the end.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::chunked::{encode_chunk, ChunkedDecoder, LAST_CHUNK};
use super::response::{self, ClientFraming, Framing, ResponseHead};
use super::upstream::ExpressUpstream;
use super::{read_more, write_out, ExpressClient, Flow, UpstreamError};
use crate::body::Scrubbing;
use crate::encoding::{Coding, Decoder};
use crate::pool::PoolKey;
use crate::refusal::Refusal;
use crate::scrubber::ScrubTable;
use crate::transform::FrameTransform;

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

/// What the body goes through: the hyper front end's response transform (decoding, then
/// constant-shape scrubbing), or nothing for a session without secrets.
struct Pipeline(Option<Scrubbing>);

impl Pipeline {
    fn push(&mut self, data: Bytes) -> Result<Bytes, UpstreamError> {
        match &mut self.0 {
            Some(scrubbing) => scrubbing.data(data).map_err(failed),
            None => Ok(data),
        }
    }

    /// The next bounded step from input already received; `None` when there is none.
    fn step(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        match &mut self.0 {
            Some(scrubbing) => scrubbing.more().map_err(failed),
            None => Ok(None),
        }
    }

    fn finish(&mut self) -> Result<Bytes, UpstreamError> {
        match &mut self.0 {
            Some(scrubbing) => scrubbing.finish().map_err(failed),
            None => Ok(Bytes::new()),
        }
    }

    fn holds_back(&self) -> bool {
        self.0.as_ref().is_some_and(FrameTransform::holds_back)
    }

    fn flush(&mut self) -> Bytes {
        self.0
            .as_mut()
            .map(FrameTransform::flush)
            .unwrap_or_default()
    }
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
        let decoding = coding != Coding::Identity;
        let mut out = Vec::with_capacity(head.head_len + 512);
        response::write_client_head(
            &upstream.buffer,
            head,
            self.table,
            client_framing,
            self.client_close,
            decoding,
            &mut out,
        );
        upstream.buffer.advance(head.head_len);
        write_out(client, &out).await?;
        let mut pipeline = Pipeline(self.table.cloned().map(|table| {
            Scrubbing::new(
                table,
                Decoder::for_coding(coding),
                Arc::clone(&shared.metrics),
            )
        }));
        let frame = |data: &[u8], out: &mut Vec<u8>| match plain_length {
            Some(_) => out.extend_from_slice(data),
            None => encode_chunk(data, out),
        };
        let mut decoder = (framing == Framing::Chunked).then(ChunkedDecoder::new);
        let mut remaining = match framing {
            Framing::Length(length) => length,
            _ => u64::MAX,
        };
        let mut decoded = BytesMut::new();
        loop {
            // Take what the buffer holds of the body.
            match &mut decoder {
                Some(decoder) => decoder
                    .decode(&mut upstream.buffer, &mut decoded)
                    .map_err(|error| UpstreamError::Failed(error.to_string()))?,
                None => {
                    let take = (upstream.buffer.len() as u64).min(remaining) as usize;
                    decoded.extend_from_slice(&upstream.buffer[..take]);
                    upstream.buffer.advance(take);
                    remaining -= take as u64;
                }
            }
            let finished = match (&decoder, framing) {
                (Some(decoder), _) => decoder.is_done(),
                (None, Framing::Length(_)) => remaining == 0,
                _ => false,
            };
            out.clear();
            if !decoded.is_empty() {
                let data = pipeline.push(decoded.split().freeze())?;
                frame(&data, &mut out);
                while let Some(step) = pipeline.step()? {
                    frame(&step, &mut out);
                    if out.len() >= 64 * 1024 {
                        write_out(client, &out).await?;
                        out.clear();
                    }
                }
            }
            if finished {
                frame(&pipeline.finish()?, &mut out);
                if plain_length.is_none() {
                    out.extend_from_slice(LAST_CHUNK);
                }
                self.client.give_back(self.key, upstream, head);
                return write_out(client, &out).await;
            }
            write_out(client, &out).await?;
            let read = {
                let upstream = &mut *upstream;
                let quiet = if pipeline.holds_back() {
                    shared.scrub_flush_after
                } else {
                    limits.body_idle_timeout
                };
                tokio::time::timeout(quiet, read_more(&mut upstream.tls, &mut upstream.buffer))
                    .await
            };
            match read {
                Err(_) if pipeline.holds_back() => {
                    out.clear();
                    frame(&pipeline.flush(), &mut out);
                    write_out(client, &out).await?;
                }
                Err(_) => {
                    shared.metrics.timed_out();
                    return Err(UpstreamError::Failed(
                        "the response body went silent".into(),
                    ));
                }
                Ok(Ok(0)) if framing == Framing::UntilClose => {
                    out.clear();
                    frame(&pipeline.finish()?, &mut out);
                    out.extend_from_slice(LAST_CHUNK);
                    // The close ended the body; `head.close` keeps the connection out of the pool.
                    return write_out(client, &out).await;
                }
                Ok(Ok(0)) => return Err(UpstreamError::Failed("upstream closed mid-body".into())),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(UpstreamError::Failed(error.to_string())),
            }
        }
    }
}
