//! Replay on `GET /api/events`, over a real HTTP server and both buses: every frame has an
//! `id:`; `since=` (a time or an id) and `Last-Event-ID` replay the caller's org's events and
//! then go live with no gap and no repeat; a second org's replay holds none of the first's
//! sandbox, project or saga events; a request older than what the stream holds starts with an
//! `osb.replay.truncated` notice; bad starts are 400 and name the field.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use osb_bus::{Bus, BusMessage, Envelope, InProcessBus};
use osb_proto::{OrgId, SagaId, SandboxId};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{fixtures, Gateway};

/// One SSE frame: its id (if any), event name and data.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    id: Option<String>,
    event: String,
    data: String,
}

/// A raw `GET /api/events…` stream over TCP.
struct SseClient {
    stream: tokio::net::TcpStream,
    /// Bytes of the chunked body not yet decoded.
    raw: Vec<u8>,
    /// Decoded SSE text not yet parsed into frames (or an error answer's body).
    buffer: String,
}

impl SseClient {
    /// Opens `path` with `key` and extra headers; returns the status and, on 200, the client.
    async fn open(base: &str, key: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Self) {
        let mut stream = tokio::net::TcpStream::connect(base).await.unwrap();
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {base}\r\nX-API-Key: {key}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed early");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head[9..12].parse().unwrap();
        let mut client = Self {
            stream,
            raw: Vec::new(),
            buffer: String::new(),
        };
        if status != 200 {
            // Error answers are small; keep what came for the caller to read.
            let mut rest = [0u8; 4096];
            if let Ok(Ok(read)) =
                tokio::time::timeout(Duration::from_secs(2), client.stream.read(&mut rest)).await
            {
                client.buffer = String::from_utf8_lossy(&rest[..read]).to_string();
            }
        }
        (status, client)
    }

    /// The next frame within `wait` (comments and pings skipped).
    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: None,
                    event: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        frame.id = Some(id.to_owned());
                    } else if let Some(event) = line.strip_prefix("event: ") {
                        frame.event = event.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        frame.data = data.to_owned();
                    }
                }
                if frame.event.is_empty() {
                    continue;
                }
                return Some(frame);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut chunk = [0u8; 8192];
            let read = tokio::time::timeout(left, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if read == 0 {
                return None;
            }
            self.raw.extend_from_slice(&chunk[..read]);
            self.dechunk();
        }
    }

    /// Moves every complete chunk of the chunked body from `raw` into `buffer`.
    fn dechunk(&mut self) {
        loop {
            let Some(line_end) = self.raw.windows(2).position(|pair| pair == b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
            let end = line_end + 2 + size + 2;
            if self.raw.len() < end {
                return;
            }
            let data =
                String::from_utf8_lossy(&self.raw[line_end + 2..line_end + 2 + size]).to_string();
            self.buffer.push_str(&data);
            self.raw.drain(..end);
        }
    }

    /// Frames until `quiet` passes without one.
    async fn drain(&mut self, quiet: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.frame(quiet).await {
            frames.push(frame);
        }
        frames
    }
}

/// Serves the gateway on a loopback port; returns `host:port`.
fn serve(gateway: &Gateway) -> String {
    let data = web::Data::new(gateway.state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(osb_gateway::configure)
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let address = server.addrs()[0].to_string();
    tokio::spawn(server.run());
    address
}

/// A sandbox event as the control plane publishes it.
async fn sandbox_event(bus: &Arc<dyn Bus>, org: OrgId, sandbox: SandboxId, what: &str) {
    let subject = osb_bus::sandbox_event(sandbox, what).unwrap();
    let payload = json!({ "orgId": org.to_string(), "sandboxID": sandbox.to_string() });
    let bytes = Envelope::new(format!("sandbox.{what}"), payload, None)
        .to_bytes()
        .unwrap();
    bus.publish_durable(subject.as_str(), BusMessage::new(bytes))
        .await
        .unwrap();
}

/// A saga progress event as the executor's sink publishes it.
async fn saga_event(bus: &Arc<dyn Bus>, org: OrgId, sandbox: SandboxId) {
    let saga = SagaId::new();
    let subject =
        osb_bus::saga_progress(saga, "boot_sandbox", osb_bus::SagaOutcome::Completed).unwrap();
    let payload = json!({ "orgId": org.to_string(), "sandboxID": sandbox.to_string(), "sagaID": saga.to_string() });
    let bytes = Envelope::new("saga.step", payload, None)
        .to_bytes()
        .unwrap();
    bus.publish(subject.as_str(), BusMessage::new(bytes))
        .await
        .unwrap();
}

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(600);

async fn replay_is_per_org_and_seamless(gateway: Gateway) {
    let gateway = fixtures::with_control(gateway).await;
    let address = serve(&gateway);
    let bus = gateway.bus.clone();
    let ours = gateway.org;
    let theirs = fixtures::other_org(&gateway).await;
    let our_sandbox = fixtures::running_sandbox(&gateway, ours, None).await;
    let their_sandbox = fixtures::running_sandbox(&gateway, theirs, None).await;
    let start = chrono::Utc::now().to_rfc3339();

    // History: ours and theirs interleaved, including a project event and saga progress.
    sandbox_event(&bus, ours, our_sandbox, "created").await;
    sandbox_event(&bus, theirs, their_sandbox, "created").await;
    let (status, _) = gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
        .await;
    assert_eq!(status, 201);
    let (status, _) = gateway
        .as_acme(
            "PUT",
            "/api/projects/web/secrets/API_KEY",
            Some(r#"{"value":"replay-canary-value"}"#),
        )
        .await;
    assert_eq!(status, 201);
    saga_event(&bus, ours, our_sandbox).await;
    saga_event(&bus, theirs, their_sandbox).await;
    sandbox_event(&bus, ours, our_sandbox, "secret_used").await;

    let path = format!("/api/events?since={}", urlencode(&start));
    let (status, mut replay) = SseClient::open(&address, &gateway.key, &path, &[]).await;
    assert_eq!(status, 200, "{}", replay.buffer);
    let history = replay.drain(QUIET).await;
    let names: Vec<String> = history
        .iter()
        .map(|frame| frame.event.rsplit('.').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["created", "secret_updated", "completed", "secret_used"],
        "{history:#?}"
    );
    let ids: Vec<u64> = history
        .iter()
        .map(|frame| frame.id.as_deref().expect("an id").parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    for frame in &history {
        assert!(!frame.data.contains(&their_sandbox.to_string()));
        assert!(!frame.data.contains("replay-canary-value"));
    }

    // The other org's replay of the same span holds nothing of ours.
    let (status, mut other) = SseClient::open(&address, &gateway.other_key, &path, &[]).await;
    assert_eq!(status, 200);
    let seen_by_other = other.drain(QUIET).await;
    assert_eq!(seen_by_other.len(), 2, "{seen_by_other:#?}");
    for frame in &seen_by_other {
        assert!(
            frame.data.contains(&their_sandbox.to_string())
                && !frame.data.contains(&ours.to_string()),
            "{frame:?}"
        );
    }

    // Live after replay: the next event arrives once, after the history.
    sandbox_event(&bus, ours, our_sandbox, "destroyed").await;
    let live = replay.frame(WAIT).await.expect("the live event");
    assert!(live.event.ends_with(".destroyed"), "{live:?}");
    let live_id: u64 = live.id.as_deref().unwrap().parse().unwrap();
    assert!(live_id > ids[3]);
    assert!(replay.frame(QUIET).await.is_none(), "nothing repeated");

    // Resuming after the second event: the third, fourth and the live one, then nothing.
    let last = ids[1].to_string();
    let (status, mut resumed) = SseClient::open(
        &address,
        &gateway.key,
        "/api/events?since=1",
        &[("Last-Event-ID", &last)],
    )
    .await;
    assert_eq!(status, 200);
    let again = resumed.drain(QUIET).await;
    let again_ids: Vec<u64> = again
        .iter()
        .map(|frame| frame.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(again_ids, vec![ids[2], ids[3], live_id], "{again:#?}");

    // `since=<id>` is the same as the header; a subject filter applies to the replay too.
    let path = format!(
        "/api/events?since={}&subject=osb.sandbox.*.destroyed",
        ids[0]
    );
    let (status, mut filtered) = SseClient::open(&address, &gateway.key, &path, &[]).await;
    assert_eq!(status, 200);
    let filtered = filtered.drain(QUIET).await;
    assert_eq!(filtered.len(), 1, "{filtered:#?}");
    assert_eq!(
        filtered[0].id.as_deref(),
        Some(live_id.to_string().as_str())
    );

    // Bad starts are refused and say which field.
    for (path, headers, field) in [
        ("/api/events?since=yesterday", vec![], "since"),
        ("/api/events?since=-4", vec![], "since"),
        (
            "/api/events",
            vec![("Last-Event-ID", "abc")],
            "Last-Event-ID",
        ),
    ] {
        let (status, refused) = SseClient::open(&address, &gateway.key, path, &headers).await;
        assert_eq!(status, 400, "{path}");
        assert!(refused.buffer.contains(field), "{}", refused.buffer);
        assert!(
            refused.buffer.contains("invalid_input"),
            "{}",
            refused.buffer
        );
    }
    let (status, _) = SseClient::open(&address, "osk_wrong", "/api/events?since=1", &[]).await;
    assert_eq!(status, 403);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn replay_is_per_org_and_seamless_in_process() {
    replay_is_per_org_and_seamless(Gateway::start().await).await;
}

#[tokio::test]
async fn replay_is_per_org_and_seamless_over_nats() {
    let bus = osb_bus::connect_bus(Some("nats://127.0.0.1:4222"))
        .await
        .expect("NATS is running");
    let database = osb_testkit::TestDatabase::postgres().await.expect("db");
    replay_is_per_org_and_seamless(Gateway::start_with_bus(database, bus).await).await;
}

#[tokio::test]
async fn a_replay_older_than_the_ring_says_so_first() {
    let database = osb_testkit::TestDatabase::postgres().await.expect("db");
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::with_event_capacity(3));
    let gateway = Gateway::start_with_bus(database, bus.clone()).await;
    let address = serve(&gateway);
    let sandbox = fixtures::running_sandbox(&gateway, gateway.org, None).await;
    for what in [
        "created",
        "secret_used",
        "egress_blocked",
        "secret_used",
        "destroyed",
    ] {
        sandbox_event(&bus, gateway.org, sandbox, what).await;
    }
    let (status, mut client) =
        SseClient::open(&address, &gateway.key, "/api/events?since=1", &[]).await;
    assert_eq!(status, 200);
    let frames = client.drain(QUIET).await;
    assert_eq!(frames[0].event, "osb.replay.truncated", "{frames:#?}");
    assert_eq!(frames[0].id, None);
    let notice: serde_json::Value = serde_json::from_str(&frames[0].data).unwrap();
    assert!(notice["detail"]
        .as_str()
        .unwrap()
        .contains("no longer held"));
    assert_eq!(notice["resumesAt"].as_str(), frames[1].id.as_deref());
    let names: Vec<&str> = frames[1..]
        .iter()
        .map(|frame| frame.event.rsplit('.').next().unwrap())
        .collect();
    assert_eq!(names, ["egress_blocked", "secret_used", "destroyed"]);
}
