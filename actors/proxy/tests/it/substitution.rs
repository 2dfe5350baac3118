//! Token substitution at every point: headers, Basic auth, path, query, JSON and chunked bodies,
//! split tokens, two secrets, exact Content-Length, updates mid-connection, reflection scrubbing.

use http::Request;
use osb_proxy::{ProxyEvent, SecretValue};
use sha2::{Digest, Sha256};

use crate::support::client::body;
use crate::support::harness::{token, Harness};

const KEY: &str = "sk-live-header-value-0001";
const OTHER: &str = "second-secret-value-0002";

async fn harness() -> Harness {
    let harness = Harness::start().await;
    let allow = vec![harness.at("api.example.test"), harness.at("*.example.test")];
    let api_only = vec![harness.at("api.example.test")];
    harness.sandbox(
        2,
        &allow,
        &[("API_KEY", 1, KEY, &[]), ("OTHER_KEY", 2, OTHER, &api_only)],
    );
    harness
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_token_is_replaced_and_echo_is_scrubbed() {
    let h = harness().await;
    let header = format!("X-Api-Key: {}", token(1));
    let out = h
        .curl(2, &["-H", &header, &h.url("api.example.test", "/echo")])
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(h.origin.last().header("x-api-key").as_deref(), Some(KEY));
    // The origin echoed the value; the sandbox sees its token instead.
    assert!(!out.body.contains(KEY));
    assert!(out.body.contains(token(1).as_str()));
    let used = h.events().into_iter().find_map(|event| match event {
        ProxyEvent::SecretUsed {
            secret_names,
            host,
            method,
            path,
            ..
        } => Some((secret_names, host, method, path)),
        _ => None,
    });
    assert_eq!(
        used,
        Some((
            vec!["API_KEY".to_string()],
            "api.example.test".to_string(),
            "GET".to_string(),
            "/echo".to_string()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_query_and_path() {
    let h = harness().await;
    let user = format!("user:{}", token(1));
    let url = h.url(
        "api.example.test",
        &format!("/v1/{}/echo?key={}&x=1", token(1), token(2)),
    );
    let out = h.curl(2, &["-u", &user, &url]).await;
    assert_eq!(out.status, 200, "{out:?}");
    let received = h.origin.last();
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("user:{KEY}"))
    );
    assert_eq!(
        received.header("authorization").as_deref(),
        Some(expected.as_str())
    );
    let uri: http::Uri = received.uri.parse().unwrap();
    assert_eq!(
        uri.path_and_query().unwrap().as_str(),
        format!("/v1/{KEY}/echo?key={OTHER}&x=1")
    );
    let used = h.events().into_iter().find_map(|event| match event {
        ProxyEvent::SecretUsed {
            secret_names, path, ..
        } => Some((secret_names, path)),
        _ => None,
    });
    assert_eq!(
        used,
        Some((
            vec!["API_KEY".to_string(), "OTHER_KEY".to_string()],
            "/v1/{API_KEY}/echo".to_string()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_body_gets_an_exact_content_length() {
    let h = harness().await;
    let json = format!("{{\"key\":\"{}\",\"other\":\"{}\"}}", token(1), token(2));
    let out = h
        .curl(
            2,
            &[
                "--http1.1",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &json,
                &h.url("api.example.test", "/sink"),
            ],
        )
        .await;
    let expected = format!("{{\"key\":\"{KEY}\",\"other\":\"{OTHER}\"}}");
    let digest = hex::encode(Sha256::digest(expected.as_bytes()));
    assert_eq!(
        out.body,
        format!("len={} sha256={digest}", expected.len()),
        "{out:?}"
    );
    assert_eq!(
        h.origin.last().header("content-length"),
        Some(expected.len().to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_is_substituted_while_streaming() {
    let h = harness().await;
    let data = format!("a={}&b=tail", token(1));
    let out = h
        .curl(
            2,
            &[
                "--http1.1",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                &data,
                &h.url("api.example.test", "/sink"),
            ],
        )
        .await;
    let expected = format!("a={KEY}&b=tail");
    let digest = hex::encode(Sha256::digest(expected.as_bytes()));
    assert_eq!(
        out.body,
        format!("len={} sha256={digest}", expected.len()),
        "{out:?}"
    );
    assert!(h.origin.last().header("content-length").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_split_at_every_offset_on_one_keep_alive_connection() {
    let h = harness().await;
    let mut client = h.client(2, "api.example.test", false).await;
    let payload = format!("prefix-{}-suffix", token(1));
    let expected = format!("prefix-{KEY}-suffix");
    let digest = hex::encode(Sha256::digest(expected.as_bytes()));
    let start = payload.find("osb_sealed_").unwrap();
    for split in start..=start + 43 {
        let (left, right) = payload.as_bytes().split_at(split);
        let frames: Vec<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>> = vec![
            Ok(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(
                left,
            ))),
            Ok(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(
                right,
            ))),
        ];
        let streamed = http_body_util::BodyExt::boxed(http_body_util::StreamBody::new(
            futures_util::stream::iter(frames),
        ));
        let request = Request::post("/sink")
            .header("host", h.at("api.example.test"))
            .body(streamed)
            .unwrap();
        let (status, _, body) = client.send(request).await;
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            format!("len={} sha256={digest}", expected.len()),
            "split at {split}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_value_applies_to_the_next_request_on_the_same_connection() {
    let h = harness().await;
    let sandbox = h.proxy.registry().sandbox_ids()[0];
    let mut client = h.client(2, "api.example.test", false).await;
    let request = || {
        Request::get("/echo")
            .header("host", h.at("api.example.test"))
            .header("x-api-key", token(1).as_str())
            .body(body(""))
            .unwrap()
    };
    assert_eq!(client.send(request()).await.0, 200);
    assert_eq!(h.origin.last().header("x-api-key").as_deref(), Some(KEY));
    h.proxy
        .registry()
        .update_secret_value(sandbox, "API_KEY", SecretValue::from("rotated-value-0003"))
        .unwrap();
    assert_eq!(client.send(request()).await.0, 200);
    assert_eq!(
        h.origin.last().header("x-api-key").as_deref(),
        Some("rotated-value-0003")
    );
    // Unregistered: the very next request on the same connection is refused.
    h.proxy.registry().unregister(sandbox).unwrap();
    let (status, _, refusal) = client.send(request()).await;
    assert_eq!(status, 407);
    assert!(String::from_utf8_lossy(&refusal).contains("unknown_source"));
    assert_eq!(h.origin.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflected_values_are_scrubbed_in_headers_and_split_bodies() {
    let h = harness().await;
    let header = format!("X-Reflect: {}", token(1));
    let out = h
        .curl(
            2,
            &[
                "-i",
                "-H",
                &header,
                &h.url("api.example.test", "/split-reflect"),
            ],
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert!(!out.body.contains(KEY), "{}", out.body);
    assert!(
        out.body.contains(&format!("start:{}:end", token(1))),
        "{}",
        out.body
    );
    assert!(out
        .body
        .to_ascii_lowercase()
        .contains(&format!("x-reflect-back: {}", token(1))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_urllib_through_https_proxy() {
    let h = Harness::start().await;
    let allow = vec![h.at("api.example.test")];
    h.sandbox(1, &allow, &[("API_KEY", 1, KEY, &[])]);
    let script = "import os,ssl,sys,urllib.request\nctx=ssl.create_default_context(cafile=sys.argv[2])\nop=urllib.request.build_opener(urllib.request.ProxyHandler({'https':os.environ['HTTPS_PROXY']}),urllib.request.HTTPSHandler(context=ctx))\nr=urllib.request.Request(sys.argv[1],headers={'X-Api-Key':sys.argv[3]})\nprint(op.open(r).read().decode())\n";
    let url = h.url("api.example.test", "/echo");
    let ca = h.ca_file.path().to_owned();
    let proxy = format!("http://{}", h.proxy.explicit_addr());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("/usr/bin/python3")
            .args(["-c", script, &url, ca.to_str().unwrap(), token(1).as_str()])
            .env("HTTPS_PROXY", proxy)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(token(1).as_str()) && !stdout.contains(KEY));
    assert_eq!(h.origin.last().header("x-api-key").as_deref(), Some(KEY));
}
