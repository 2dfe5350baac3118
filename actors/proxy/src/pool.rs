//! Upstream connection reuse, per sandbox (ADR 0105). Connections are keyed by sandbox, target
//! (scheme, host, port) and whether HTTP/2 was offered, and shared by every client connection of
//! that sandbox — never across sandboxes: a request carrying one sandbox's secrets only travels on
//! a connection that the same sandbox's requests opened. An HTTP/1.1 connection returns to the
//! pool only once its response body has been read to the end (so no request waits behind another
//! client's download), and so does a raw connection of the express lane. Idle connections expire,
//! and the connections of a sandbox whose session is gone are dropped by [`UpstreamPools::prune`].
//! The map is sharded by lane (keys carry their lane): a lane's requests lock only its own
//! shard, so two lanes never contend for a lock or bounce its cache line on every request.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use osb_proto::SandboxId;

use crate::body::{BodyError, ProxyBody};
use crate::express::upstream::ExpressUpstream;
use crate::policy::Target;
use crate::refusal::Refusal;
use crate::upstream::{UpstreamConnector, UpstreamSender};

/// Which connections may carry a request: one sandbox, one target, one protocol offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolKey {
    sandbox_id: SandboxId,
    target: Target,
    /// Whether HTTP/2 is offered upstream (it mirrors the client leg).
    offer_http2: bool,
    /// The data-plane lane whose thread drives the connection (see `lanes`).
    lane: usize,
    /// Keyed SipHash of the fields above, computed once: a key is looked up on every request
    /// (twice on the express lane), and hashing the target's host each time showed in the profile.
    digest: u64,
}

impl PoolKey {
    pub fn new(sandbox_id: SandboxId, target: Target, offer_http2: bool, lane: usize) -> Self {
        static STATE: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        let digest = std::hash::BuildHasher::hash_one(
            STATE.get_or_init(std::hash::RandomState::new),
            (sandbox_id, &target, offer_http2, lane),
        );
        Self {
            sandbox_id,
            target,
            offer_http2,
            lane,
            digest,
        }
    }

    pub fn sandbox_id(&self) -> SandboxId {
        self.sandbox_id
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn offer_http2(&self) -> bool {
        self.offer_http2
    }
}

impl std::hash::Hash for PoolKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal keys have equal digests; `Eq` still compares every field.
        state.write_u64(self.digest);
    }
}

/// Hashes a [`PoolKey`] to its digest, which is already a keyed SipHash: hashing it again per
/// lookup would add nothing but cost.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is reached from `PoolKey::hash`; fold anything else in anyway.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Entries = HashMap<PoolKey, PoolEntry, std::hash::BuildHasherDefault<DigestHasher>>;

/// Number of shards of the pool map; lanes beyond it share shards.
const SHARDS: usize = 8;

/// One shard, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Entries>);

#[derive(Debug)]
struct IdleSender {
    since: Instant,
    sender: http1::SendRequest<ProxyBody>,
}

#[derive(Debug)]
struct SharedHttp2 {
    last_used: Instant,
    sender: http2::SendRequest<ProxyBody>,
}

#[derive(Debug)]
struct IdleExpress {
    since: Instant,
    /// Boxed: a TLS connection is large, and it moves in and out of the pool on every request.
    upstream: Box<ExpressUpstream>,
}

#[derive(Debug, Default)]
struct PoolEntry {
    idle_http1: Vec<IdleSender>,
    http2: Option<SharedHttp2>,
    /// Idle raw connections of the express lane (see `express`).
    idle_express: Vec<IdleExpress>,
}

impl PoolEntry {
    fn is_empty(&self) -> bool {
        self.idle_http1.is_empty() && self.http2.is_none() && self.idle_express.is_empty()
    }

    fn len(&self) -> usize {
        self.idle_http1.len() + usize::from(self.http2.is_some()) + self.idle_express.len()
    }
}

/// A sender handed out by the pool.
#[derive(Debug)]
pub struct Checkout {
    pub sender: UpstreamSender,
    /// Whether the connection carried an earlier request (so it may have been closed meanwhile).
    pub reused: bool,
}

/// The upstream connections of every sandbox.
#[derive(Debug)]
pub struct UpstreamPools {
    shards: [Shard; SHARDS],
    idle_timeout: Duration,
    max_idle_per_key: usize,
}

enum Cached {
    Http1(http1::SendRequest<ProxyBody>),
    Http2(http2::SendRequest<ProxyBody>),
}

impl UpstreamPools {
    pub fn new(idle_timeout: Duration, max_idle_per_key: usize) -> Self {
        Self {
            shards: Default::default(),
            idle_timeout,
            max_idle_per_key,
        }
    }

    /// A sender for `key`: its shared HTTP/2 connection, its most recently idled HTTP/1.1
    /// connection, or a newly dialled one.
    pub async fn acquire(
        &self,
        connector: &UpstreamConnector,
        key: &PoolKey,
    ) -> Result<Checkout, Refusal> {
        while let Some(cached) = self.take_cached(key, Instant::now()) {
            match cached {
                Cached::Http2(sender) => {
                    return Ok(Checkout {
                        sender: UpstreamSender::Http2(sender),
                        reused: true,
                    })
                }
                // A connection that closed after it was idled is dropped and the next one tried.
                Cached::Http1(mut sender) => {
                    if sender.ready().await.is_ok() {
                        return Ok(Checkout {
                            sender: UpstreamSender::Http1(sender),
                            reused: true,
                        });
                    }
                }
            }
        }
        let sender = self.dial(connector, key).await?;
        Ok(Checkout {
            sender,
            reused: false,
        })
    }

    /// A newly dialled connection for `key` (an HTTP/2 one becomes the key's shared connection).
    pub async fn dial(
        &self,
        connector: &UpstreamConnector,
        key: &PoolKey,
    ) -> Result<UpstreamSender, Refusal> {
        let sender = connector.connect(&key.target, key.offer_http2).await?;
        if let UpstreamSender::Http2(shared) = &sender {
            let mut entries = self.lock(key);
            entries.entry(key.clone()).or_default().http2 = Some(SharedHttp2 {
                last_used: Instant::now(),
                sender: shared.clone(),
            });
        }
        Ok(sender)
    }

    fn take_cached(&self, key: &PoolKey, now: Instant) -> Option<Cached> {
        let mut entries = self.lock(key);
        let entry = entries.get_mut(key)?;
        if let Some(shared) = &mut entry.http2 {
            if !shared.sender.is_closed() {
                shared.last_used = now;
                return Some(Cached::Http2(shared.sender.clone()));
            }
            entry.http2 = None;
        }
        while let Some(idle) = entry.idle_http1.pop() {
            if !idle.sender.is_closed() && now.duration_since(idle.since) < self.idle_timeout {
                return Some(Cached::Http1(idle.sender));
            }
        }
        None
    }

    /// Gives an HTTP/1.1 sender back once its exchange is complete.
    pub fn release_http1(&self, key: PoolKey, sender: http1::SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut entries = self.lock(&key);
        let entry = entries.entry(key).or_default();
        if entry.idle_http1.len() < self.max_idle_per_key {
            entry.idle_http1.push(IdleSender {
                since: Instant::now(),
                sender,
            });
        }
    }

    /// The most recently idled express connection for `key` that is still quiet (nothing to
    /// read: not closed by the upstream) and not expired.
    pub fn take_express(&self, key: &PoolKey) -> Option<Box<ExpressUpstream>> {
        let now = Instant::now();
        let mut entries = self.lock(key);
        let entry = entries.get_mut(key)?;
        while let Some(idle) = entry.idle_express.pop() {
            let mut idle = idle;
            if now.duration_since(idle.since) < self.idle_timeout && idle.upstream.is_quiet() {
                return Some(idle.upstream);
            }
        }
        None
    }

    /// Gives an express connection back once its exchange is complete.
    pub fn release_express(&self, key: &PoolKey, upstream: Box<ExpressUpstream>) {
        let mut entries = self.lock(key);
        if let Some(entry) = entries.get_mut(key) {
            if entry.idle_express.len() < self.max_idle_per_key {
                entry.idle_express.push(IdleExpress {
                    since: Instant::now(),
                    upstream,
                });
            }
            return;
        }
        entries.insert(
            key.clone(),
            PoolEntry {
                idle_express: vec![IdleExpress {
                    since: Instant::now(),
                    upstream,
                }],
                ..PoolEntry::default()
            },
        );
    }

    /// Drops expired and closed connections, and every connection of a sandbox for which
    /// `is_live` says no (its session is gone). Returns how many connections were dropped.
    pub fn prune(&self, now: Instant, is_live: impl Fn(SandboxId) -> bool) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            dropped += self.prune_shard(&mut Self::guard(shard), now, &is_live);
        }
        dropped
    }

    fn prune_shard(
        &self,
        entries: &mut Entries,
        now: Instant,
        is_live: &impl Fn(SandboxId) -> bool,
    ) -> usize {
        let mut dropped = 0;
        entries.retain(|key, entry| {
            if !is_live(key.sandbox_id) {
                dropped += entry.len();
                return false;
            }
            let before = entry.idle_http1.len() + entry.idle_express.len();
            entry.idle_http1.retain(|idle| {
                !idle.sender.is_closed() && now.duration_since(idle.since) < self.idle_timeout
            });
            entry.idle_express.retain_mut(|idle| {
                idle.upstream.is_quiet() && now.duration_since(idle.since) < self.idle_timeout
            });
            dropped += before - entry.idle_http1.len() - entry.idle_express.len();
            let stale_http2 = entry.http2.as_ref().is_some_and(|shared| {
                shared.sender.is_closed()
                    || now.duration_since(shared.last_used) >= self.idle_timeout
            });
            if stale_http2 {
                entry.http2 = None;
                dropped += 1;
            }
            !entry.is_empty()
        });
        dropped
    }

    /// Idle HTTP/1.1 plus shared HTTP/2 connections currently pooled for `sandbox_id`.
    pub fn pooled_for(&self, sandbox_id: SandboxId) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                Self::guard(shard)
                    .iter()
                    .filter(|(key, _)| key.sandbox_id == sandbox_id)
                    .map(|(_, entry)| entry.len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// The shard of `key`'s lane, locked.
    fn lock(&self, key: &PoolKey) -> MutexGuard<'_, Entries> {
        Self::guard(&self.shards[key.lane % SHARDS])
    }

    fn guard(shard: &Shard) -> MutexGuard<'_, Entries> {
        shard.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where an HTTP/1.1 sender goes back once the response body it carries has ended.
#[derive(Debug)]
pub struct ReturnSlot {
    pools: Arc<UpstreamPools>,
    key: PoolKey,
    sender: http1::SendRequest<ProxyBody>,
}

impl ReturnSlot {
    /// A slot for HTTP/1.1 senders; HTTP/2 senders stay shared and need none.
    pub fn for_sender(
        pools: &Arc<UpstreamPools>,
        key: PoolKey,
        sender: UpstreamSender,
    ) -> Option<Self> {
        match sender {
            UpstreamSender::Http1(sender) => Some(Self {
                pools: Arc::clone(pools),
                key,
                sender,
            }),
            UpstreamSender::Http2(_) => None,
        }
    }

    /// The body has been read to the end: the connection may carry the next request.
    pub fn release(self) {
        self.pools.release_http1(self.key, self.sender);
    }

    /// Wraps a response body so the sender returns to the pool when the body ends; a body that
    /// is abandoned midway takes its connection down with it.
    pub fn attach(self, body: ProxyBody) -> ProxyBody {
        if body.is_end_stream() {
            self.release();
            return body;
        }
        PooledBody {
            inner: body,
            slot: Some(self),
        }
        .boxed_unsync()
    }
}

/// A response body that hands its upstream connection back when it ends.
struct PooledBody {
    inner: ProxyBody,
    slot: Option<ReturnSlot>,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.slot = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.release();
        }
    }
}

#[cfg(test)]
mod tests;
