//! No scrubbing oracle (issue 11 item 1, DESIGN §6 rule 6): an allowed origin the attacker
//! controls probes candidate prefixes of a secret it never received (the secret is pinned to
//! another host) by streaming `…start:<guess>` and pausing. Whatever the guess, the sandbox must
//! receive the same bytes before the pause and the same body in the end — on the express lane and
//! on hyper, HTTP/1.1 and HTTP/2, chunked and `Content-Length` responses.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;

use crate::support::client::{body, Client};
use crate::support::harness::{sandbox_ip, Harness, Options};
use crate::support::hostile_origin::{channel_body, start_hostile_origin, BodySlot, Handler};

const SECRET: &str = "sk-live-7Hq2mZ9xR4vB8nK1pW6tY3cD";

/// Reads body frames until nothing new arrived for 300 ms (at most 5 s).
async fn read_until_quiet(body: &mut hyper::body::Incoming, into: &mut Vec<u8>) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout(Duration::from_millis(300), body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    into.extend_from_slice(&data);
                }
            }
            Ok(_) => return true,
            Err(_) => return false,
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
    }
}

struct Probe {
    before_pause: Vec<u8>,
    total: Vec<u8>,
}

async fn probe(
    client: &mut Client,
    slot: &BodySlot,
    uri: &str,
    authority: &str,
    guess: &[u8],
    with_length: bool,
) -> Probe {
    let mut first = vec![b'x'; 300];
    first.extend_from_slice(b"start:");
    first.extend_from_slice(guess);
    let second = b":end".to_vec();
    let (sender, response_body) = channel_body();
    slot.put(response_body);
    let mut request = Request::get(uri).header("host", authority);
    if with_length {
        request = request.header("x-length", (first.len() + second.len()).to_string());
    }
    let response = client
        .send_raw(request.body(body("")).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut incoming = response.into_body();
    sender.send(Frame::data(Bytes::from(first))).unwrap();
    let mut before_pause = Vec::new();
    let ended = read_until_quiet(&mut incoming, &mut before_pause).await;
    assert!(
        !ended,
        "the body cannot end before the origin's second write"
    );
    sender.send(Frame::data(Bytes::from(second))).unwrap();
    drop(sender);
    let mut total = before_pause.clone();
    while let Some(frame) = incoming.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            total.extend_from_slice(&data);
        }
    }
    Probe {
        before_pause,
        total,
    }
}

async fn no_oracle(options: Options, http2: bool) {
    let h = Harness::start_with(Options {
        // Small enough that `Content-Length` responses stream too.
        max_buffered_body: 64,
        ..options
    })
    .await;
    let slot = BodySlot::default();
    let handler_slot = slot.clone();
    let handler: Handler = std::sync::Arc::new(move |request: Request<hyper::body::Incoming>| {
        let slot = handler_slot.clone();
        Box::pin(async move {
            let length = request.headers().get("x-length").cloned();
            let mut response = Response::new(slot.take());
            if let Some(length) = length {
                response.headers_mut().insert("content-length", length);
            }
            response
        })
    });
    let hostile = start_hostile_origin(h.origin.tls_config.clone(), handler).await;
    let authority = format!("other.example.test:{}", hostile.port());
    let pinned = vec![h.at("api.example.test")];
    h.sandbox(
        2,
        &[h.at("api.example.test"), authority.clone()],
        &[("PINNED", 1, SECRET, &pinned)],
    );
    let mut client = Client::through(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &authority,
        h.proxy.ca_cert_pem(),
        http2,
    )
    .await;
    let uri = if http2 {
        format!("https://{authority}/probe")
    } else {
        "/probe".to_owned()
    };
    for with_length in [false, true] {
        for known in [4, 12, SECRET.len() - 1] {
            let right = &SECRET.as_bytes()[..known];
            let wrong: Vec<u8> = right
                .iter()
                .map(|b| if *b == b'q' { b'r' } else { b'q' })
                .collect();
            let right_probe = probe(&mut client, &slot, &uri, &authority, right, with_length).await;
            let wrong_probe =
                probe(&mut client, &slot, &uri, &authority, &wrong, with_length).await;
            let case = format!("http2={http2} length={with_length} prefix={known}");
            assert_eq!(
                right_probe.before_pause.len(),
                wrong_probe.before_pause.len(),
                "{case}: a right guess changed what arrived before the pause"
            );
            let swapped: Vec<u8> = wrong_probe
                .before_pause
                .windows(wrong.len())
                .position(|window| window == wrong.as_slice())
                .map(|at| {
                    let mut bytes = wrong_probe.before_pause.clone();
                    bytes[at..at + wrong.len()].copy_from_slice(right);
                    bytes
                })
                .unwrap_or_else(|| wrong_probe.before_pause.clone());
            assert_eq!(
                right_probe.before_pause, swapped,
                "{case}: different bytes before the pause"
            );
            assert_eq!(right_probe.total.len(), wrong_probe.total.len(), "{case}");
            let mut expected = vec![b'x'; 300];
            expected.extend_from_slice(b"start:");
            expected.extend_from_slice(right);
            expected.extend_from_slice(b":end");
            assert_eq!(
                right_probe.total, expected,
                "{case}: a prefix is not a value and passes as it is"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_origin_learns_nothing_from_prefixes_on_the_express_lane() {
    no_oracle(Options::default(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_origin_learns_nothing_from_prefixes_through_hyper_http1() {
    no_oracle(
        Options {
            express: false,
            ..Options::default()
        },
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_origin_learns_nothing_from_prefixes_over_http2() {
    no_oracle(Options::default(), true).await;
}
