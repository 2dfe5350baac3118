//! Sandbox routes through the gateway without a worker: keys (401/403 on every route, and
//! before any body parsing), org isolation (another org's sandbox, checkpoint or snapshot is
//! 404, never 403; listings show only the caller's), a gateway without control plane (503 on
//! the routes that act, reads still served), and what the reads show. Bad input is in
//! `sandbox_input`. Every refusal leaves every database row as it was.

use osb_proto::{CheckpointId, SandboxId};
use serde_json::json;

use super::fixtures;
use super::sandbox_world::{assert_refused, case, sandbox_routes, world, Case, Key};

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
    let exec = format!("/api/sandboxes/{}/exec", world.sandbox);
    #[rustfmt::skip]
    cases.extend([
        case("POST", "/api/sandboxes", Some("{not json"), 401, "missing_api_key").with_key(Key::Missing),
        case("POST", "/api/sandboxes", Some("{not json"), 403, "invalid_api_key").with_key(Key::Wrong),
        case("POST", exec.clone(), Some(r#"{"cmd":[]}"#), 403, "invalid_api_key").with_key(Key::Wrong),
        case("POST", exec, Some(&"x".repeat(2 << 20)), 403, "invalid_api_key").with_key(Key::Wrong),
    ]);
    assert_refused(&world.gateway, cases).await;
}

#[tokio::test]
async fn another_orgs_objects_are_not_found() {
    let world = world(true).await;
    let (sandbox, checkpoint) = (world.sandbox, world.checkpoint);
    let (sandbox_text, checkpoint_text) = (sandbox.to_string(), checkpoint.to_string());
    // Every route naming acme's sandbox or checkpoint, called by globex.
    let mut cases: Vec<Case> = sandbox_routes(&world)
        .into_iter()
        .filter(|(_, path, body)| {
            let body = body.as_deref().unwrap_or_default();
            path.contains(&sandbox_text)
                || path.contains(&checkpoint_text)
                || body.contains(&sandbox_text)
        })
        .map(|(method, path, body)| {
            case(method, path, body.as_deref(), 404, "not_found").with_key(Key::Globex)
        })
        .collect();
    assert!(
        cases.len() >= 9,
        "the filter kept the routes naming an object"
    );
    let foreign_restore =
        json!({ "checkpointId": world.foreign_checkpoint.to_string() }).to_string();
    let foreign_snapshot =
        json!({ "name": "mine", "sandboxId": world.foreign_sandbox.to_string() }).to_string();
    let foreign = world.foreign_sandbox;
    #[rustfmt::skip]
    cases.extend([
        // acme's project and snapshot named by globex.
        case("POST", "/api/sandboxes", Some(r#"{"project":"web"}"#), 404, "not_found").with_key(Key::Globex),
        case("POST", "/api/sandboxes", Some(r#"{"snapshot":"golden"}"#), 404, "not_found").with_key(Key::Globex),
        // globex's snapshot, checkpoint and sandbox named by acme.
        case("POST", "/api/sandboxes", Some(r#"{"snapshot":"theirs"}"#), 404, "not_found"),
        case("POST", format!("/api/sandboxes/from-checkpoint/{}", world.foreign_checkpoint), None, 404, "not_found"),
        case("POST", format!("/api/sandboxes/{sandbox}/restore"), Some(&foreign_restore), 404, "not_found"),
        case("GET", format!("/api/sandboxes/{foreign}"), None, 404, "not_found"),
        case("DELETE", format!("/api/sandboxes/{foreign}"), None, 404, "not_found"),
        case("GET", format!("/api/sandboxes/{foreign}/checkpoints"), None, 404, "not_found"),
        case("POST", format!("/api/sandboxes/{foreign}/exec"), Some(r#"{"cmd":["id"]}"#), 404, "not_found"),
        case("POST", "/api/snapshots", Some(&foreign_snapshot), 404, "not_found"),
        // Unknown ids look exactly the same.
        case("GET", format!("/api/sandboxes/{}", SandboxId::new()), None, 404, "not_found"),
        case("POST", format!("/api/sandboxes/from-checkpoint/{}", CheckpointId::new()), None, 404, "not_found"),
    ]);
    assert_refused(&world.gateway, cases).await;

    // Listings show only the caller's objects.
    let gateway = &world.gateway;
    let (status, list) = gateway.as_acme("GET", "/api/sandboxes", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["sandboxID"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(!ids.contains(&foreign.to_string().as_str()));
    let (_, snapshots) = gateway.as_acme("GET", "/api/snapshots", None).await;
    assert_eq!(snapshots.as_array().map(Vec::len), Some(1), "{snapshots}");
    assert_eq!(snapshots[0]["name"], "golden");
    let (_, theirs) = gateway
        .call(
            "GET",
            "/api/sandboxes",
            None,
            Some(&gateway.other_key.clone()),
        )
        .await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(1), "{theirs}");
    assert_eq!(theirs[0]["sandboxID"], foreign.to_string());
}

#[tokio::test]
async fn without_a_control_plane_sandbox_routes_answer_503() {
    let world = world(false).await;
    let (sandbox, checkpoint) = (world.sandbox, world.checkpoint);
    let restore = json!({ "checkpointId": checkpoint.to_string() }).to_string();
    let snapshot = json!({ "name": "next", "sandboxId": sandbox.to_string() }).to_string();
    #[rustfmt::skip]
    let cases = vec![
        case("POST", "/api/sandboxes", Some(r#"{"project":"web"}"#), 503, "unavailable"),
        case("POST", format!("/api/sandboxes/from-checkpoint/{checkpoint}"), Some("{}"), 503, "unavailable"),
        case("DELETE", format!("/api/sandboxes/{sandbox}"), None, 503, "unavailable"),
        case("POST", format!("/api/sandboxes/{sandbox}/exec"), Some(r#"{"cmd":["true"]}"#), 503, "unavailable"),
        case("POST", format!("/api/sandboxes/{sandbox}/checkpoints"), None, 503, "unavailable"),
        case("POST", format!("/api/sandboxes/{sandbox}/restore"), Some(&restore), 503, "unavailable"),
        case("POST", "/api/snapshots", Some(&snapshot), 503, "unavailable"),
        // Ownership is still checked first: a foreign sandbox is 404, not 503.
        case("DELETE", format!("/api/sandboxes/{}", world.foreign_sandbox), None, 404, "not_found"),
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
    let (gateway, sandbox) = (&world.gateway, world.sandbox);
    let (status, view) = gateway
        .as_acme("GET", &format!("/api/sandboxes/{sandbox}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["sandboxID"], sandbox.to_string());
    assert_eq!(view["status"], "running");
    assert_eq!(view["workerID"], fixtures::GHOST_WORKER);
    assert_eq!(view["project"], "web");
    assert_eq!(view["memoryMB"], 256);
    let path = format!("/api/sandboxes/{sandbox}/allowed-hosts");
    let (status, hosts) = gateway.as_acme("GET", &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        hosts,
        json!({ "sandboxID": sandbox.to_string(), "egressAllowlist": ["api.example.test"],
                "secrets": [{ "name": "API_KEY", "allowedHosts": ["api.example.test"] }] })
    );
    // A sandbox without a project may reach nothing.
    let path = format!("/api/sandboxes/{}/allowed-hosts", world.sibling);
    let (_, hosts) = gateway.as_acme("GET", &path, None).await;
    assert_eq!(
        (&hosts["egressAllowlist"], &hosts["secrets"]),
        (&json!([]), &json!([]))
    );
    // Each sandbox lists its own checkpoints only.
    let path = format!("/api/sandboxes/{sandbox}/checkpoints");
    let (_, checkpoints) = gateway.as_acme("GET", &path, None).await;
    assert_eq!(
        checkpoints.as_array().map(Vec::len),
        Some(1),
        "{checkpoints}"
    );
    assert_eq!(checkpoints[0]["checkpointID"], world.checkpoint.to_string());
    let path = format!("/api/sandboxes/{}/checkpoints", world.sibling);
    let (_, checkpoints) = gateway.as_acme("GET", &path, None).await;
    assert_eq!(
        checkpoints[0]["checkpointID"],
        world.sibling_checkpoint.to_string()
    );
    assert_eq!(checkpoints.as_array().map(Vec::len), Some(1));
}
