//! Unit tests of the streaming bodies: substitution across frames and in trailers, a refusal
//! mid-stream, scrubbing across frames, and exactly one `secret_used` event per request.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use osb_proto::{HostPattern, SandboxId, SealedToken};

use super::*;
use crate::policy::{Scheme, SealingPolicy, Target};
use crate::secret_value::SecretValue;
use crate::session::{SealedSecret, Session};
use crate::transform::TransformedBody;

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<ProxyEvent>>);

impl EventSink for Recorder {
    fn emit(&self, event: ProxyEvent) {
        self.0.lock().unwrap().push(event);
    }
}

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

fn session() -> Arc<Session> {
    let secret = Arc::new(SealedSecret {
        name: "KEY".into(),
        token: token(1),
        value: SecretValue::from("real-value"),
        allowed_hosts: vec![],
        version: 0,
    });
    Arc::new(Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        vec![HostPattern::parse("api.example.test").unwrap()],
        [secret],
    ))
}

fn frames(frames: Vec<Frame<Bytes>>) -> ProxyBody {
    let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, BodyError>));
    StreamBody::new(stream).boxed_unsync()
}

fn substituting(
    session: Arc<Session>,
    input: ProxyBody,
    sink: Arc<Recorder>,
) -> TransformedBody<Substitution> {
    let target = Target {
        scheme: Scheme::Https,
        host: "api.example.test".into(),
        port: 443,
    };
    let resolver = RequestSubstitution::new(SealingPolicy::default(), Arc::clone(&session), target);
    let ledger = RequestLedger::new(
        sink,
        Arc::new(ProxyMetrics::default()),
        session.sandbox_id,
        session.source_ip,
        "api.example.test".into(),
        "POST".into(),
        "/x".into(),
    );
    TransformedBody::new(
        input,
        Substitution::new(resolver, ledger),
        std::time::Duration::from_secs(60),
        None,
    )
}

fn scrubbing(table: ScrubTable, input: ProxyBody) -> TransformedBody<Scrubbing> {
    TransformedBody::new(
        input,
        Scrubbing::new(table, None, Arc::new(ProxyMetrics::default())),
        std::time::Duration::from_secs(60),
        Some(std::time::Duration::from_millis(50)),
    )
}

#[tokio::test]
async fn substitutes_across_frames_and_in_trailers_with_one_event() {
    let sink = Arc::new(Recorder::default());
    let text = format!("a={}", token(1));
    let (left, right) = text.split_at(10);
    let mut trailers = http::HeaderMap::new();
    trailers.insert(
        "x-sig",
        http::HeaderValue::from_str(token(1).as_str()).unwrap(),
    );
    let input = frames(vec![
        Frame::data(Bytes::copy_from_slice(left.as_bytes())),
        Frame::data(Bytes::copy_from_slice(right.as_bytes())),
        Frame::trailers(trailers),
    ]);
    let collected = substituting(session(), input, Arc::clone(&sink))
        .collect()
        .await
        .unwrap();
    let trailers = collected.trailers().cloned().unwrap();
    assert_eq!(trailers["x-sig"], "real-value");
    assert_eq!(collected.to_bytes(), Bytes::from_static(b"a=real-value"));
    let events = sink.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], ProxyEvent::SecretUsed { secret_names, .. } if secret_names == &["KEY".to_string()])
    );
}

#[tokio::test]
async fn a_foreign_token_stops_the_stream_and_is_reported() {
    let sink = Arc::new(Recorder::default());
    let input = frames(vec![
        Frame::data(Bytes::from_static(b"fine ")),
        Frame::data(Bytes::copy_from_slice(token(7).as_bytes())),
    ]);
    let error = substituting(session(), input, Arc::clone(&sink))
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        BodyError::Refused(osb_proto::ErrorCode::UnknownToken)
    ));
    let events = sink.0.lock().unwrap().clone();
    assert!(matches!(
        &events[0],
        ProxyEvent::EgressBlocked {
            code: osb_proto::ErrorCode::UnknownToken,
            ..
        }
    ));
}

#[tokio::test]
async fn scrubbing_body_replaces_values_split_across_frames() {
    let session = session();
    let table = session.scrub_table().cloned().unwrap();
    let input = frames(vec![
        Frame::data(Bytes::from_static(b"echo real-")),
        Frame::data(Bytes::from_static(b"value end")),
    ]);
    let out = scrubbing(table, input).collect().await.unwrap().to_bytes();
    assert_eq!(out, Bytes::from(format!("echo {} end", token(1))));
}

#[tokio::test]
async fn trailers_of_a_response_are_scrubbed() {
    let session = session();
    let table = session.scrub_table().cloned().unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert(
        "x-echo",
        http::HeaderValue::from_static("was real-value here"),
    );
    let input = frames(vec![
        Frame::data(Bytes::from_static(b"body")),
        Frame::trailers(trailers),
    ]);
    let collected = scrubbing(table, input).collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap();
    assert_eq!(
        trailers["x-echo"],
        format!("was {} here", token(1)).as_str()
    );
    assert_eq!(collected.to_bytes(), Bytes::from_static(b"body"));
}

#[tokio::test]
async fn held_back_bytes_are_flushed_when_the_body_goes_quiet_and_a_silent_body_times_out() {
    let session = session();
    let table = session.scrub_table().cloned().unwrap();
    let (sender, receiver) =
        tokio::sync::mpsc::unbounded_channel::<Result<Frame<Bytes>, BodyError>>();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|frame| (frame, receiver))
    });
    let mut body = TransformedBody::new(
        StreamBody::new(stream).boxed_unsync(),
        Scrubbing::new(table, None, Arc::new(ProxyMetrics::default())),
        std::time::Duration::from_millis(400),
        Some(std::time::Duration::from_millis(50)),
    );
    sender
        .send(Ok(Frame::data(Bytes::from_static(b"short"))))
        .unwrap();
    // Everything is held back at first; after the quiet period it is handed out unchanged.
    let flushed = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(flushed, Bytes::from_static(b"short"));
    // Then nothing comes for the idle timeout: the body ends with an error.
    let error = body.frame().await.unwrap().unwrap_err();
    assert!(matches!(error, BodyError::TimedOut));
}
