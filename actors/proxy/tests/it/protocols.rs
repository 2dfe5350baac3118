//! Protocol coverage: HTTP/2 on both legs (curl --http2 and a Rust h2 client), Expect:
//! 100-continue, WebSocket upgrade with substitution then a frame relay, transparent mode with the
//! original destination injected, pre-minted certificates and metrics.

use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::client::{body, connect_from, Client};
use crate::support::harness::{sandbox_ip, token, Harness};
use crate::support::ws;

const KEY: &str = "protocol-test-secret-value";

async fn harness() -> Harness {
    let h = Harness::start().await;
    let allow = vec![h.at("api.example.test")];
    h.sandbox(2, &allow, &[("API_KEY", 1, KEY, &[])]);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_http2_is_not_downgraded() {
    let h = harness().await;
    let header = format!("X-Api-Key: {}", token(1));
    let out = h
        .curl(
            2,
            &[
                "--http2",
                "-i",
                "-H",
                &header,
                &h.url("api.example.test", "/echo"),
            ],
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.body.contains("\r\nHTTP/2 200"), "{out:?}");
    let received = h.origin.last();
    assert_eq!(received.version, "HTTP/2.0");
    assert_eq!(received.header("x-api-key").as_deref(), Some(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_h2_client_streams_and_multiplexes() {
    let h = harness().await;
    let mut client = h.client(2, "api.example.test", true).await;
    for round in 0..3 {
        let uri = h.url(
            "api.example.test",
            &format!("/echo?r={round}&k={}", token(1)),
        );
        let request = Request::post(uri)
            .body(body(format!("body {}", token(1))))
            .unwrap();
        let (status, _, echoed) = client.send(request).await;
        assert_eq!(status, 200);
        let echoed = String::from_utf8(echoed).unwrap();
        assert!(!echoed.contains(KEY));
        assert_eq!(h.origin.last().body, format!("body {KEY}").into_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_honoured() {
    let h = harness().await;
    let data = format!("k={}", token(1));
    let out = h
        .curl(
            2,
            &[
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                &data,
                &h.url("api.example.test", "/sink"),
            ],
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(h.origin.last().body, format!("k={KEY}").into_bytes());
    assert!(h.origin.last().header("expect").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_substitutes_then_relays_frames() {
    let h = harness().await;
    let mut client = h.client(2, "api.example.test", false).await;
    let request = Request::get("/ws")
        .header("host", h.at("api.example.test"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-protocol", token(1).as_str())
        .body(body(""))
        .unwrap();
    let response = client.send_raw(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        h.origin.last().header("sec-websocket-protocol").as_deref(),
        Some(KEY)
    );
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    let frame = ws::frame(
        true,
        ws::TEXT,
        Some([1, 2, 3, 4]),
        b"ping through the relay",
    );
    io.write_all(&frame).await.unwrap();
    let (fin, opcode, masked, payload) = ws::read_frame(&mut io).await.unwrap();
    assert!(fin && !masked);
    assert_eq!(
        (opcode, payload.as_slice()),
        (ws::TEXT, &b"ping through the relay"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_mode_uses_sni_and_the_original_port() {
    let h = harness().await;
    let transparent = h.proxy.transparent_addr().unwrap();
    let stream = connect_from(sandbox_ip(2), transparent).await;
    let mut client = Client::over(stream, h.proxy.ca_cert_pem(), "api.example.test", false).await;
    let request = Request::get("/echo")
        .header("host", h.at("api.example.test"))
        .header("x-api-key", token(1).as_str())
        .body(body(""))
        .unwrap();
    let (status, _, _) = client.send(request).await;
    assert_eq!(status, 200);
    assert_eq!(h.origin.last().header("x-api-key").as_deref(), Some(KEY));
    // An SNI outside the allowlist is refused before a certificate is minted for it: the
    // handshake fails and the refusal is an event (see `minting`).
    let stream = connect_from(sandbox_ip(2), transparent).await;
    let connector = tokio_rustls::TlsConnector::from(crate::support::client::tls_config(
        h.proxy.ca_cert_pem(),
        &[b"http/1.1"],
    ));
    let name = rustls::pki_types::ServerName::try_from("evil.test").unwrap();
    assert!(connector.connect(name, stream).await.is_err());
    assert!(format!("{:?}", h.events()).contains("HostNotAllowed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_pre_mints_and_metrics_count() {
    let h = harness().await;
    let cache = h.proxy.leaf_cache().clone();
    let mut waited = 0;
    while cache.cached("api.example.test").is_none() && waited < 500 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    assert!(
        cache.cached("api.example.test").is_some(),
        "pre-minted certificate missing"
    );
    let out = h.curl(2, &[&h.url("api.example.test", "/echo")]).await;
    assert_eq!(out.status, 200);
    let metrics = h.proxy.render_metrics();
    assert!(metrics.contains("osb_proxy_requests_total 1"), "{metrics}");
    assert!(
        metrics.contains("osb_proxy_cert_mints_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("osb_proxy_cert_cache_hits_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_plain_http_uses_the_host_header_and_never_carries_secrets() {
    use crate::support::harness::Options;
    let h = Harness::start_with(Options {
        transparent_to_plain: true,
        ..Options::default()
    })
    .await;
    let plain = format!("api.example.test:{}", h.plain_port());
    h.sandbox(2, std::slice::from_ref(&plain), &[("API_KEY", 1, KEY, &[])]);
    let transparent = h.proxy.transparent_addr().unwrap();
    let mut stream = connect_from(sandbox_ip(2), transparent).await;
    let request = format!("GET /echo HTTP/1.1\r\nHost: {plain}\r\nConnection: keep-alive\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 4096];
    let read = stream.read(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response[..read]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(h.origin.count(), 1);
    let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(
        connect_from(sandbox_ip(2), transparent).await,
    ))
    .await
    .unwrap();
    tokio::spawn(connection);
    let mut client = Client::H1(sender);
    let request = Request::get("/echo")
        .header("host", plain.as_str())
        .header("x-api-key", token(1).as_str())
        .body(body(""))
        .unwrap();
    let (status, _, reason) = client.send(request).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&reason).contains("plaintext_secret"));
    assert_eq!(h.origin.count(), 1);
}
