//! The world the sandbox-route tests share: two orgs (acme calls, globex is "another org"),
//! acme's project `web` with a secret, two running sandboxes of acme with a checkpoint each and
//! a golden snapshot `golden`, and a sandbox, checkpoint and snapshot `theirs` of globex — all
//! rows in the store, no worker. `assert_refused` runs a table of refused requests and checks
//! each one's status, code, and that no database row changed.

use osb_proto::{CheckpointId, SandboxId};
use serde_json::json;

use super::fixtures::{self, send};
use super::{error_code, Gateway};

/// Whose key a case sends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key {
    Acme,
    Globex,
    Missing,
    Wrong,
}

/// One refused request and what it must answer.
pub(super) struct Case {
    pub(super) method: &'static str,
    pub(super) path: String,
    pub(super) body: Option<String>,
    pub(super) key: Key,
    pub(super) status: u16,
    pub(super) code: &'static str,
}

pub(super) fn case(
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
    pub(super) fn with_key(mut self, key: Key) -> Self {
        self.key = key;
        self
    }
}

/// Objects of both orgs: acme (the caller) and globex (the other org).
pub(super) struct World {
    pub(super) gateway: Gateway,
    pub(super) sandbox: SandboxId,
    pub(super) sibling: SandboxId,
    pub(super) checkpoint: CheckpointId,
    pub(super) sibling_checkpoint: CheckpointId,
    pub(super) foreign_sandbox: SandboxId,
    pub(super) foreign_checkpoint: CheckpointId,
}

pub(super) async fn world(control: bool) -> World {
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
pub(super) async fn assert_refused(gateway: &Gateway, cases: Vec<Case>) {
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
pub(super) fn sandbox_routes(world: &World) -> Vec<(&'static str, String, Option<String>)> {
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
            "DELETE",
            format!("/api/sandboxes/{sandbox}/checkpoints/{checkpoint}"),
            None,
        ),
        ("DELETE", "/api/snapshots/golden".into(), None),
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
