//! Sandbox routes through the gateway with good and bad input, without a worker: keys,
//! org isolation (another org's sandbox, checkpoint or snapshot is 404, never 403), malformed
//! ids and bodies, oversized bodies, invalid envs, bad exec requests, restore and snapshot
//! conflicts, Idempotency-Key reuse, and a gateway without control plane (503). Every refusal
//! is checked to leave every database row as it was.

use osb_proto::{CheckpointId, SandboxId};
use serde_json::{json, Value};

use super::fixtures::{self, send};
use super::{error_code, Gateway};

/// Whose key a case sends.
#[derive(Debug, Clone, Copy)]
enum Key {
    Acme,
    Globex,
    Missing,
    Wrong,
}

/// One refused request and what it must answer.
struct Case {
    method: &'static str,
    path: String,
    body: Option<String>,
    key: Key,
    status: u16,
    code: &'static str,
}

fn case(
    method: &'static str,
    path: impl Into<String>,
    body: Option<&str>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path: path.into(),
        body: body.map(str::to_owned),
        key: Key::Acme,
        status,
        code,
    }
}

impl Case {
    fn with_key(mut self, key: Key) -> Self {
        self.key = key;
        self
    }
}

/// Objects of both orgs: acme (the caller) and globex (the other org).
struct World {
    gateway: Gateway,
    sandbox: SandboxId,
    sibling: SandboxId,
    checkpoint: CheckpointId,
    sibling_checkpoint: CheckpointId,
    foreign_sandbox: SandboxId,
    foreign_checkpoint: CheckpointId,
}

async fn world(control: bool) -> World {
    let mut gateway = Gateway::start().await;
    if control {
        gateway = fixtures::with_control(gateway).await;
    }
    let (status, project) = gateway
        .as_acme(
            "POST",
            "/api/projects",
            Some(r#"{"name":"web","egressAllowlist":["api.example.test"]}"#),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    let project_id = project["id"].as_str().unwrap().parse().unwrap();
    let (status, _) = gateway
        .as_acme(
            "PUT",
            "/api/projects/web/secrets/API_KEY",
            Some(r#"{"value":"v"}"#),
        )
        .await;
    assert_eq!(status, 201);
    let sandbox = fixtures::running_sandbox(&gateway, gateway.org, Some((project_id, "web"))).await;
    let sibling = fixtures::running_sandbox(&gateway, gateway.org, None).await;
    let checkpoint = fixtures::checkpoint(&gateway, gateway.org, sandbox).await;
    let sibling_checkpoint = fixtures::checkpoint(&gateway, gateway.org, sibling).await;
    fixtures::snapshot(&gateway, gateway.org, "golden", checkpoint).await;
    let other = fixtures::other_org(&gateway).await;
    let foreign_sandbox = fixtures::running_sandbox(&gateway, other, None).await;
    let foreign_checkpoint = fixtures::checkpoint(&gateway, other, foreign_sandbox).await;
    fixtures::snapshot(&gateway, other, "theirs", foreign_checkpoint).await;
    World {
        gateway,
        sandbox,
        sibling,
        checkpoint,
        sibling_checkpoint,
        foreign_sandbox,
        foreign_checkpoint,
    }
}

/// Runs every case, asserting its status and code and that no row changed.
async fn assert_refused(gateway: &Gateway, cases: Vec<Case>) {
    let before = gateway.snapshot().await;
    for case in cases {
        let key = match case.key {
            Key::Acme => Some(gateway.key.clone()),
            Key::Globex => Some(gateway.other_key.clone()),
            Key::Missing => None,
            Key::Wrong => Some("osk_0000000000000000000000000000000000000000".to_owned()),
        };
        let headers: Vec<(&str, &str)> =
            key.iter().map(|key| ("X-API-Key", key.as_str())).collect();
        let (status, body) = send(
            gateway,
            case.method,
            &case.path,
            case.body.as_deref(),
            &headers,
        )
        .await;
        let what = format!(
            "{} {} {:?} ({:?})",
            case.method,
            case.path,
            case.body
                .as_deref()
                .map(|b| b.chars().take(80).collect::<String>()),
            case.key
        );
        assert_eq!(status, case.status, "{what}: {body}");
        assert_eq!(error_code(&body), case.code, "{what}: {body}");
        assert_eq!(
            gateway.snapshot().await,
            before,
            "{what} changed the database"
        );
    }
}

/// Every sandbox route with a body it would accept.
fn sandbox_routes(world: &World) -> Vec<(&'static str, String, Option<String>)> {
    let (sandbox, checkpoint) = (world.sandbox, world.checkpoint);
    vec![
        (
            "POST",
            "/api/sandboxes".into(),
            Some(r#"{"project":"web"}"#.into()),
        ),
        ("GET", "/api/sandboxes".into(), None),
        (
            "POST",
            format!("/api/sandboxes/from-checkpoint/{checkpoint}"),
            Some("{}".into()),
        ),
        ("GET", format!("/api/sandboxes/{sandbox}"), None),
        ("DELETE", format!("/api/sandboxes/{sandbox}"), None),
        (
            "GET",
            format!("/api/sandboxes/{sandbox}/allowed-hosts"),
            None,
        ),
        (
            "POST",
            format!("/api/sandboxes/{sandbox}/exec"),
            Some(r#"{"cmd":["true"]}"#.into()),
        ),
        (
            "POST",
            format!("/api/sandboxes/{sandbox}/checkpoints"),
            None,
        ),
        ("GET", format!("/api/sandboxes/{sandbox}/checkpoints"), None),
        (
            "POST",
            format!("/api/sandboxes/{sandbox}/restore"),
            Some(json!({ "checkpointId": checkpoint.to_string() }).to_string()),
        ),
        (
            "POST",
            "/api/snapshots".into(),
            Some(json!({ "name": "next", "sandboxId": sandbox.to_string() }).to_string()),
        ),
        ("GET", "/api/snapshots".into(), None),
        ("GET", "/api/events".into(), None),
    ]
}

#[tokio::test]
async fn every_sandbox_route_needs_a_valid_key() {
    let world = world(true).await;
    let mut cases = Vec::new();
    for (method, path, body) in sandbox_routes(&world) {
        let body = body.as_deref();
        cases.push(case(method, path.clone(), body, 401, "missing_api_key").with_key(Key::Missing));
        cases.push(case(method, path, body, 403, "invalid_api_key").with_key(Key::Wrong));
    }
    // Authentication comes before parsing: a client without a valid key learns nothing of the
    // validation rules.
    cases.push(
        case(
            "POST",
            "/api/sandboxes",
            Some("{not json"),
            401,
            "missing_api_key",
        )
        .with_key(Key::Missing),
    );
    cases.push(
        case(
            "POST",
            "/api/sandboxes",
            Some("{not json"),
            403,
            "invalid_api_key",
        )
        .with_key(Key::Wrong),
    );
    let sandbox = world.sandbox;
    cases.push(
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/exec"),
            Some(r#"{"cmd":[]}"#),
            403,
            "invalid_api_key",
        )
        .with_key(Key::Wrong),
    );
    assert_refused(&world.gateway, cases).await;
}

#[tokio::test]
async fn another_orgs_objects_are_not_found() {
    let world = world(true).await;
    let (sandbox, checkpoint) = (world.sandbox, world.checkpoint);
    let mut cases: Vec<Case> = sandbox_routes(&world)
        .into_iter()
        .filter(|(_, path, _)| {
            path.contains(&sandbox.to_string()) || path.contains(&checkpoint.to_string())
        })
        .map(|(method, path, body)| {
            case(method, path, body.as_deref(), 404, "not_found").with_key(Key::Globex)
        })
        .collect();
    cases.extend([
        // acme's project, snapshot and checkpoint named by globex.
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"project":"web"}"#),
            404,
            "not_found",
        )
        .with_key(Key::Globex),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"snapshot":"golden"}"#),
            404,
            "not_found",
        )
        .with_key(Key::Globex),
        // globex's snapshot and checkpoint named by acme.
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"snapshot":"theirs"}"#),
            404,
            "not_found",
        ),
        case(
            "POST",
            format!(
                "/api/sandboxes/from-checkpoint/{}",
                world.foreign_checkpoint
            ),
            None,
            404,
            "not_found",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/restore"),
            Some(&json!({ "checkpointId": world.foreign_checkpoint.to_string() }).to_string()),
            404,
            "not_found",
        ),
        case(
            "GET",
            format!("/api/sandboxes/{}", world.foreign_sandbox),
            None,
            404,
            "not_found",
        ),
        case(
            "DELETE",
            format!("/api/sandboxes/{}", world.foreign_sandbox),
            None,
            404,
            "not_found",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(
                &json!({ "name": "mine", "sandboxId": world.foreign_sandbox.to_string() })
                    .to_string(),
            ),
            404,
            "not_found",
        ),
        // Unknown ids look exactly the same.
        case(
            "GET",
            format!("/api/sandboxes/{}", SandboxId::new()),
            None,
            404,
            "not_found",
        ),
        case(
            "POST",
            format!("/api/sandboxes/from-checkpoint/{}", CheckpointId::new()),
            None,
            404,
            "not_found",
        ),
    ]);
    assert_refused(&world.gateway, cases).await;

    // Listings show only the caller's objects ([] for an org with none of its own).
    let (status, list) = world.gateway.as_acme("GET", "/api/sandboxes", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["sandboxID"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(!ids.contains(&world.foreign_sandbox.to_string().as_str()));
    let (_, snapshots) = world.gateway.as_acme("GET", "/api/snapshots", None).await;
    assert_eq!(snapshots.as_array().map(Vec::len), Some(1), "{snapshots}");
    assert_eq!(snapshots[0]["name"], "golden");
    let (_, checkpoints) = world
        .gateway
        .as_acme(
            "GET",
            &format!("/api/sandboxes/{sandbox}/checkpoints"),
            None,
        )
        .await;
    assert_eq!(checkpoints[0]["checkpointID"], checkpoint.to_string());
    assert_eq!(checkpoints.as_array().map(Vec::len), Some(1));
    let other_list = world
        .gateway
        .call(
            "GET",
            "/api/sandboxes",
            None,
            Some(&world.gateway.other_key.clone()),
        )
        .await;
    assert_eq!(
        other_list.1.as_array().map(Vec::len),
        Some(1),
        "{}",
        other_list.1
    );
}

#[tokio::test]
async fn malformed_ids_bodies_and_envs_are_refused() {
    let world = world(true).await;
    let sandbox = world.sandbox;
    let huge = json!({ "envs": { "BIG": "x".repeat(1_100_000) } }).to_string();
    let many_envs: serde_json::Map<String, Value> =
        (0..129).map(|i| (format!("E{i}"), json!("v"))).collect();
    let many_envs = json!({ "envs": many_envs }).to_string();
    let long_env = json!({ "envs": { "LONG": "x".repeat(40_000) } }).to_string();
    let cases = vec![
        // Malformed ids in the path and in bodies.
        case(
            "GET",
            "/api/sandboxes/not-an-id",
            None,
            400,
            "invalid_input",
        ),
        case(
            "GET",
            format!("/api/sandboxes/prj_{}", sandbox.as_uuid().simple()),
            None,
            400,
            "invalid_input",
        ),
        case(
            "DELETE",
            "/api/sandboxes/sbx_123",
            None,
            400,
            "invalid_input",
        ),
        case(
            "GET",
            "/api/sandboxes/sbx_zz/allowed-hosts",
            None,
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes/x/exec",
            Some(r#"{"cmd":["true"]}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes/x/checkpoints",
            None,
            400,
            "invalid_input",
        ),
        case(
            "GET",
            "/api/sandboxes/x/checkpoints",
            None,
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes/from-checkpoint/nope",
            None,
            400,
            "invalid_input",
        ),
        case(
            "POST",
            format!("/api/sandboxes/from-checkpoint/{sandbox}"),
            None,
            400,
            "invalid_input",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/restore"),
            Some(r#"{"checkpointId":"nope"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(r#"{"name":"n","sandboxId":"nope"}"#),
            400,
            "invalid_input",
        ),
        // Malformed JSON, unknown fields, wrong types, missing fields.
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"project":"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"projekt":"web"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"cpuCount":"two"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"cpuCount":-1}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":["A=1"]}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"[]"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes/from-checkpoint/".to_owned() + &world.checkpoint.to_string(),
            Some(r#"{"template":"x"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/restore"),
            Some("{}"),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/restore"),
            Some(r#"{"checkpointID":"x"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(r#"{"name":"n"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(&json!({ "name": "n", "sandboxId": sandbox.to_string(), "extra": 1 }).to_string()),
            400,
            "invalid_input",
        ),
        // Values out of range and invalid names.
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"cpuCount":0}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"cpuCount":17}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"memoryMB":64}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"timeoutSec":0}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"template":"a b"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"snapshot":".hidden"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(&json!({ "name": "no spaces", "sandboxId": sandbox.to_string() }).to_string()),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(&json!({ "name": "", "sandboxId": sandbox.to_string() }).to_string()),
            400,
            "invalid_input",
        ),
        // Envs: reserved names are 422, names that are not env-var names 400.
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":{"PATH":"/tmp"}}"#),
            422,
            "unprocessable",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":{"HTTPS_PROXY":"http://evil"}}"#),
            422,
            "unprocessable",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":{"LD_PRELOAD":"x.so"}}"#),
            422,
            "unprocessable",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":{"1A":"x"}}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":{"A-B":"x"}}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":{"":"x"}}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"envs":{"A":"x\u0000y"}}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(&long_env),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            format!("/api/sandboxes/from-checkpoint/{}", world.checkpoint),
            Some(r#"{"envs":{"SSL_CERT_FILE":"/x"}}"#),
            422,
            "unprocessable",
        ),
        case(
            "POST",
            format!("/api/sandboxes/from-checkpoint/{}", world.checkpoint),
            Some(r#"{"envs":{"9":"x"}}"#),
            400,
            "invalid_input",
        ),
        // Too large: the body, the number of envs.
        case(
            "POST",
            "/api/sandboxes",
            Some(&huge),
            413,
            "payload_too_large",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/exec"),
            Some(&huge),
            413,
            "payload_too_large",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(&huge),
            413,
            "payload_too_large",
        ),
        case(
            "POST",
            "/api/sandboxes",
            Some(&many_envs),
            413,
            "payload_too_large",
        ),
        // A bad Idempotency-Key is refused before anything happens (tested with headers below).
    ];
    assert_refused(&world.gateway, cases).await;

    let before = world.gateway.snapshot().await;
    let long_key = "k".repeat(256);
    for key in [long_key.as_str(), ""] {
        let (status, body) = send(
            &world.gateway,
            "POST",
            "/api/sandboxes",
            Some(r#"{"project":"web"}"#),
            &[("X-API-Key", &world.gateway.key), ("Idempotency-Key", key)],
        )
        .await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (400, "invalid_input"),
            "{body}"
        );
    }
    assert_eq!(world.gateway.snapshot().await, before);
}

#[tokio::test]
async fn bad_exec_requests_are_refused() {
    let world = world(true).await;
    let exec = format!("/api/sandboxes/{}/exec", world.sandbox);
    let too_many = json!({ "cmd": vec!["a"; 4097] }).to_string();
    let too_long = json!({ "cmd": ["echo", "x".repeat(300 * 1024)] }).to_string();
    let cases = vec![
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":[]}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":[""]}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":"ls -l"}"#),
            400,
            "invalid_input",
        ),
        case("POST", exec.clone(), Some(r#"{}"#), 400, "invalid_input"),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"shell":true}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls","a\u0000b"]}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"cwd":"tmp"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"cwd":"./tmp"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"timeoutSec":0}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"timeoutSec":3601}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"timeoutSec":"10"}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"env":{"PATH":"/evil"}}"#),
            422,
            "unprocessable",
        ),
        case(
            "POST",
            exec.clone(),
            Some(r#"{"cmd":["ls"],"env":{"A B":"x"}}"#),
            400,
            "invalid_input",
        ),
        case(
            "POST",
            exec.clone(),
            Some(&too_many),
            413,
            "payload_too_large",
        ),
        case(
            "POST",
            exec.clone(),
            Some(&too_long),
            413,
            "payload_too_large",
        ),
        case(
            "POST",
            exec.replace("/exec", "/exec/"),
            Some(r#"{"cmd":["ls"]}"#),
            404,
            "not_found",
        ),
    ];
    assert_refused(&world.gateway, cases).await;
}

#[tokio::test]
async fn restore_snapshot_and_idempotency_conflicts() {
    let world = world(true).await;
    let sandbox = world.sandbox;
    let cases = vec![
        // A checkpoint of another sandbox of the same org: fork it instead.
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/restore"),
            Some(&json!({ "checkpointId": world.sibling_checkpoint.to_string() }).to_string()),
            422,
            "unprocessable",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{}/restore", world.sibling),
            Some(&json!({ "checkpointId": world.checkpoint.to_string() }).to_string()),
            422,
            "unprocessable",
        ),
        // The org already has a snapshot named "golden".
        case(
            "POST",
            "/api/snapshots",
            Some(&json!({ "name": "golden", "sandboxId": sandbox.to_string() }).to_string()),
            409,
            "conflict",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(&json!({ "name": "golden", "sandboxId": world.sibling.to_string() }).to_string()),
            409,
            "conflict",
        ),
    ];
    assert_refused(&world.gateway, cases).await;
    // Another org may use the same snapshot name: "theirs" is globex's, so acme's request for
    // it goes on to the control plane (and fails there only because no worker is reachable).

    // Idempotency-Key: the first create is recorded (it fails: no worker answers); the same
    // key with another body is a conflict that changes nothing.
    let key = [
        ("X-API-Key", world.gateway.key.as_str()),
        ("Idempotency-Key", "create-once"),
    ];
    let (status, first) = send(
        &world.gateway,
        "POST",
        "/api/sandboxes",
        Some(r#"{"project":"web"}"#),
        &key,
    )
    .await;
    assert!(status >= 500, "no worker can run it: {status} {first}");
    let before = world.gateway.snapshot().await;
    let (status, body) = send(
        &world.gateway,
        "POST",
        "/api/sandboxes",
        Some(r#"{"project":"web","cpuCount":2}"#),
        &key,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "conflict"),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("Idempotency-Key"),
        "{body}"
    );
    assert_eq!(world.gateway.snapshot().await, before);
    // The same key in another org is another sandbox (keys are per org): not a conflict.
    let other = [
        ("X-API-Key", world.gateway.other_key.as_str()),
        ("Idempotency-Key", "create-once"),
    ];
    let (status, body) = send(
        &world.gateway,
        "POST",
        "/api/sandboxes",
        Some(r#"{"cpuCount":2}"#),
        &other,
    )
    .await;
    assert_ne!(status, 409, "{body}");
}

#[tokio::test]
async fn without_a_control_plane_sandbox_routes_answer_503() {
    let world = world(false).await;
    let (sandbox, checkpoint) = (world.sandbox, world.checkpoint);
    let cases = vec![
        case(
            "POST",
            "/api/sandboxes",
            Some(r#"{"project":"web"}"#),
            503,
            "unavailable",
        ),
        case(
            "POST",
            format!("/api/sandboxes/from-checkpoint/{checkpoint}"),
            Some("{}"),
            503,
            "unavailable",
        ),
        case(
            "DELETE",
            format!("/api/sandboxes/{sandbox}"),
            None,
            503,
            "unavailable",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/exec"),
            Some(r#"{"cmd":["true"]}"#),
            503,
            "unavailable",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/checkpoints"),
            None,
            503,
            "unavailable",
        ),
        case(
            "POST",
            format!("/api/sandboxes/{sandbox}/restore"),
            Some(&json!({ "checkpointId": checkpoint.to_string() }).to_string()),
            503,
            "unavailable",
        ),
        case(
            "POST",
            "/api/snapshots",
            Some(&json!({ "name": "next", "sandboxId": sandbox.to_string() }).to_string()),
            503,
            "unavailable",
        ),
        // Ownership is still checked first: a foreign sandbox is 404, not 503.
        case(
            "DELETE",
            format!("/api/sandboxes/{}", world.foreign_sandbox),
            None,
            404,
            "not_found",
        ),
    ];
    assert_refused(&world.gateway, cases).await;
    // Reads need only the database.
    for path in [
        "/api/sandboxes".to_owned(),
        format!("/api/sandboxes/{sandbox}"),
        format!("/api/sandboxes/{sandbox}/checkpoints"),
        format!("/api/sandboxes/{sandbox}/allowed-hosts"),
        "/api/snapshots".to_owned(),
    ] {
        let (status, body) = world.gateway.as_acme("GET", &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test]
async fn reads_show_the_callers_objects() {
    let world = world(true).await;
    let sandbox = world.sandbox;
    let (status, view) = world
        .gateway
        .as_acme("GET", &format!("/api/sandboxes/{sandbox}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["sandboxID"], sandbox.to_string());
    assert_eq!(view["status"], "running");
    assert_eq!(view["workerID"], fixtures::GHOST_WORKER);
    assert_eq!(view["project"], "web");
    assert_eq!(view["memoryMB"], 256);
    let (status, hosts) = world
        .gateway
        .as_acme(
            "GET",
            &format!("/api/sandboxes/{sandbox}/allowed-hosts"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        hosts,
        json!({ "sandboxID": sandbox.to_string(), "egressAllowlist": ["api.example.test"],
                "secrets": [{ "name": "API_KEY", "allowedHosts": ["api.example.test"] }] })
    );
    // A sandbox without a project may reach nothing.
    let (_, hosts) = world
        .gateway
        .as_acme(
            "GET",
            &format!("/api/sandboxes/{}/allowed-hosts", world.sibling),
            None,
        )
        .await;
    assert_eq!(hosts["egressAllowlist"], json!([]));
    assert_eq!(hosts["secrets"], json!([]));
    // Globex sees its own checkpoint, and acme's sibling list holds only the sibling's.
    let (_, checkpoints) = world
        .gateway
        .call(
            "GET",
            &format!("/api/sandboxes/{}/checkpoints", world.foreign_sandbox),
            None,
            Some(&world.gateway.other_key.clone()),
        )
        .await;
    assert_eq!(checkpoints.as_array().map(Vec::len), Some(1));
    assert_eq!(
        checkpoints[0]["checkpointID"],
        world.foreign_checkpoint.to_string()
    );
    let (_, checkpoints) = world
        .gateway
        .as_acme(
            "GET",
            &format!("/api/sandboxes/{}/checkpoints", world.sibling),
            None,
        )
        .await;
    assert_eq!(
        checkpoints[0]["checkpointID"],
        world.sibling_checkpoint.to_string()
    );
    assert_eq!(checkpoints.as_array().map(Vec::len), Some(1));
}
