//! Bad input to the sandbox routes, without a worker: malformed ids in paths and bodies,
//! malformed JSON, unknown fields, wrong types, values out of range, oversized bodies (413),
//! invalid envs (reserved names 422, names that are not env-var names 400), bad exec requests,
//! restore with another sandbox's checkpoint (422), a duplicate snapshot name (409) and an
//! Idempotency-Key reused with another body (409). Every refusal leaves the database unchanged.

use serde_json::{json, Value};

use super::error_code;
use super::fixtures::send;
use super::sandbox_world::{assert_refused, case, world};

#[tokio::test]
async fn malformed_ids_bodies_and_envs_are_refused() {
    let world = world(true).await;
    let (sandbox, checkpoint) = (world.sandbox, world.checkpoint);
    let huge = json!({ "envs": { "BIG": "x".repeat(1_100_000) } }).to_string();
    let many: serde_json::Map<String, Value> =
        (0..129).map(|i| (format!("E{i}"), json!("v"))).collect();
    let many_envs = json!({ "envs": many }).to_string();
    let long_env = json!({ "envs": { "LONG": "x".repeat(40_000) } }).to_string();
    let wrong_prefix = format!("/api/sandboxes/prj_{}", sandbox.as_uuid().simple());
    let snapshot =
        |name: &str| json!({ "name": name, "sandboxId": sandbox.to_string() }).to_string();
    let extra_field =
        json!({ "name": "n", "sandboxId": sandbox.to_string(), "extra": 1 }).to_string();
    let fork = format!("/api/sandboxes/from-checkpoint/{checkpoint}");
    let restore = format!("/api/sandboxes/{sandbox}/restore");
    #[rustfmt::skip]
    let cases = vec![
        // Malformed ids in the path and in bodies.
        case("GET", "/api/sandboxes/not-an-id", None, 400, "invalid_input"),
        case("GET", wrong_prefix, None, 400, "invalid_input"),
        case("DELETE", "/api/sandboxes/sbx_123", None, 400, "invalid_input"),
        case("GET", "/api/sandboxes/sbx_zz/allowed-hosts", None, 400, "invalid_input"),
        case("POST", "/api/sandboxes/x/exec", Some(r#"{"cmd":["true"]}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes/x/checkpoints", None, 400, "invalid_input"),
        case("GET", "/api/sandboxes/x/checkpoints", None, 400, "invalid_input"),
        case("POST", "/api/sandboxes/x/restore", Some(r#"{"checkpointId":"x"}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes/from-checkpoint/nope", None, 400, "invalid_input"),
        case("POST", format!("/api/sandboxes/from-checkpoint/{sandbox}"), None, 400, "invalid_input"),
        case("POST", restore.clone(), Some(r#"{"checkpointId":"nope"}"#), 400, "invalid_input"),
        case("POST", restore.clone(), Some(&json!({ "checkpointId": sandbox.to_string() }).to_string()), 400, "invalid_input"),
        case("POST", "/api/snapshots", Some(r#"{"name":"n","sandboxId":"nope"}"#), 400, "invalid_input"),
        // Malformed JSON, unknown fields, wrong types, missing fields.
        case("POST", "/api/sandboxes", Some(r#"{"project":"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"projekt":"web"}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"cpuCount":"two"}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"cpuCount":-1}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"envs":["A=1"]}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some("[]"), 400, "invalid_input"),
        case("POST", fork.clone(), Some(r#"{"template":"x"}"#), 400, "invalid_input"),
        case("POST", fork.clone(), Some("{oops"), 400, "invalid_input"),
        case("POST", restore.clone(), Some("{}"), 400, "invalid_input"),
        case("POST", restore.clone(), Some(r#"{"checkpointID":"x"}"#), 400, "invalid_input"),
        case("POST", "/api/snapshots", Some(r#"{"name":"n"}"#), 400, "invalid_input"),
        case("POST", "/api/snapshots", Some(&extra_field), 400, "invalid_input"),
        // Values out of range and invalid names.
        case("POST", "/api/sandboxes", Some(r#"{"cpuCount":0}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"cpuCount":17}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"memoryMB":64}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"timeoutSec":0}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"template":"a b"}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"snapshot":".hidden"}"#), 400, "invalid_input"),
        case("POST", "/api/snapshots", Some(&snapshot("no spaces")), 400, "invalid_input"),
        case("POST", "/api/snapshots", Some(&snapshot("")), 400, "invalid_input"),
        // Envs: reserved names are 422, names that are not env-var names 400.
        case("POST", "/api/sandboxes", Some(r#"{"envs":{"PATH":"/tmp"}}"#), 422, "unprocessable"),
        case("POST", "/api/sandboxes", Some(r#"{"envs":{"HTTPS_PROXY":"http://evil"}}"#), 422, "unprocessable"),
        case("POST", "/api/sandboxes", Some(r#"{"envs":{"LD_PRELOAD":"x.so"}}"#), 422, "unprocessable"),
        case("POST", "/api/sandboxes", Some(r#"{"envs":{"1A":"x"}}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"envs":{"A-B":"x"}}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"envs":{"":"x"}}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"envs":{"A":"x\u0000y"}}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(&long_env), 400, "invalid_input"),
        case("POST", fork.clone(), Some(r#"{"envs":{"SSL_CERT_FILE":"/x"}}"#), 422, "unprocessable"),
        case("POST", fork, Some(r#"{"envs":{"9":"x"}}"#), 400, "invalid_input"),
        // Too large: the body, the number of envs.
        case("POST", "/api/sandboxes", Some(&huge), 413, "payload_too_large"),
        case("POST", format!("/api/sandboxes/{sandbox}/exec"), Some(&huge), 413, "payload_too_large"),
        case("POST", "/api/snapshots", Some(&huge), 413, "payload_too_large"),
        case("POST", restore, Some(&huge), 413, "payload_too_large"),
        case("POST", "/api/sandboxes", Some(&many_envs), 413, "payload_too_large"),
    ];
    assert_refused(&world.gateway, cases).await;

    // A bad Idempotency-Key is refused before anything happens.
    let before = world.gateway.snapshot().await;
    for key in ["k".repeat(256), String::new()] {
        let headers = [
            ("X-API-Key", world.gateway.key.as_str()),
            ("Idempotency-Key", &key),
        ];
        let body = Some(r#"{"project":"web"}"#);
        let (status, answer) = send(&world.gateway, "POST", "/api/sandboxes", body, &headers).await;
        assert_eq!(
            (status, error_code(&answer).as_str()),
            (400, "invalid_input"),
            "{answer}"
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
    #[rustfmt::skip]
    let cases = vec![
        case("POST", exec.clone(), Some(r#"{"cmd":[]}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":[""]}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":"ls -l"}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some("{}"), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"shell":true}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls","a\u0000b"]}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"cwd":"tmp"}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"cwd":"./tmp"}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"timeoutSec":0}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"timeoutSec":3601}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"timeoutSec":"10"}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"env":{"PATH":"/evil"}}"#), 422, "unprocessable"),
        case("POST", exec.clone(), Some(r#"{"cmd":["ls"],"env":{"A B":"x"}}"#), 400, "invalid_input"),
        case("POST", exec.clone(), Some(&too_many), 413, "payload_too_large"),
        case("POST", exec.clone(), Some(&too_long), 413, "payload_too_large"),
        case("POST", exec.replace("/exec", "/exec/"), Some(r#"{"cmd":["ls"]}"#), 404, "not_found"),
    ];
    assert_refused(&world.gateway, cases).await;
}

#[tokio::test]
async fn restore_snapshot_and_idempotency_conflicts() {
    let world = world(true).await;
    let (sandbox, sibling) = (world.sandbox, world.sibling);
    let restore = |checkpoint: String| json!({ "checkpointId": checkpoint }).to_string();
    let snapshot = |of: String| json!({ "name": "golden", "sandboxId": of }).to_string();
    #[rustfmt::skip]
    let cases = vec![
        // A checkpoint of another sandbox of the same org: fork it instead.
        case("POST", format!("/api/sandboxes/{sandbox}/restore"), Some(&restore(world.sibling_checkpoint.to_string())), 422, "unprocessable"),
        case("POST", format!("/api/sandboxes/{sibling}/restore"), Some(&restore(world.checkpoint.to_string())), 422, "unprocessable"),
        // The org already has a snapshot named "golden".
        case("POST", "/api/snapshots", Some(&snapshot(sandbox.to_string())), 409, "conflict"),
        case("POST", "/api/snapshots", Some(&snapshot(sibling.to_string())), 409, "conflict"),
    ];
    assert_refused(&world.gateway, cases).await;

    // Idempotency-Key: the first create is recorded (it fails: no worker answers); the same
    // key with another body is a conflict that changes nothing.
    let gateway = &world.gateway;
    let key = [
        ("X-API-Key", gateway.key.as_str()),
        ("Idempotency-Key", "create-once"),
    ];
    let first = Some(r#"{"project":"web"}"#);
    let (status, answer) = send(gateway, "POST", "/api/sandboxes", first, &key).await;
    assert!(status >= 500, "no worker can run it: {status} {answer}");
    // The failed create's event is in the outbox until the relay publishes it; compare the
    // rows only once it has, so the relay's delete is not mistaken for the conflict's doing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gateway
        .store
        .waiting_outbox(1)
        .await
        .expect("outbox")
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay publishes the failed create's event"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before = gateway.snapshot().await;
    let other_body = Some(r#"{"project":"web","cpuCount":2}"#);
    let (status, answer) = send(gateway, "POST", "/api/sandboxes", other_body, &key).await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (409, "conflict"),
        "{answer}"
    );
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{answer}"
    );
    assert_eq!(gateway.snapshot().await, before);
    // The same key in another org names another sandbox (keys are per org): no conflict.
    let theirs = [
        ("X-API-Key", gateway.other_key.as_str()),
        ("Idempotency-Key", "create-once"),
    ];
    let (status, answer) = send(
        gateway,
        "POST",
        "/api/sandboxes",
        other_body.map(|_| "{}"),
        &theirs,
    )
    .await;
    assert_ne!(status, 409, "{answer}");
}
