//! Fixtures for the sandbox-route tests: a control plane with no worker behind it (every
//! validation and ownership check runs before a worker is asked anything), and sandbox,
//! checkpoint and snapshot rows written straight into the store, so no test here needs root.

use std::sync::Arc;

use osb_control::{
    ControlPlane, GrpcAllowlistPusher, GrpcSecretPusher, SandboxService, WorkerLinks,
};
use osb_gateway::hash_api_key;
use osb_grpc::{GrpcSecurity, GrpcSecurityConfig};
use osb_proto::{CheckpointId, OrgId, ProjectId, SandboxId, SnapshotId};
use osb_saga::ExecutorOptions;
use osb_store::{CheckpointRecord, NewSandbox, SandboxStatus, SnapshotRecord};

use super::Gateway;

/// The worker name seeded rows claim to run on (no such worker is reachable).
pub const GHOST_WORKER: &str = "ghost";

fn ghost_worker() -> osb_proto::WorkerName {
    GHOST_WORKER.parse().expect("a worker name")
}

/// The gateway with a control plane that has no worker links.
pub async fn with_control(mut gateway: Gateway) -> Gateway {
    let security = GrpcSecurity::load(&GrpcSecurityConfig::InsecureLoopback).expect("security");
    let links = Arc::new(WorkerLinks::fixed(security));
    let secret_vault = osb_vault::spawn_secret_vault(
        gateway.state.vault.clone(),
        Arc::new(GrpcSecretPusher::new(links.clone())),
    )
    .expect("secret vault actor");
    let projects = osb_project::spawn_project_actor(
        gateway.state.store.clone(),
        Arc::new(GrpcAllowlistPusher::new(links.clone())),
    )
    .expect("project actor");
    let plane = ControlPlane {
        store: gateway.state.store.clone(),
        vault: gateway.state.vault.clone(),
        links,
        bus: gateway.bus.clone(),
        secret_vault,
        projects,
        outbox: osb_control::OutboxRelay::start(gateway.state.store.clone(), gateway.bus.clone()),
        commands: Default::default(),
    };
    let service = SandboxService::new(plane, "gateway-test", ExecutorOptions::default())
        .expect("sagas defined");
    gateway.state = gateway.state.clone().with_control(Arc::new(service));
    gateway
}

/// The second org (the one `other_key` belongs to).
pub async fn other_org(gateway: &Gateway) -> OrgId {
    gateway
        .store
        .find_active_api_key(&hash_api_key(&gateway.other_key))
        .await
        .expect("lookup")
        .expect("key")
        .org_id
}

/// A sandbox row of `org` marked running on the ghost worker.
pub async fn running_sandbox(
    gateway: &Gateway,
    org: OrgId,
    project: Option<(ProjectId, &str)>,
) -> SandboxId {
    let id = SandboxId::new();
    let row = gateway
        .store
        .insert_sandbox(NewSandbox {
            id,
            org_id: org,
            project_id: project.map(|(id, _)| id),
            project_name: project.map(|(_, name)| name.to_owned()),
            template: "host-system".into(),
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 300,
            metadata: Default::default(),
        })
        .await
        .expect("sandbox row");
    gateway
        .store
        .transition_sandbox(
            id,
            row.generation,
            SandboxStatus::Running,
            Some(&ghost_worker()),
            None,
        )
        .await
        .expect("running");
    id
}

/// The size seeded checkpoint rows claim.
pub const CHECKPOINT_BYTES: u64 = 4096;

/// A checkpoint row of `sandbox` of `CHECKPOINT_BYTES`.
pub async fn checkpoint(gateway: &Gateway, org: OrgId, sandbox: SandboxId) -> CheckpointId {
    let id = CheckpointId::new();
    gateway
        .store
        .insert_checkpoint(&CheckpointRecord {
            id,
            org_id: org,
            sandbox_id: Some(sandbox),
            project_id: None,
            worker: ghost_worker(),
            metadata: serde_json::json!({}),
            created_at: chrono::Utc::now(),
            size_bytes: Some(CHECKPOINT_BYTES),
        })
        .await
        .expect("checkpoint row");
    id
}

/// A golden snapshot row named `name` over `checkpoint`.
pub async fn snapshot(gateway: &Gateway, org: OrgId, name: &str, checkpoint: CheckpointId) {
    gateway
        .store
        .insert_snapshot(&SnapshotRecord {
            id: SnapshotId::new(),
            org_id: org,
            name: name.into(),
            checkpoint_id: Some(checkpoint),
            metadata: serde_json::json!({ "workerID": GHOST_WORKER }),
            created_at: chrono::Utc::now(),
            size_bytes: Some(CHECKPOINT_BYTES),
        })
        .await
        .expect("snapshot row");
}

/// Sends a request with extra headers (`call` has none): (status, JSON body or text).
pub async fn send(
    gateway: &Gateway,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    use actix_web::{test, web, App};
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    let mut request = test::TestRequest::default()
        .method(method.parse().expect("method"))
        .uri(path);
    for header in headers {
        request = request.insert_header(*header);
    }
    if let Some(body) = body {
        request = request
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_owned());
    }
    let response = test::call_service(&app, request.to_request()).await;
    let status = response.status().as_u16();
    let bytes = test::read_body(response).await;
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    (status, json)
}

/// `GET path` with the API key `key`: (status, response headers, JSON body).
pub async fn get_as(
    gateway: &Gateway,
    key: &str,
    path: &str,
) -> (
    u16,
    std::collections::BTreeMap<String, String>,
    serde_json::Value,
) {
    use actix_web::{test, web, App};
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    let request = test::TestRequest::get()
        .uri(path)
        .insert_header(("X-API-Key", key.to_owned()))
        .to_request();
    let response = test::call_service(&app, request).await;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = serde_json::from_slice(&test::read_body(response).await).expect("JSON");
    (status, headers, body)
}
