//! Streamed request bodies on the express lane (issue 19): a `Content-Length` body longer than
//! the whole-body threshold goes upstream as it arrives — re-framed as chunks, since a
//! substituted value changes its length — with tokens replaced by a [`StreamReplacer`], which
//! carries at most one token's worth of bytes across reads. Body bytes move as slices of the
//! connection's read buffer (no copy of ours) into vectored writes. A token the policy refuses,
//! found after the head went upstream, drops the upstream connection before the terminating
//! chunk (issue 11 item 4), so the origin never sees a complete request. It must never forward a
//! byte past the announced length, nor hold more than one read of the body.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::response::ResponseHead;
use super::stage::BODY_READ;
use super::upstream::{read_head, ExpressUpstream};
use super::{read_limited, read_ready, write_body, ExpressClient, UpstreamError};
use crate::policy::RequestSubstitution;
use crate::pool::PoolKey;
use crate::refusal::Refusal;
use crate::replacer::StreamReplacer;

/// Why a streamed upload did not get a response.
#[derive(Debug)]
pub(super) enum UploadFailure {
    /// Answer the sandbox with this refusal (the body may be half read: then close).
    Answer(Refusal),
    /// The sandbox went away; nothing to answer.
    Gone,
}

/// The request body still to come: what the connection buffer already holds, then the client.
pub(super) struct Upload<'a> {
    pub buffer: &'a mut BytesMut,
    pub length: u64,
}

impl ExpressClient {
    /// Writes the head on a pooled (or new) connection, streams the body with tokens replaced,
    /// and reads the response head.
    pub(super) async fn send_streamed<C>(
        &self,
        client: &mut C,
        key: &PoolKey,
        wire_head: &[u8],
        upload: Upload<'_>,
        resolver: &mut RequestSubstitution,
    ) -> Result<(Box<ExpressUpstream>, ResponseHead), UploadFailure>
    where
        C: AsyncRead + Unpin,
    {
        let host = &self.target.host;
        let failure = |reason: &str| {
            UploadFailure::Answer(Refusal::upstream_failure(
                host,
                &format!("request failed: {reason}"),
            ))
        };
        // The body has not started, so a reused connection found closed is retried on a new one.
        let mut upstream = match self.shared.pools.take_express(key) {
            Some(mut upstream) => match upstream.tls.write_all(wire_head).await {
                Ok(()) => upstream,
                Err(_) => self.dial_with_head(wire_head).await?,
            },
            None => self.dial_with_head(wire_head).await?,
        };
        let idle = self.shared.limiter.limits().body_idle_timeout;
        let before = resolver.substitutions();
        let sent = stream_body(client, &mut upstream, upload, resolver, idle).await;
        self.shared
            .metrics
            .substituted(resolver.substitutions() - before);
        match sent {
            Ok(()) => {}
            Err(BodyFailure::Refused(refusal)) => {
                // Dropping the connection mid-body: no terminating chunk reaches the origin.
                drop(upstream);
                return Err(UploadFailure::Answer(refusal));
            }
            Err(BodyFailure::Client(None)) => return Err(UploadFailure::Gone),
            Err(BodyFailure::Client(Some(refusal))) => {
                self.shared.metrics.timed_out();
                return Err(UploadFailure::Answer(refusal));
            }
            Err(BodyFailure::Upstream(reason)) => return Err(failure(&reason)),
        }
        match read_head(&mut upstream, false).await {
            Ok(head) => Ok((upstream, head)),
            Err(error) => Err(failure(error.reason())),
        }
    }

    async fn dial_with_head(
        &self,
        wire_head: &[u8],
    ) -> Result<Box<ExpressUpstream>, UploadFailure> {
        let mut upstream = ExpressUpstream::dial(&self.shared.connector, &self.target)
            .await
            .map_err(UploadFailure::Answer)?;
        upstream.tls.write_all(wire_head).await.map_err(|error| {
            UploadFailure::Answer(Refusal::upstream_failure(
                &self.target.host,
                &format!("request failed: {error}"),
            ))
        })?;
        Ok(upstream)
    }
}

/// Why the body stopped.
enum BodyFailure {
    /// A token the policy refuses.
    Refused(Refusal),
    /// The client closed (`None`) or went silent (the refusal to answer).
    Client(Option<Refusal>),
    Upstream(String),
}

/// Moves exactly `upload.length` body bytes from the client to the upstream, as chunks.
async fn stream_body<C>(
    client: &mut C,
    upstream: &mut ExpressUpstream,
    upload: Upload<'_>,
    resolver: &mut RequestSubstitution,
    idle: Duration,
) -> Result<(), BodyFailure>
where
    C: AsyncRead + Unpin,
{
    let Upload { buffer, length } = upload;
    let mut remaining = length;
    let mut replacer = StreamReplacer::new();
    let upstream_failed = |error: UpstreamError| BodyFailure::Upstream(error.reason().to_owned());
    while remaining > 0 {
        if buffer.is_empty() {
            match tokio::time::timeout(idle, read_limited(client, buffer, remaining)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Err(BodyFailure::Client(None)),
                Ok(Ok(read)) => {
                    let more = remaining.saturating_sub(read as u64);
                    read_ready(client, buffer, more, BODY_READ);
                }
                Err(_) => {
                    return Err(BodyFailure::Client(Some(Refusal::request_timeout(
                        "the request body",
                    ))))
                }
            }
        }
        let take = (buffer.len() as u64).min(remaining) as usize;
        remaining -= take as u64;
        let piece: Bytes = buffer.split_to(take).freeze();
        let out = replacer
            .feed(piece, resolver)
            .map_err(BodyFailure::Refused)?;
        let tail = if remaining == 0 {
            replacer.finish()
        } else {
            Bytes::new()
        };
        let pieces = [out, tail];
        let write = write_body(&mut upstream.tls, &pieces, true, remaining == 0);
        match tokio::time::timeout(idle, write).await {
            Ok(result) => result.map_err(upstream_failed)?,
            Err(_) => {
                return Err(BodyFailure::Upstream(
                    "the upstream stopped reading the request body".into(),
                ))
            }
        }
    }
    Ok(())
}
