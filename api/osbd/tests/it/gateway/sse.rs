//! Server-sent events per org, over a whole platform with a real worker: org A's stream shows
//! its own `osb.project.<id>.secret_updated` and `osb.sandbox.<id>.created`, org B's stream
//! shows nothing of A's (B's own event arriving later proves the stream was live), and command
//! subjects are refused. The same run checks the answers only a running sandbox gives (create,
//! exec, checkpoint, restore, fork, snapshot, delete) against the OpenAPI document.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error_code;
use super::schema_check::assert_documented;
use osbd::testkit::{start_platform, Platform, PlatformOptions};

/// An open `GET /api/events` stream whose bytes accumulate in `text`.
struct EventStream {
    text: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl EventStream {
    async fn open(api_url: &str, key: &str) -> Self {
        let authority = api_url.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let request = format!(
            "GET /api/events HTTP/1.1\r\nHost: {authority}\r\nX-API-Key: {key}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        // The handler subscribes before it answers, so once the head is here no event is missed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                stream.read(&mut byte).await.unwrap(),
                1,
                "stream closed early"
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 8192];
            while let Ok(read) = stream.read(&mut buffer).await {
                if read == 0 {
                    return;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        Self { text, reader }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    async fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the stream:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A call whose answer must be documented; returns the body.
async fn documented_call(
    platform: &Platform,
    document: &Value,
    method: &str,
    path: &str,
    body: Option<Value>,
    expected: u16,
) -> Value {
    let (status, answer) = platform.call(method, path, body).await;
    assert_eq!(status, expected, "{method} {path}: {answer}");
    assert_documented(document, method, path, status, &answer);
    answer
}

#[tokio::test]
async fn each_org_streams_only_its_own_events_and_sandbox_answers_are_documented() {
    let platform = start_platform(PlatformOptions::new("osbg1", 50)).await;
    let (_, other_key) = super::org_with_key(&platform.store, "globex").await;
    let (status, document) = platform.call("GET", "/api/openapi.json", None).await;
    assert_eq!(status, 200);
    let ours = EventStream::open(&platform.api_url, &platform.api_key).await;
    let theirs = EventStream::open(&platform.api_url, &other_key).await;

    // Org A: a project with a secret, a sandbox, and everything one can do with it.
    platform.project_with_key("demo").await;
    let (_, project) = platform.call("GET", "/api/projects/demo", None).await;
    let project_id = project["id"].as_str().unwrap().to_owned();
    let sandbox = documented_call(
        &platform,
        &document,
        "POST",
        "/api/sandboxes",
        Some(json!({ "project": "demo", "envs": { "A": "1" } })),
        201,
    )
    .await;
    let id = sandbox["sandboxID"].as_str().unwrap().to_owned();
    documented_call(
        &platform,
        &document,
        "GET",
        &format!("/api/sandboxes/{id}"),
        None,
        200,
    )
    .await;
    documented_call(&platform, &document, "GET", "/api/sandboxes", None, 200).await;
    // The shared worker: org A sees its sandbox there, org B sees the worker but none of A's.
    let workers = documented_call(&platform, &document, "GET", "/api/workers", None, 200).await;
    let worker = &workers[0];
    assert_eq!(
        (worker["status"].as_str(), worker["yourSandboxes"].as_u64()),
        (Some("live"), Some(1)),
        "{workers}"
    );
    assert_eq!(worker["workerID"], sandbox["workerID"]);
    let (status, seen_by_b) =
        reqwest_call(&platform, &other_key, "GET", "/api/workers", json!(null)).await;
    assert_eq!(status, 200);
    assert_eq!(seen_by_b[0]["yourSandboxes"], 0, "{seen_by_b}");
    assert!(!seen_by_b.to_string().contains("usage") && !seen_by_b.to_string().contains("grpc"));
    documented_call(&platform, &document, "GET", "/api/sagas", None, 200).await;
    documented_call(
        &platform,
        &document,
        "GET",
        &format!("/api/sandboxes/{id}/allowed-hosts"),
        None,
        200,
    )
    .await;
    let exec = documented_call(
        &platform,
        &document,
        "POST",
        &format!("/api/sandboxes/{id}/exec"),
        Some(json!({ "cmd": ["sh", "-c", "echo hi; exit 3"], "cwd": "/", "timeoutSec": 30 })),
        200,
    )
    .await;
    assert_eq!(
        (exec["exitCode"].as_i64(), exec["stdout"].as_str()),
        (Some(3), Some("hi\n")),
        "{exec}"
    );
    let checkpoint = documented_call(
        &platform,
        &document,
        "POST",
        &format!("/api/sandboxes/{id}/checkpoints"),
        None,
        201,
    )
    .await;
    let checkpoint_id = checkpoint["checkpointID"].as_str().unwrap().to_owned();
    documented_call(
        &platform,
        &document,
        "GET",
        &format!("/api/sandboxes/{id}/checkpoints"),
        None,
        200,
    )
    .await;
    documented_call(
        &platform,
        &document,
        "POST",
        &format!("/api/sandboxes/{id}/restore"),
        Some(json!({ "checkpointID": checkpoint_id })),
        200,
    )
    .await;
    documented_call(
        &platform,
        &document,
        "POST",
        "/api/snapshots",
        Some(json!({ "name": "base", "sandboxID": id, "sandboxId": id })),
        201,
    )
    .await;
    documented_call(&platform, &document, "GET", "/api/snapshots", None, 200).await;
    let fork = documented_call(
        &platform,
        &document,
        "POST",
        &format!("/api/sandboxes/from-checkpoint/{checkpoint_id}"),
        None,
        201,
    )
    .await;
    let fork_id = fork["sandboxID"].as_str().unwrap().to_owned();
    // Storage goes when asked: the checkpoint (the fork has booted from it), then the snapshot.
    for path in [
        format!("/api/sandboxes/{id}/checkpoints/{checkpoint_id}"),
        "/api/snapshots/base".to_owned(),
    ] {
        documented_call(&platform, &document, "DELETE", &path, None, 204).await;
        let (status, _) = platform.call("DELETE", &path, None).await;
        assert_eq!(status, 404, "{path} is gone");
    }
    let (_, left) = platform
        .call("GET", &format!("/api/sandboxes/{id}/checkpoints"), None)
        .await;
    assert_eq!(left, json!([]), "the snapshot's checkpoint went with it");
    documented_call(
        &platform,
        &document,
        "DELETE",
        &format!("/api/sandboxes/{fork_id}"),
        None,
        200,
    )
    .await;
    // Org B may not act on A's running sandbox either.
    let (status, refused) = reqwest_call(
        &platform,
        &other_key,
        "POST",
        &format!("/api/sandboxes/{id}/exec"),
        json!({ "cmd": ["true"] }),
    )
    .await;
    assert_eq!((status, error_code(&refused).as_str()), (404, "not_found"));

    ours.wait_for(&format!("event: osb.project.{project_id}.secret_updated"))
        .await;
    ours.wait_for(&format!("event: osb.sandbox.{id}.created"))
        .await;
    ours.wait_for(&format!("event: osb.sandbox.{fork_id}.destroyed"))
        .await;

    // Org B's own event comes after all of A's: everything before it was filtered, not late.
    let (status, _) = reqwest_call(
        &platform,
        &other_key,
        "POST",
        "/api/projects",
        json!({ "name": "mine" }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = reqwest_call(
        &platform,
        &other_key,
        "PUT",
        "/api/projects/mine/secrets/TOKEN",
        json!({ "value": "b" }),
    )
    .await;
    assert_eq!(status, 201);
    theirs.wait_for("secret_updated").await;
    let seen_by_b = theirs.text();
    for foreign in [
        id.as_str(),
        fork_id.as_str(),
        project_id.as_str(),
        &platform.org.to_string(),
        "osb.sandbox.",
    ] {
        assert!(
            !seen_by_b.contains(foreign),
            "org B saw {foreign}:\n{seen_by_b}"
        );
    }
    assert!(!ours.text().contains("TOKEN"), "org A saw B's secret event");

    // Only sandbox and project events may be followed.
    for pattern in [
        "osb.cmd.%3E",
        "osb.worker.*.heartbeat",
        "%3E",
        "osb.sandbox..x",
    ] {
        let (status, body) = platform
            .call("GET", &format!("/api/events?subject={pattern}"), None)
            .await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (400, "invalid_input"),
            "{pattern}: {body}"
        );
    }
    drop((ours, theirs));
    platform.stop().await;
}

async fn reqwest_call(
    platform: &Platform,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    osbd::testkit::reqwest_lite::Client
        .call(&platform.api_url, key, method, path, Some(body), &[])
        .await
}
