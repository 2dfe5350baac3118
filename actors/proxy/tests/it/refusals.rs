//! Every refusal answers with the right status and a JSON reason, and nothing reaches the origin:
//! unknown source, foreign token, wrong host, wildcard vs apex, port rules, fronting, private
//! upstream, plaintext secrets, oversized bodies, upstream failure.

use http::Request;
use osb_proxy::{OversizedBody, ProxyEvent};
use serde_json::Value;

use crate::support::client::{body, connect_tunnel, Client};
use crate::support::harness::{sandbox_ip, token, Harness, Options};

const KEY: &str = "refusal-test-secret-value";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not json: {text}"))
}

async fn harness(options: Options) -> Harness {
    let h = Harness::start_with(options).await;
    let allow = vec![h.at("api.example.test"), h.at("*.example.test")];
    let pinned = vec![h.at("api.example.test")];
    h.sandbox(2, &allow, &[("PINNED", 1, KEY, &pinned)]);
    h.sandbox(3, &allow, &[("B_KEY", 9, "sandbox-b-value", &[])]);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_source_gets_407_json() {
    let h = harness(Options::default()).await;
    let out = h
        .curl(9, &["-H", "x: 1", &h.url("api.example.test", "/echo")])
        .await;
    // curl reports the CONNECT failure; read the answer with the raw client too.
    assert_ne!(out.status, 200);
    let (status, text) = connect_tunnel(
        sandbox_ip(9),
        h.proxy.explicit_addr(),
        &h.at("api.example.test"),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 407);
    assert_eq!(json(&text)["code"], "unknown_source");
    assert_eq!(h.origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_token_is_refused_and_never_forwarded() {
    let h = harness(Options::default()).await;
    let header = format!("X-Api-Key: {}", token(9));
    let out = h
        .curl(2, &["-H", &header, &h.url("api.example.test", "/echo")])
        .await;
    assert_eq!(out.status, 403, "{out:?}");
    assert_eq!(json(&out.body)["code"], "unknown_token");
    assert_eq!(h.origin.count(), 0);
    let blocked = h.events().into_iter().any(|event| {
        matches!(
            event,
            ProxyEvent::EgressBlocked {
                code: osb_proto::ErrorCode::UnknownToken,
                ..
            }
        )
    });
    assert!(blocked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_to_a_host_it_does_not_allow_names_the_secret() {
    let h = harness(Options::default()).await;
    let header = format!("Authorization: Bearer {}", token(1));
    let out = h
        .curl(2, &["-H", &header, &h.url("other.example.test", "/echo")])
        .await;
    assert_eq!(out.status, 403, "{out:?}");
    let reason = json(&out.body);
    assert_eq!(reason["code"], "secret_not_allowed_for_host");
    assert_eq!(reason["secret"], "PINNED");
    assert_eq!(reason["host"], "other.example.test");
    assert!(!out.body.contains(KEY) && !out.body.contains(token(1).as_str()));
    assert_eq!(h.origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_covers_subdomains_not_the_apex_and_ports_must_match() {
    let h = harness(Options::default()).await;
    let sub = h.curl(2, &[&h.url("b.a.example.test", "/echo")]).await;
    assert_eq!(sub.status, 200, "{sub:?}");
    let (status, text) = connect_tunnel(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &h.at("example.test"),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 403);
    assert_eq!(json(&text)["code"], "host_not_allowed");
    // Allowlisted with the origin's port only: 443 is refused.
    let (status, _) = connect_tunnel(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        "api.example.test:443",
    )
    .await
    .unwrap_err();
    assert_eq!(status, 403);
    // A pattern without a port allows 443/80 only, not the origin's port.
    h.sandbox(4, &["api.example.test".to_string()], &[]);
    let (status, _) = connect_tunnel(
        sandbox_ip(4),
        h.proxy.explicit_addr(),
        &h.at("api.example.test"),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 403);
    assert_eq!(h.origin.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fronting_by_host_header_or_sni_is_misdirected() {
    let h = harness(Options::default()).await;
    let out = h
        .curl(
            2,
            &["-H", "Host: evil.test", &h.url("api.example.test", "/echo")],
        )
        .await;
    assert_eq!(out.status, 421, "{out:?}");
    assert_eq!(json(&out.body)["code"], "misdirected_request");
    // CONNECT to one host, TLS SNI for another.
    let stream = connect_tunnel(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &h.at("api.example.test"),
    )
    .await
    .unwrap();
    let ca = h.proxy.ca_cert_pem().to_owned();
    let mut client = Client::over(stream, &ca, "api.example.test", false).await;
    let request = Request::get("/echo")
        .header("host", h.at("a.example.test"))
        .body(body(""))
        .unwrap();
    assert_eq!(client.send(request).await.0, 421);
    assert_eq!(h.origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_upstream_is_refused_unless_configured() {
    let h = harness(Options {
        allow_loopback: false,
        ..Options::default()
    })
    .await;
    let out = h.curl(2, &[&h.url("api.example.test", "/echo")]).await;
    assert_eq!(out.status, 403, "{out:?}");
    assert_eq!(json(&out.body)["code"], "forbidden_upstream_address");
    assert_eq!(h.origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_allowed_without_secrets_and_refused_with_one() {
    let h = Harness::start().await;
    let plain = format!("api.example.test:{}", h.plain_port());
    h.sandbox(
        2,
        std::slice::from_ref(&plain),
        &[("PLAIN_KEY", 1, KEY, &[])],
    );
    let url = format!("http://{plain}/echo");
    let ok = h.curl(2, &[&url]).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let header = format!("X-Api-Key: {}", token(1));
    let refused = h.curl(2, &["-H", &header, &url]).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(json(&refused.body)["code"], "plaintext_secret");
    let in_body = h
        .curl(2, &["--data-binary", &format!("k={}", token(1)), &url])
        .await;
    assert_eq!(in_body.status, 403);
    assert_eq!(h.origin.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_content_length_body_gets_413() {
    let h = harness(Options {
        max_buffered_body: 1024,
        oversized_body: OversizedBody::Refuse,
        ..Options::default()
    })
    .await;
    let data = "x".repeat(4096);
    let out = h
        .curl(
            2,
            &["--data-binary", &data, &h.url("api.example.test", "/sink")],
        )
        .await;
    assert_eq!(out.status, 413, "{out:?}");
    let reason = json(&out.body);
    assert_eq!(reason["code"], "payload_too_large");
    assert!(reason["error"].as_str().unwrap().contains("chunked"));
    assert_eq!(h.origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_rechunked_when_configured() {
    let h = harness(Options {
        max_buffered_body: 1024,
        oversized_body: OversizedBody::Rechunk,
        ..Options::default()
    })
    .await;
    let data = format!("{}{}", "x".repeat(4096), token(1));
    let out = h
        .curl(
            2,
            &["--data-binary", &data, &h.url("api.example.test", "/sink")],
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(
        h.origin.last().body,
        format!("{}{KEY}", "x".repeat(4096)).into_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failure_is_a_502_with_a_reason() {
    let h = Harness::start().await;
    // Nothing listens on port 9 of loopback.
    h.sandbox(2, &["api.example.test:9".to_string()], &[]);
    let out = h.curl(2, &["https://api.example.test:9/echo"]).await;
    assert_eq!(out.status, 502, "{out:?}");
    let reason = json(&out.body);
    assert_eq!(reason["code"], "upstream_failure");
    assert!(reason["error"].as_str().unwrap().contains("connect"));
}
