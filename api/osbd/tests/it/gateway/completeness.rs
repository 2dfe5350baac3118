//! The API surface the SDKs need, without a worker: `PUT` replaces a project (absent fields take
//! their defaults), the reference system's sandbox-create aliases (`templateID`, `timeout`) and
//! `metadata` are validated (both names with different values are 400), the `…ID` spellings of
//! restore and snapshot bodies are canonical with the old ones still accepted, answers carry
//! `orgID`/`projectID`, and deleting a checkpoint or snapshot is refused clearly — another org's
//! is 404, one a snapshot or a running restore uses is 409, one on an unreachable worker is 503
//! — and changes nothing.

use osb_proto::SagaId;
use serde_json::json;

use super::sandbox_world::{assert_refused, case, world, Key};
use super::{error_code, Gateway};

#[tokio::test]
async fn put_replaces_the_whole_project_and_patch_still_merges() {
    let gateway = Gateway::start().await;
    let body = r#"{"name":"web","template":"t1","cpuCount":4,"memoryMB":2048,"timeoutSec":900,"egressAllowlist":["api.example.test"]}"#;
    let (status, created) = gateway.as_acme("POST", "/api/projects", Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!(
        created["orgID"], created["orgId"],
        "both spellings, one value"
    );
    let (status, replaced) = gateway
        .as_acme("PUT", "/api/projects/web", Some(r#"{"memoryMB":1024}"#))
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (
            replaced["name"].as_str(),
            replaced["template"].clone(),
            replaced["cpuCount"].as_u64(),
            replaced["memoryMB"].as_u64(),
            replaced["timeoutSec"].as_u64(),
            replaced["egressAllowlist"].clone(),
        ),
        (
            Some("web"),
            json!(null),
            Some(1),
            Some(1024),
            Some(300),
            json!([])
        ),
        "absent fields take their defaults; the name stays"
    );
    assert_eq!(replaced["id"], created["id"]);
    let (status, renamed) = gateway
        .as_acme(
            "PUT",
            "/api/projects/web",
            Some(r#"{"name":"site","egressAllowlist":["a.example.test"],"template":null}"#),
        )
        .await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("site")));
    let (status, patched) = gateway
        .as_acme("PATCH", "/api/projects/site", Some(r#"{"cpuCount":2}"#))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        patched["egressAllowlist"],
        json!(["a.example.test"]),
        "PATCH keeps"
    );

    gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"other"}"#))
        .await;
    let before = gateway.snapshot().await;
    for (path, body, status, code) in [
        ("/api/projects/site", r#"{"name":"other"}"#, 409, "conflict"),
        (
            "/api/projects/site",
            r#"{"cpuCount":99}"#,
            400,
            "invalid_input",
        ),
        (
            "/api/projects/site",
            r#"{"egressAllowlist":["*"]}"#,
            400,
            "invalid_input",
        ),
        (
            "/api/projects/site",
            r#"{"colour":"red"}"#,
            400,
            "invalid_input",
        ),
        ("/api/projects/nope", r#"{}"#, 404, "not_found"),
    ] {
        let (got, answer) = gateway.as_acme("PUT", path, Some(body)).await;
        assert_eq!(
            (got, error_code(&answer).as_str()),
            (status, code),
            "{body}: {answer}"
        );
    }
    let (status, _) = gateway
        .call(
            "PUT",
            "/api/projects/site",
            Some("{}"),
            Some(&gateway.other_key.clone()),
        )
        .await;
    assert_eq!(status, 404, "another org's project");
    assert_eq!(gateway.snapshot().await, before, "refusals changed nothing");
}

#[tokio::test]
async fn aliases_metadata_and_id_spellings_are_checked() {
    let world = world(true).await;
    let (sandbox, checkpoint) = (world.sandbox, world.checkpoint);
    let long_value = "v".repeat(513);
    let many: serde_json::Map<String, serde_json::Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let restore = format!("/api/sandboxes/{sandbox}/restore");
    #[rustfmt::skip]
    let cases = vec![
        case("POST", "/api/sandboxes", Some(r#"{"template":"a","templateID":"b"}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"timeoutSec":10,"timeout":20}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"timeout":0}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"templateID":"has space"}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(&json!({ "metadata": { "k": long_value } }).to_string()), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(&json!({ "metadata": many }).to_string()), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"metadata":{"":"v"}}"#), 400, "invalid_input"),
        case("POST", "/api/sandboxes", Some(r#"{"metadata":{"k":1}}"#), 400, "invalid_input"),
        case("POST", format!("/api/sandboxes/from-checkpoint/{checkpoint}"), Some(r#"{"metadata":{"k\u0001":"v"}}"#), 400, "invalid_input"),
        case("POST", restore.clone(), Some("{}"), 400, "invalid_input"),
        case("POST", restore.clone(), Some(&json!({ "checkpointID": checkpoint.to_string(), "checkpointId": world.sibling_checkpoint.to_string() }).to_string()), 400, "invalid_input"),
        case("POST", restore.clone(), Some(&json!({ "checkpointID": "chk_nope" }).to_string()), 400, "invalid_input"),
        case("POST", restore, Some(&json!({ "checkpointID": world.sibling_checkpoint.to_string() }).to_string()), 422, "unprocessable"),
        case("POST", "/api/snapshots", Some(r#"{"name":"n"}"#), 400, "invalid_input"),
        case("POST", "/api/snapshots", Some(&json!({ "name": "n", "sandboxID": sandbox.to_string(), "sandboxId": world.sibling.to_string() }).to_string()), 400, "invalid_input"),
        case("POST", "/api/snapshots", Some(&json!({ "name": "golden", "sandboxID": sandbox.to_string() }).to_string()), 409, "conflict"),
        case("POST", "/api/snapshots", Some(&json!({ "name": "golden", "sandboxId": sandbox.to_string() }).to_string()), 409, "conflict"),
    ];
    assert_refused(&world.gateway, cases).await;
    // The same value under both names is accepted (this one then fails for want of a worker).
    let both =
        json!({ "checkpointID": checkpoint.to_string(), "checkpointId": checkpoint.to_string() });
    let (status, body) = world
        .gateway
        .as_acme(
            "POST",
            &format!("/api/sandboxes/{sandbox}/restore"),
            Some(&both.to_string()),
        )
        .await;
    assert_ne!(status, 400, "{body}");
    let (status, view) = world
        .gateway
        .as_acme("GET", &format!("/api/sandboxes/{sandbox}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(view["projectID"], view["projectId"]);
    assert!(view["projectID"].as_str().unwrap().starts_with("prj_"));
    assert_eq!(view["metadata"], json!({}));
}

#[tokio::test]
async fn deleting_checkpoints_and_snapshots_is_refused_clearly() {
    let world = world(true).await;
    let gateway = &world.gateway;
    let (sandbox, sibling) = (world.sandbox, world.sibling);
    // A restore saga running on the sibling's checkpoint (as a control plane would log it).
    let params = json!({
        "sandboxId": sibling.to_string(), "orgId": gateway.org.to_string(),
        "request": "r1", "checkpointId": world.sibling_checkpoint.to_string(),
    });
    gateway
        .store
        .create_saga(SagaId::new(), "sandbox_restore", params, "someone")
        .await
        .unwrap();
    #[rustfmt::skip]
    let cases = vec![
        // golden is a snapshot of acme's checkpoint: delete the snapshot instead.
        case("DELETE", format!("/api/sandboxes/{sandbox}/checkpoints/{}", world.checkpoint), None, 409, "conflict"),
        case("DELETE", format!("/api/sandboxes/{sibling}/checkpoints/{}", world.sibling_checkpoint), None, 409, "conflict"),
        // The checkpoint of another sandbox, another org's, unknown and malformed ids.
        case("DELETE", format!("/api/sandboxes/{sandbox}/checkpoints/{}", world.sibling_checkpoint), None, 404, "not_found"),
        case("DELETE", format!("/api/sandboxes/{}/checkpoints/{}", world.foreign_sandbox, world.foreign_checkpoint), None, 404, "not_found"),
        case("DELETE", format!("/api/sandboxes/{sandbox}/checkpoints/{}", world.foreign_checkpoint), None, 404, "not_found"),
        case("DELETE", format!("/api/sandboxes/{sandbox}/checkpoints/{}", osb_proto::CheckpointId::new()), None, 404, "not_found"),
        case("DELETE", format!("/api/sandboxes/{sandbox}/checkpoints/chk_x"), None, 400, "invalid_input"),
        case("DELETE", "/api/snapshots/theirs", None, 404, "not_found"),
        case("DELETE", "/api/snapshots/nope", None, 404, "not_found"),
        case("DELETE", "/api/snapshots/.bad", None, 400, "invalid_input"),
        case("DELETE", "/api/snapshots/golden", None, 404, "not_found").with_key(Key::Globex),
        // The worker holding golden's layer cannot be reached: nothing is deleted.
        case("DELETE", "/api/snapshots/golden", None, 503, "unavailable"),
    ];
    assert_refused(gateway, cases).await;
}
