//! Pool bookkeeping over real hyper senders on in-memory connections: reuse stays within one
//! sandbox and target, closed and expired connections are never handed out, pruning drops the
//! connections of departed sandboxes, and a response body returns its sender only when it ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use osb_proto::SandboxId;
use tokio::io::DuplexStream;

use super::*;
use crate::body::full_body;
use crate::policy::{Scheme, Target};

fn key(sandbox_id: SandboxId, host: &str) -> PoolKey {
    PoolKey::new(
        sandbox_id,
        Target {
            scheme: Scheme::Https,
            host: host.to_owned(),
            port: 443,
        },
        false,
        crate::lanes::NO_LANE,
    )
}

/// A ready sender whose peer end stays open while the returned stream lives.
async fn open_sender() -> (http1::SendRequest<ProxyBody>, DuplexStream) {
    let (client, server) = tokio::io::duplex(1024);
    let (sender, connection) = http1::handshake(TokioIo::new(client)).await.unwrap();
    tokio::spawn(connection);
    (sender, server)
}

fn cached_http1(pools: &UpstreamPools, key: &PoolKey) -> bool {
    matches!(
        pools.take_cached(key, Instant::now()),
        Some(Cached::Http1(_))
    )
}

#[tokio::test]
async fn a_released_sender_serves_only_its_own_sandbox_and_target() {
    let pools = UpstreamPools::new(Duration::from_secs(30), 8);
    let sandbox = SandboxId::new();
    let (sender, _peer) = open_sender().await;
    pools.release_http1(key(sandbox, "a.test"), sender);
    assert!(!cached_http1(&pools, &key(SandboxId::new(), "a.test")));
    assert!(!cached_http1(&pools, &key(sandbox, "b.test")));
    assert!(cached_http1(&pools, &key(sandbox, "a.test")));
    assert!(
        !cached_http1(&pools, &key(sandbox, "a.test")),
        "handed out once"
    );
}

#[tokio::test]
async fn closed_and_expired_senders_are_not_handed_out() {
    let pools = UpstreamPools::new(Duration::from_secs(30), 8);
    let sandbox = SandboxId::new();
    let (sender, peer) = open_sender().await;
    drop(peer);
    while !sender.is_closed() {
        tokio::task::yield_now().await;
    }
    pools.release_http1(key(sandbox, "a.test"), sender);
    assert!(!cached_http1(&pools, &key(sandbox, "a.test")));

    let expiring = UpstreamPools::new(Duration::ZERO, 8);
    let (sender, _peer) = open_sender().await;
    expiring.release_http1(key(sandbox, "a.test"), sender);
    assert!(!cached_http1(&expiring, &key(sandbox, "a.test")));
}

#[tokio::test]
async fn idle_connections_are_capped_per_key() {
    let pools = UpstreamPools::new(Duration::from_secs(30), 2);
    let sandbox = SandboxId::new();
    let mut peers = Vec::new();
    for _ in 0..3 {
        let (sender, peer) = open_sender().await;
        peers.push(peer);
        pools.release_http1(key(sandbox, "a.test"), sender);
    }
    assert_eq!(pools.pooled_for(sandbox), 2);
}

#[tokio::test]
async fn pruning_drops_departed_sandboxes_and_expired_connections() {
    let pools = UpstreamPools::new(Duration::from_secs(30), 8);
    let staying = SandboxId::new();
    let leaving = SandboxId::new();
    let (first, _first_peer) = open_sender().await;
    let (second, _second_peer) = open_sender().await;
    pools.release_http1(key(staying, "a.test"), first);
    pools.release_http1(key(leaving, "a.test"), second);
    assert_eq!(pools.prune(Instant::now(), |id| id == staying), 1);
    assert_eq!(pools.pooled_for(staying), 1);
    assert_eq!(pools.pooled_for(leaving), 0);
    let later = Instant::now() + Duration::from_secs(31);
    assert_eq!(pools.prune(later, |_| true), 1);
    assert_eq!(pools.pooled_for(staying), 0);
}

#[tokio::test]
async fn a_body_returns_its_sender_when_it_ends_and_not_before() {
    let pools = Arc::new(UpstreamPools::new(Duration::from_secs(30), 8));
    let sandbox = SandboxId::new();
    let (sender, _peer) = open_sender().await;
    let slot = ReturnSlot::for_sender(
        &pools,
        key(sandbox, "a.test"),
        UpstreamSender::Http1(sender),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok::<_, BodyError>(Frame::data(data)), rx))
    });
    let body = slot.attach(http_body_util::StreamBody::new(frames).boxed_unsync());
    let reader = tokio::spawn(async move { body.collect().await.map(|c| c.to_bytes()) });
    tx.send(bytes::Bytes::from_static(b"part")).await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(pools.pooled_for(sandbox), 0, "still streaming");
    drop(tx);
    assert_eq!(&reader.await.unwrap().unwrap()[..], b"part");
    assert_eq!(pools.pooled_for(sandbox), 1);

    let (sender, _peer) = open_sender().await;
    let slot = ReturnSlot::for_sender(
        &pools,
        key(sandbox, "b.test"),
        UpstreamSender::Http1(sender),
    )
    .unwrap();
    drop(slot.attach(full_body("abandoned")));
    assert_eq!(
        pools.pooled_for(sandbox),
        1,
        "an abandoned body does not return its sender"
    );
}
