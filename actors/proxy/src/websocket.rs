//! The WebSocket relay (issue 11 item 3, ADR 0111): after an upgrade the proxy reads every frame
//! both ways instead of piping bytes. Toward the origin, tokens in data frames (masked,
//! fragmented, split across frames) are substituted through the request's policy resolver —
//! a token the secret may not take there closes the WebSocket with 1008 and is reported — and
//! frames are re-masked with a fresh key. Toward the sandbox, values (and their encodings) are
//! scrubbed from every data and control frame with a constant shape. Payloads stream in bounded
//! pieces (a long message becomes several fragments), so nothing is buffered without a bound. It
//! must never forward a frame it has not read, nor one with an extension bit set.

pub mod frame;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::body::RequestLedger;
use crate::metrics::ProxyMetrics;
use crate::policy::RequestSubstitution;
use crate::refusal::Refusal;
use crate::replacer::{substitute_all, StreamReplacer};
use crate::scrubber::{ScrubTable, StreamScrubber};
use frame::{parse_head, unmask, write_frame, FrameHead, CLOSE, CONTINUATION, MAX_CONTROL_PAYLOAD};

/// Close codes (RFC 6455 §7.4.1).
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const POLICY_VIOLATION: u16 = 1008;

/// Everything the relay of one upgraded connection needs.
#[derive(Debug)]
pub struct Relay {
    /// The upgrade request's resolver (its session snapshot and target).
    pub resolver: RequestSubstitution,
    pub table: Option<ScrubTable>,
    pub ledger: Arc<RequestLedger>,
    pub metrics: Arc<ProxyMetrics>,
    pub idle_timeout: Duration,
    pub host: String,
}

/// Which way frames travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Sandbox → origin: frames arrive masked, tokens are substituted, frames leave re-masked.
    ToOrigin,
    /// Origin → sandbox: frames arrive unmasked, values are scrubbed.
    ToSandbox,
}

/// How a direction's data is rewritten.
enum Rewriter {
    Substitute(StreamReplacer),
    Scrub(Option<StreamScrubber>),
}

/// One direction's parser and message state.
struct Direction {
    way: Way,
    /// The head of the frame whose payload is being read, and how much of it is left.
    current: Option<(FrameHead, u64)>,
    control: Vec<u8>,
    /// Opcode of the message in progress and whether a fragment of it was sent already.
    message: Option<(u8, bool)>,
    rewriter: Rewriter,
}

/// How the relay ends.
#[derive(Debug)]
enum Ending {
    /// A policy refusal (reported): close the sandbox side with 1008, the origin with 1001.
    Refused(Refusal),
    /// The peer broke the protocol: close both with 1002.
    Protocol(&'static str),
}

impl Direction {
    fn new(way: Way, table: Option<&ScrubTable>) -> Self {
        let rewriter = match way {
            Way::ToOrigin => Rewriter::Substitute(StreamReplacer::new()),
            Way::ToSandbox => Rewriter::Scrub(table.cloned().map(StreamScrubber::new)),
        };
        Self {
            way,
            current: None,
            control: Vec::new(),
            message: None,
            rewriter,
        }
    }

    fn outgoing_mask(&self) -> Option<[u8; 4]> {
        match self.way {
            Way::ToOrigin => Some(rand::random()),
            Way::ToSandbox => None,
        }
    }

    /// Consumes what it can of `input`, appending the frames to forward to `out`.
    fn process(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
        relay: &mut Relay,
    ) -> Result<(), Ending> {
        loop {
            let (head, remaining) = match self.current {
                Some(current) => current,
                None => {
                    let head = match parse_head(input) {
                        Ok(Some(head)) => head,
                        Ok(None) => return Ok(()),
                        Err(_) => return Err(Ending::Protocol("invalid frame")),
                    };
                    let masked_as_expected = match self.way {
                        Way::ToOrigin => head.mask.is_some(),
                        Way::ToSandbox => head.mask.is_none(),
                    };
                    if !masked_as_expected {
                        return Err(Ending::Protocol("frame masked the wrong way"));
                    }
                    if !head.is_control() {
                        let continues = head.opcode == CONTINUATION;
                        if continues != self.message.is_some() {
                            return Err(Ending::Protocol("fragments out of order"));
                        }
                        if !continues {
                            self.message = Some((head.opcode, false));
                        }
                    }
                    input.advance(head.head_len);
                    relay.metrics.websocket_frame();
                    self.current = Some((head, head.length));
                    (head, head.length)
                }
            };
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            if take == 0 && remaining > 0 {
                return Ok(());
            }
            let mut payload = input.split_to(take).to_vec();
            if let Some(key) = head.mask {
                unmask(&mut payload, key, head.length - remaining);
            }
            let left = remaining - take as u64;
            self.current = (left > 0).then_some((head, left));
            if head.is_control() {
                self.control.extend_from_slice(&payload);
                if left == 0 {
                    let payload = std::mem::take(&mut self.control);
                    self.control_frame(head.opcode, &payload, out, relay)?;
                }
                continue;
            }
            let mut rewritten = self.rewrite(Bytes::from(payload), relay)?;
            let message_ends = left == 0 && head.fin;
            if message_ends {
                let tail = self.finish_message(relay);
                if !tail.is_empty() {
                    let mut joined = BytesMut::from(&rewritten[..]);
                    joined.extend_from_slice(&tail);
                    rewritten = joined.freeze();
                }
            }
            if !rewritten.is_empty() || message_ends {
                let Some((opcode, started)) = self.message else {
                    return Err(Ending::Protocol("data outside a message"));
                };
                let opcode = if started { CONTINUATION } else { opcode };
                write_frame(out, message_ends, opcode, self.outgoing_mask(), &rewritten);
                self.message = (!message_ends).then_some((opcode_of(self.message), true));
            }
            if input.is_empty() && self.current.is_some() {
                return Ok(());
            }
        }
    }

    fn rewrite(&mut self, chunk: Bytes, relay: &mut Relay) -> Result<Bytes, Ending> {
        match &mut self.rewriter {
            Rewriter::Substitute(replacer) => {
                let out = replacer
                    .feed(chunk, &mut relay.resolver)
                    .map_err(|refusal| relay.refuse(refusal))?;
                relay.ledger.record_use(&relay.resolver);
                Ok(out)
            }
            Rewriter::Scrub(Some(scrubber)) => Ok(scrubber.feed(&chunk)),
            Rewriter::Scrub(None) => Ok(chunk),
        }
    }

    fn finish_message(&mut self, relay: &mut Relay) -> Bytes {
        match &mut self.rewriter {
            Rewriter::Substitute(replacer) => {
                relay.ledger.record_use(&relay.resolver);
                replacer.finish()
            }
            Rewriter::Scrub(Some(scrubber)) => {
                if scrubber.scrubbed() {
                    relay.metrics.scrubbed();
                }
                scrubber.finish()
            }
            Rewriter::Scrub(None) => Bytes::new(),
        }
    }

    /// Rewrites a whole control frame (the 2-byte close code is kept as it is).
    fn control_frame(
        &mut self,
        opcode: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
        relay: &mut Relay,
    ) -> Result<(), Ending> {
        let keep = if opcode == CLOSE {
            payload.len().min(2)
        } else {
            0
        };
        let (code, text) = payload.split_at(keep);
        let mut rewritten = code.to_vec();
        match self.way {
            Way::ToOrigin => {
                let replaced = substitute_all(text, &mut relay.resolver)
                    .map_err(|refusal| relay.refuse(refusal))?;
                if code.len() + replaced.len() > MAX_CONTROL_PAYLOAD {
                    return Err(relay.refuse(Refusal::bad_request(
                        "a secret value does not fit in a WebSocket control frame",
                    )));
                }
                rewritten.extend_from_slice(&replaced);
                relay.ledger.record_use(&relay.resolver);
            }
            Way::ToSandbox => {
                let scrubbed = relay.table.as_ref().and_then(|table| table.scrub_all(text));
                rewritten.extend_from_slice(scrubbed.as_deref().unwrap_or(text));
                // A token may be longer than the value it replaced; the tail of a too-long
                // control payload is dropped (it holds no secret).
                rewritten.truncate(MAX_CONTROL_PAYLOAD);
            }
        }
        write_frame(out, true, opcode, self.outgoing_mask(), &rewritten);
        Ok(())
    }
}

fn opcode_of(message: Option<(u8, bool)>) -> u8 {
    message.map_or(CONTINUATION, |(opcode, _)| opcode)
}

fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend(reason.bytes().take(MAX_CONTROL_PAYLOAD - 2));
    let mut out = Vec::new();
    write_frame(&mut out, true, CLOSE, mask, &payload);
    out
}

impl Relay {
    /// Reports a refusal found in a frame and turns it into the relay's end.
    fn refuse(&mut self, refusal: Refusal) -> Ending {
        self.ledger.block(refusal.clone());
        Ending::Refused(refusal)
    }

    /// Relays until either side closes, a frame is refused, or both sides are quiet for the
    /// idle timeout.
    pub async fn run(
        mut self,
        downstream: hyper::upgrade::OnUpgrade,
        upstream: hyper::upgrade::OnUpgrade,
    ) {
        let (client, origin) = match tokio::join!(downstream, upstream) {
            (Ok(client), Ok(origin)) => (TokioIo::new(client), TokioIo::new(origin)),
            _ => {
                tracing::debug!(host = %self.host, "websocket upgrade did not complete");
                return;
            }
        };
        self.relay(client, origin).await;
    }

    async fn relay<C, O>(&mut self, mut client: C, mut origin: O)
    where
        C: AsyncRead + AsyncWrite + Unpin,
        O: AsyncRead + AsyncWrite + Unpin,
    {
        let mut to_origin = Direction::new(Way::ToOrigin, None);
        let mut to_sandbox = Direction::new(Way::ToSandbox, self.table.as_ref());
        let mut from_client = BytesMut::with_capacity(16 * 1024);
        let mut from_origin = BytesMut::with_capacity(16 * 1024);
        let mut out = Vec::new();
        let ending = loop {
            out.clear();
            tokio::select! {
                read = client.read_buf(&mut from_client) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        let _ = origin.shutdown().await;
                        return;
                    }
                    if let Err(ending) = to_origin.process(&mut from_client, &mut out, self) {
                        break ending;
                    }
                    if origin.write_all(&out).await.is_err() || origin.flush().await.is_err() {
                        return;
                    }
                }
                read = origin.read_buf(&mut from_origin) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        let _ = client.shutdown().await;
                        return;
                    }
                    if let Err(ending) = to_sandbox.process(&mut from_origin, &mut out, self) {
                        break ending;
                    }
                    if client.write_all(&out).await.is_err() || client.flush().await.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(self.idle_timeout) => {
                    self.metrics.timed_out();
                    let _ = client.write_all(&close_frame(GOING_AWAY, "idle", None)).await;
                    let _ = origin.write_all(&close_frame(GOING_AWAY, "idle", Some(rand::random()))).await;
                    let _ = client.shutdown().await;
                    let _ = origin.shutdown().await;
                    return;
                }
            }
        };
        let (to_client, to_upstream) = match &ending {
            Ending::Refused(refusal) => (
                close_frame(POLICY_VIOLATION, refusal.code.as_str(), None),
                close_frame(GOING_AWAY, "", Some(rand::random())),
            ),
            Ending::Protocol(reason) => {
                tracing::debug!(host = %self.host, reason, "websocket protocol error");
                (
                    close_frame(PROTOCOL_ERROR, reason, None),
                    close_frame(PROTOCOL_ERROR, reason, Some(rand::random())),
                )
            }
        };
        let _ = client.write_all(&to_client).await;
        let _ = client.shutdown().await;
        let _ = origin.write_all(&to_upstream).await;
        let _ = origin.shutdown().await;
    }
}

#[cfg(test)]
mod tests;
