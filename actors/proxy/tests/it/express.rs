//! The express lane (ADR 0107) against the hyper path: the same requests through a proxy with
//! the lane and one without must reach the origin identically and give the sandbox the same
//! answers; a connection moves to hyper at the first request the lane leaves alone and keeps
//! working; a refusal on the lane leaves the connection usable.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::support::client::{body, Client, ClientBody};
use crate::support::harness::{token, Harness, Options};
use crate::support::origin::Received;

const KEY: &str = "express-lane-secret-value";

fn requests(authority: &str) -> Vec<Request<ClientBody>> {
    let t = token(1);
    let basic = STANDARD.encode(format!("user:{t}"));
    vec![
        Request::get(format!("/echo?key={t}&a=b"))
            .header("host", authority)
            .header("authorization", format!("Bearer {t}"))
            .header("x-other", "kept")
            .body(body(""))
            .unwrap(),
        Request::post("/echo")
            .header("host", authority)
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/json")
            .body(body(format!("{{\"key\":\"{t}\",\"n\":1}}")))
            .unwrap(),
        Request::get("/split-reflect")
            .header("host", authority)
            .header("x-reflect", t.as_str())
            .body(body(""))
            .unwrap(),
        Request::head("/echo")
            .header("host", authority)
            .body(body(""))
            .unwrap(),
        Request::get("/echo")
            .header("host", authority)
            .header("x-key", token(9).as_str())
            .body(body(""))
            .unwrap(),
    ]
}

type Seen = (String, String, Vec<(String, Vec<u8>)>, Vec<u8>);

/// What the origin saw, independent of header order and name case.
fn normalised(received: &Received) -> Seen {
    let mut headers: Vec<(String, Vec<u8>)> = received
        .headers
        .iter()
        .map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            // Each run has its own origin port.
            let value = if name == "host" {
                b"origin".to_vec()
            } else {
                value.clone()
            };
            (name, value)
        })
        .collect();
    headers.sort();
    (
        received.method.clone(),
        received.uri.clone(),
        headers,
        received.body.clone(),
    )
}

/// A proxy, the sandbox at 127.0.0.2 with one secret, and its HTTP/1.1 client tunnelled to the
/// origin.
async fn sandbox_with_client(options: Options) -> (Harness, String, Client) {
    let h = Harness::start_with(options).await;
    let authority = h.at("api.example.test");
    h.sandbox(
        2,
        std::slice::from_ref(&authority),
        &[("API_KEY", 1, KEY, &[])],
    );
    let client = h.client(2, "api.example.test", false).await;
    (h, authority, client)
}

/// An answer with its lines sorted and the origin's port taken out (`/echo` reflects the request
/// head in the order the origin received it, and each run has its own origin).
fn normalised_answer(answer: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(answer)
        .lines()
        .map(|line| {
            if line.starts_with("host: ") {
                "host: origin".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect();
    lines.sort();
    lines
}

/// (status, answer lines) and what the origin saw, for one proxy configuration.
async fn run(express: bool) -> (Vec<(u16, Vec<String>)>, Vec<Seen>) {
    let options = Options {
        express,
        ..Options::default()
    };
    let (h, authority, mut client) = sandbox_with_client(options).await;
    let mut answers = Vec::new();
    for request in requests(&authority) {
        let (status, _, answer) = client.send(request).await;
        answers.push((status, normalised_answer(&answer)));
    }
    let seen = h.origin.requests().iter().map(normalised).collect();
    let served = h.proxy.metrics().express_requests();
    assert_eq!(
        served,
        if express { answers.len() as u64 } else { 0 },
        "the lane serves every one of these requests when it is on, none when it is off"
    );
    (answers, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_and_hyper_send_and_answer_the_same() {
    let (lane_answers, lane_seen) = run(true).await;
    let (hyper_answers, hyper_seen) = run(false).await;
    assert_eq!(
        lane_seen, hyper_seen,
        "the origin must see the same requests"
    );
    assert_eq!(
        lane_answers, hyper_answers,
        "the sandbox must get the same answers"
    );
    // And the answers are the right ones: substituted upstream, scrubbed back, refused foreign.
    assert_eq!(
        lane_seen.len(),
        4,
        "the foreign token never reaches the origin"
    );
    let first = String::from_utf8_lossy(&lane_seen[0].3).into_owned();
    assert!(
        lane_seen[0].1.contains(&format!("key={KEY}")),
        "{:?}",
        lane_seen[0].1
    );
    assert!(first.is_empty());
    assert!(String::from_utf8_lossy(&lane_seen[1].3).contains(KEY));
    assert_eq!(lane_answers[2].1, vec![format!("start:{}:end", token(1))]);
    assert_eq!(lane_answers[4].0, 403);
    for (_, answer) in &lane_answers {
        assert!(!answer.concat().contains(KEY), "value leaked back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_moves_to_hyper_at_the_first_request_the_lane_leaves_and_keeps_working() {
    let (h, authority, mut client) = sandbox_with_client(Options::default()).await;
    let get = || {
        Request::get("/echo")
            .header("host", authority.as_str())
            .header("x-api-key", token(1).as_str())
            .body(body(""))
            .unwrap()
    };
    assert_eq!(client.send(get()).await.0, 200);
    // No length: the client sends a chunked body, which the lane leaves to hyper.
    let frames = vec![
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(format!("key={}", token(1))))),
        Ok(Frame::data(Bytes::from_static(b"&more=1"))),
    ];
    let chunked: ClientBody = StreamBody::new(futures_util::stream::iter(frames)).boxed();
    let post = Request::post("/sink")
        .header("host", authority.as_str())
        .body(chunked)
        .unwrap();
    assert_eq!(client.send(post).await.0, 200);
    assert_eq!(client.send(get()).await.0, 200);
    let seen = h.origin.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        h.proxy.metrics().express_requests(),
        1,
        "only the first request is the lane's: the connection stays with hyper after the move"
    );
    assert_eq!(seen[0].header("x-api-key").as_deref(), Some(KEY));
    assert_eq!(seen[1].body, format!("key={KEY}&more=1").into_bytes());
    assert_eq!(seen[2].header("x-api-key").as_deref(), Some(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_on_the_lane_leaves_the_connection_usable_and_is_reported() {
    let (h, authority, mut client) = sandbox_with_client(Options::default()).await;
    let with = |t: String| {
        Request::get("/echo")
            .header("host", authority.as_str())
            .header("x-api-key", t)
            .body(body(""))
            .unwrap()
    };
    let (status, _, answer) = client.send(with(token(9).to_string())).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&answer).contains("unknown_token"));
    let (status, _, _) = client.send(with(token(1).to_string())).await;
    assert_eq!(status, 200);
    assert_eq!(h.origin.count(), 1);
    let events = format!("{:?}", h.events());
    assert!(
        events.contains("EgressBlocked") && events.contains("SecretUsed"),
        "{events}"
    );
    assert!(!events.contains(KEY), "no value in events");
}
