//! Every read has a timeout and HTTP/2 floods are bounded (issue 11 item 6): a connection that
//! sends nothing after being redirected, a TLS client that stops mid-handshake, a request head
//! or body that stalls — each is closed (with a 408 where a request was under way) and counted;
//! HTTP/2 clients see the stream limit, oversized header lists are refused, and a client that
//! opens and resets streams without end loses its connection.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use osb_proxy::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::client::{connect_from, connect_tunnel, tls_config};
use crate::support::harness::{sandbox_ip, Harness, Options};

fn quick() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(300),
        head_timeout: Duration::from_millis(300),
        body_idle_timeout: Duration::from_millis(300),
        max_concurrent_streams: 7,
        max_header_bytes: 16 * 1024,
        ..Limits::default()
    }
}

async fn harness() -> Harness {
    let h = Harness::start_with(Options {
        limits: Some(quick()),
        ..Options::default()
    })
    .await;
    h.sandbox(2, &[h.at("api.example.test")], &[]);
    h
}

/// Reads until the peer closes (or 5 s pass); what arrived.
async fn until_closed<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut seen)).await;
    read.ok().map(|_| seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redirected_connection_and_a_stalled_handshake_are_closed() {
    let h = harness().await;
    let transparent = h.proxy.transparent_addr().unwrap();
    let mut silent = connect_from(sandbox_ip(2), transparent).await;
    assert!(
        until_closed(&mut silent).await.is_some(),
        "closed after the pre-TLS timeout"
    );
    // A TLS record header and nothing more: the client hello never completes.
    let mut stalled = connect_from(sandbox_ip(2), transparent).await;
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    assert!(
        until_closed(&mut stalled).await.is_some(),
        "closed after the handshake timeout"
    );
    // The counters move as the proxy's tasks finish, right around the close the client saw.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while (h.proxy.metrics().timeouts() < 2 || h.proxy.open_connections() > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        h.proxy.metrics().timeouts() >= 2,
        "{}",
        h.proxy.render_metrics()
    );
    assert_eq!(h.proxy.open_connections(), 0, "slots given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_head_or_body_on_the_express_lane_gets_a_408() {
    let h = harness().await;
    for partial in [
        format!(
            "GET /echo HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
            h.at("api.example.test")
        ),
        format!(
            "POST /echo HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\nonly part",
            h.at("api.example.test")
        ),
    ] {
        let stream = connect_tunnel(
            sandbox_ip(2),
            h.proxy.explicit_addr(),
            &h.at("api.example.test"),
        )
        .await
        .unwrap();
        let connector =
            tokio_rustls::TlsConnector::from(tls_config(h.proxy.ca_cert_pem(), &[b"http/1.1"]));
        let name = rustls::pki_types::ServerName::try_from("api.example.test").unwrap();
        let mut tls = connector.connect(name, stream).await.unwrap();
        tls.write_all(partial.as_bytes()).await.unwrap();
        let answer = until_closed(&mut tls).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("request_timeout"), "{text}");
    }
    assert_eq!(h.origin.count(), 0, "nothing half-read went upstream");
}

async fn h2_client(h: &Harness) -> h2::client::SendRequest<Bytes> {
    let stream = connect_tunnel(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &h.at("api.example.test"),
    )
    .await
    .unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_config(h.proxy.ca_cert_pem(), &[b"h2"]));
    let name = rustls::pki_types::ServerName::try_from("api.example.test").unwrap();
    let tls = connector.connect(name, stream).await.unwrap();
    let (sender, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.ready().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_see_the_stream_limit_and_oversized_header_lists_are_refused() {
    let h = harness().await;
    let mut sender = h2_client(&h).await;
    // One exchange first, so the proxy's SETTINGS have surely been read.
    let (response, _) = sender
        .send_request(
            Request::get(h.url("api.example.test", "/echo"))
                .body(())
                .unwrap(),
            true,
        )
        .unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    assert_eq!(sender.current_max_send_streams(), 7);
    let huge = "x".repeat(32 * 1024);
    let request = Request::get(h.url("api.example.test", "/echo"))
        .header("x-huge", huge)
        .body(())
        .unwrap();
    let refused = match sender.send_request(request, true) {
        Ok((response, _)) => match response.await {
            Ok(response) => response.status() == 431,
            Err(_) => true,
        },
        Err(_) => true,
    };
    assert!(refused, "a header list over the limit is refused");
    assert_eq!(
        h.origin.count(),
        1,
        "only the first request reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resets_streams_without_end_loses_its_connection() {
    let h = harness().await;
    let mut sender = h2_client(&h).await;
    let mut lost = false;
    for _ in 0..2_000 {
        let request = Request::post(h.url("api.example.test", "/sink"))
            .body(())
            .unwrap();
        let ready = match sender.clone().ready().await {
            Ok(ready) => ready,
            Err(_) => {
                lost = true;
                break;
            }
        };
        sender = ready;
        match sender.send_request(request, false) {
            Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => {
                lost = true;
                break;
            }
        }
    }
    assert!(
        lost,
        "2000 opened-and-reset streams did not cost the client its connection"
    );
}
