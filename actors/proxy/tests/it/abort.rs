//! A refusal decided mid-body never lets the origin see a complete request (issue 11 item 4): a
//! foreign token straddling two chunks of a streamed body, found after the head already went
//! upstream, aborts the upstream request — no terminating chunk on HTTP/1.1, a reset stream on
//! HTTP/2 — so the origin cannot take the part it got for a whole request. Covered on the hyper
//! path (HTTP/1.1 chunked, HTTP/2, re-chunked `Content-Length`) and on the express lane (a
//! buffered body refused before anything goes upstream, a streamed one aborted mid-body).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;
use osb_proxy::OversizedBody;

use crate::support::client::{body, Client, ClientBody};
use crate::support::harness::{sandbox_ip, token, Harness, Options};
use crate::support::hostile_origin::{full, start_hostile_origin, Handler};

const KEY: &str = "abort-test-secret-value";

/// What the origin made of each request body: `Ok(bytes)` when it ended properly.
type Bodies = Arc<Mutex<Vec<Result<Vec<u8>, String>>>>;

fn recording_origin(bodies: Bodies) -> Handler {
    Arc::new(move |request: Request<hyper::body::Incoming>| {
        let bodies = Arc::clone(&bodies);
        Box::pin(async move {
            let outcome = request.into_body().collect().await;
            let outcome = outcome
                .map(|collected| collected.to_bytes().to_vec())
                .map_err(|error| error.to_string());
            bodies.lock().unwrap().push(outcome);
            Response::new(full("done"))
        })
    })
}

/// A body sent in three pieces with pauses, a foreign token cut between the last two.
fn straddling_body() -> ClientBody {
    let foreign = token(9).to_string();
    let (left, right) = foreign.split_at(20);
    let pieces = vec![
        Bytes::from(format!("first={KEY_TOKEN}&", KEY_TOKEN = token(1))),
        Bytes::from(format!("second=x&stolen={left}")),
        Bytes::from(format!("{right}&end=1")),
    ];
    let stream = futures_util::stream::unfold(pieces.into_iter(), |mut pieces| async move {
        let piece = pieces.next()?;
        tokio::time::sleep(Duration::from_millis(150)).await;
        Some((Ok::<_, std::io::Error>(Frame::data(piece)), pieces))
    });
    http_body_util::StreamBody::new(stream).boxed()
}

/// Runs the case; returns how many requests the express lane served.
async fn run(options: Options, http2: bool, with_length: bool) -> u64 {
    let h = Harness::start_with(options).await;
    let bodies: Bodies = Arc::default();
    let origin = start_hostile_origin(
        h.origin.tls_config.clone(),
        recording_origin(Arc::clone(&bodies)),
    )
    .await;
    let authority = format!("api.example.test:{}", origin.port());
    h.sandbox(2, std::slice::from_ref(&authority), &[("KEY", 1, KEY, &[])]);
    let mut client = Client::through(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &authority,
        h.proxy.ca_cert_pem(),
        http2,
    )
    .await;
    let uri = if http2 {
        format!("https://{authority}/upload")
    } else {
        "/upload".to_owned()
    };
    let mut request = Request::post(uri).header("host", authority.as_str());
    if with_length {
        let length = format!("first={}&second=x&stolen={}&end=1", token(1), token(9)).len();
        request = request.header("content-length", length);
    }
    let outcome = client
        .send_raw(request.body(straddling_body()).unwrap())
        .await;
    if let Ok(response) = outcome {
        assert_ne!(response.status(), 200, "the refused request cannot succeed");
    }
    // Give the origin time to notice the aborted stream.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let case = format!("http2={http2} length={with_length}");
    for outcome in bodies.lock().unwrap().iter() {
        assert!(
            outcome.is_err(),
            "{case}: the origin received a complete request: {:?}",
            outcome
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        );
    }
    let blocked = format!("{:?}", h.events());
    assert!(blocked.contains("UnknownToken"), "{case}: {blocked}");
    h.proxy.metrics().express_requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_http1_upload_is_aborted_upstream() {
    // The express lane is on: the chunked upload moves the connection to hyper.
    run(Options::default(), false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_upload_is_reset_upstream() {
    run(Options::default(), true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rechunked_content_length_upload_is_aborted_upstream_on_hyper() {
    let served_by_express = run(
        Options {
            max_buffered_body: 16,
            oversized_body: OversizedBody::Rechunk,
            express: false,
            ..Options::default()
        },
        false,
        true,
    )
    .await;
    assert_eq!(served_by_express, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_upload_streamed_by_the_express_lane_is_aborted_upstream() {
    // Longer than the whole-body threshold: the express lane streams it (issue 19).
    let options = Options {
        max_buffered_body: 16,
        oversized_body: OversizedBody::Rechunk,
        ..Options::default()
    };
    assert_eq!(run(options, false, true).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_express_lane_refuses_a_buffered_body_before_anything_goes_upstream() {
    let h = Harness::start().await;
    let bodies: Bodies = Arc::default();
    let origin = start_hostile_origin(
        h.origin.tls_config.clone(),
        recording_origin(Arc::clone(&bodies)),
    )
    .await;
    let authority = format!("api.example.test:{}", origin.port());
    h.sandbox(2, std::slice::from_ref(&authority), &[("KEY", 1, KEY, &[])]);
    let mut client = Client::through(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &authority,
        h.proxy.ca_cert_pem(),
        false,
    )
    .await;
    let request = Request::post("/upload")
        .header("host", authority.as_str())
        .body(body(format!("a={}&b={}", token(1), token(9))))
        .unwrap();
    let (status, _, _) = client.send(request).await;
    assert_eq!(status, 403);
    assert!(h.proxy.metrics().express_requests() > 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        bodies.lock().unwrap().is_empty(),
        "nothing reached the origin"
    );
}
