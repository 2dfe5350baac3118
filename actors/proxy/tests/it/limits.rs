//! One tenant cannot starve the others (issue 11 item 6, DESIGN §6 rule 9): a sandbox that
//! floods the event channel cannot make another sandbox's audit events drop, and a sandbox that
//! opens connections without end is refused with a JSON reason once it reaches its cap.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use osb_proto::{ErrorCode, SandboxId};
use osb_proxy::{ChannelSink, EventSink, ProxyEvent};

use crate::support::client::{connect_from, connect_tunnel};
use crate::support::harness::{sandbox_ip, Harness};

fn blocked(sandbox_id: SandboxId, n: usize) -> ProxyEvent {
    ProxyEvent::EgressBlocked {
        sandbox_id: Some(sandbox_id),
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        host: Some("flood.test".into()),
        method: Some("GET".into()),
        path: Some(format!("/{n}")),
        code: ErrorCode::HostNotAllowed,
        secret: None,
        reason: "flood".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_sandbox_cannot_drop_another_sandboxs_events() {
    let (sink, mut receiver) = ChannelSink::new(16);
    let flooder = SandboxId::new();
    let quiet = SandboxId::new();
    for n in 0..10_000 {
        sink.emit(blocked(flooder, n));
    }
    for n in 0..5 {
        sink.emit(blocked(quiet, n));
    }
    let mut quiet_seen = 0;
    let mut flood_seen = 0;
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(500), receiver.recv()).await
    {
        match event {
            ProxyEvent::EgressBlocked {
                sandbox_id: Some(id),
                ..
            } if id == quiet => quiet_seen += 1,
            _ => flood_seen += 1,
        }
    }
    assert_eq!(
        quiet_seen, 5,
        "the quiet sandbox lost audit events to the flood"
    );
    assert!(
        flood_seen > 0 && flood_seen < 10_000,
        "the flood is bounded, not lost entirely: {flood_seen}"
    );
    assert!(sink.dropped() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_that_opens_connections_without_end_is_refused_with_a_reason() {
    let h = Harness::start().await;
    h.sandbox(2, &[h.at("api.example.test")], &[]);
    h.sandbox(3, &[h.at("api.example.test")], &[]);
    let explicit = h.proxy.explicit_addr();
    let mut held = Vec::new();
    for _ in 0..osb_proxy::config::DEFAULT_MAX_CONNECTIONS_PER_SANDBOX {
        held.push(connect_from(sandbox_ip(2), explicit).await);
    }
    // Let the proxy accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = connect_tunnel(sandbox_ip(2), explicit, &h.at("api.example.test")).await;
    let (status, text) = refused.expect_err("one connection over the cap must be refused");
    assert_eq!(status, 429, "{text}");
    let reason: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reason["code"], "rate_limited");
    // Another sandbox is not affected.
    assert!(
        connect_tunnel(sandbox_ip(3), explicit, &h.at("api.example.test"))
            .await
            .is_ok()
    );
    // Closing connections frees the quota.
    held.truncate(10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        connect_tunnel(sandbox_ip(2), explicit, &h.at("api.example.test"))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_sandbox_buffer_budget_are_refused_on_both_front_ends() {
    use crate::support::client::{body, Client};
    use crate::support::harness::Options;
    for express in [true, false] {
        let h = Harness::start_with(Options {
            express,
            limits: Some(osb_proxy::Limits {
                max_buffered_bytes_per_sandbox: 64,
                ..osb_proxy::Limits::default()
            }),
            ..Options::default()
        })
        .await;
        h.sandbox(2, &[h.at("api.example.test")], &[]);
        let mut client = Client::through(
            sandbox_ip(2),
            h.proxy.explicit_addr(),
            &h.at("api.example.test"),
            h.proxy.ca_cert_pem(),
            false,
        )
        .await;
        let request = http::Request::post("/sink")
            .header("host", h.at("api.example.test"))
            .body(body(vec![b'x'; osb_proxy::limits::SMALL_BODY + 1000]))
            .unwrap();
        let (status, _, answer) = client.send(request).await;
        assert_eq!(status, 429, "express={express}");
        let reason: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(reason["code"], "rate_limited");
        assert_eq!(h.origin.count(), 0);
    }
}
