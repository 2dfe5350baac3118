//! Upstream keep-alive: a pooled connection the origin closes under the next request is retried
//! on a new connection only when that is safe (an idempotent request without a body), never for a
//! request whose body may have been sent; connections are shared by the client connections of one
//! sandbox and never across sandboxes.

use http::Request;

use crate::support::client::{body, Client};
use crate::support::closing_origin::{start_closing_origin, ClosingOrigin};
use crate::support::harness::{sandbox_ip, token, Harness, Options};

const KEY: &str = "keep-alive-test-secret-value";

/// A proxy, a closing origin, the sandbox at 127.0.0.2 allowed to reach it, and that sandbox's
/// HTTP/1.1 client tunnelled to it.
async fn closing_setup() -> (Harness, ClosingOrigin, String, Client) {
    let h = Harness::start().await;
    let closing = start_closing_origin(h.origin.tls_config.clone()).await;
    let authority = format!("api.example.test:{}", closing.addr.port());
    h.sandbox(
        2,
        std::slice::from_ref(&authority),
        &[("API_KEY", 1, KEY, &[])],
    );
    let client = Client::through(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &authority,
        h.proxy.ca_cert_pem(),
        false,
    )
    .await;
    (h, closing, authority, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_request_on_a_closed_keep_alive_connection_is_retried() {
    let (_h, closing, authority, mut client) = closing_setup().await;
    let get = |path: &str| {
        Request::get(path)
            .header("host", authority.as_str())
            .header("x-api-key", token(1).as_str())
            .body(body(""))
            .unwrap()
    };
    let (status, _, answer) = client.send(get("/first")).await;
    assert_eq!((status, answer.as_slice()), (200, &b"connection 1"[..]));
    let (status, _, answer) = client.send(get("/second")).await;
    assert_eq!(
        (status, String::from_utf8_lossy(&answer).into_owned()),
        (200, "connection 2".to_owned()),
        "the closed keep-alive connection must not become a 502"
    );
    let seen = closing.seen();
    assert_eq!(
        seen,
        vec![
            (1, "GET /first HTTP/1.1".to_owned()),
            (1, "GET /second HTTP/1.1".to_owned()),
            (2, "GET /second HTTP/1.1".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_with_a_body_on_a_closed_keep_alive_connection_is_not_replayed() {
    let (_h, closing, authority, mut client) = closing_setup().await;
    let first = Request::get("/first")
        .header("host", authority.as_str())
        .body(body(""))
        .unwrap();
    assert_eq!(client.send(first).await.0, 200);
    let post = Request::post("/pay")
        .header("host", authority.as_str())
        .body(body(format!("key={}", token(1))))
        .unwrap();
    let (status, _, answer) = client.send(post).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert_eq!(status, 502, "{answer}");
    assert!(answer.contains("upstream_failure"), "{answer}");
    let posts = closing
        .seen()
        .iter()
        .filter(|(_, line)| line.starts_with("POST"))
        .count();
    assert_eq!(posts, 1, "a POST must reach the origin at most once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_of_one_sandbox_share_upstream_connections_but_sandboxes_do_not() {
    // One lane: pooled upstream connections are shared within a lane, and this test is about
    // sharing across client connections, not about how connections spread over lanes.
    let h = Harness::start_with(Options {
        lanes: Some(1),
        ..Options::default()
    })
    .await;
    let allow = vec![h.at("api.example.test")];
    let first_sandbox = h.sandbox(2, &allow, &[("API_KEY", 1, KEY, &[])]);
    let second_sandbox = h.sandbox(3, &allow, &[("API_KEY", 2, KEY, &[])]);
    let echo = || {
        Request::get("/echo")
            .header("host", h.at("api.example.test"))
            .body(body(""))
            .unwrap()
    };
    for _ in 0..3 {
        let mut client = h.client(2, "api.example.test", false).await;
        assert_eq!(client.send(echo()).await.0, 200);
    }
    let pools = h.proxy.upstream_pools();
    assert_eq!(
        pools.pooled_for(first_sandbox),
        1,
        "one upstream connection, reused"
    );
    assert_eq!(pools.pooled_for(second_sandbox), 0);
    let mut other = h.client(3, "api.example.test", false).await;
    assert_eq!(other.send(echo()).await.0, 200);
    assert_eq!(pools.pooled_for(second_sandbox), 1, "its own connection");
    assert_eq!(pools.pooled_for(first_sandbox), 1);
    h.proxy.registry().unregister(first_sandbox).unwrap();
    // The pruning task runs every 5 s; allow for a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pools.pooled_for(first_sandbox) > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        pools.pooled_for(first_sandbox),
        0,
        "pruned with its session"
    );
    assert_eq!(
        pools.pooled_for(second_sandbox),
        1,
        "the other sandbox keeps its own"
    );
}
