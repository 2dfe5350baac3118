//! Runtime selection over REST (ADR 0025): an unknown runtime is 400 with the valid names (on
//! create and on projects), a project's runtime is its sandboxes' default, and placement
//! refuses with a 503 JSON reason when no live worker offers the runtime — in particular when
//! the only worker runs the development runtime and the org did not opt in. The "worker" here
//! is a heartbeat on the in-process bus: placement is all these requests reach.

use std::sync::Arc;
use std::time::Duration;

use osb_control::{
    ControlPlane, GrpcAllowlistPusher, GrpcSecretPusher, SandboxService, WorkerLinks,
};
use osb_grpc::{GrpcSecurity, GrpcSecurityConfig};
use osb_placement::{publish_heartbeats, Capacity, PlacementService, Usage, WorkerHeartbeat};
use osb_proto::WorkerId;
use osb_saga::ExecutorOptions;

use super::{error_code, Gateway};

/// The gateway with a control plane whose placement hears one development worker.
async fn with_development_worker(mut gateway: Gateway) -> (Gateway, tokio::task::JoinHandle<()>) {
    let (placement, _changes) = PlacementService::start(
        gateway.bus.clone(),
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await
    .expect("placement");
    let id = WorkerId::new();
    let beats = publish_heartbeats(
        gateway.bus.clone(),
        Duration::from_millis(50),
        move |sequence| WorkerHeartbeat {
            worker_id: id,
            name: "devbox".parse().expect("name"),
            grpc_addr: "127.0.0.1:9".to_owned(),
            isolation: "development".to_owned(),
            runtimes: vec!["dev".to_owned()],
            capacity: Capacity {
                sandboxes: 8,
                cpu_count: 8,
                memory_mb: 8192,
            },
            usage: Usage::default(),
            sequence,
        },
    );
    let security = GrpcSecurity::load(&GrpcSecurityConfig::InsecureLoopback).expect("security");
    let links = Arc::new(WorkerLinks::new(security, placement.clone()));
    let plane = ControlPlane {
        store: gateway.state.store.clone(),
        vault: gateway.state.vault.clone(),
        links: links.clone(),
        bus: gateway.bus.clone(),
        secret_vault: osb_vault::spawn_secret_vault(
            gateway.state.vault.clone(),
            Arc::new(GrpcSecretPusher::new(links.clone())),
        )
        .expect("secret vault actor"),
        projects: osb_project::spawn_project_actor(
            gateway.state.store.clone(),
            Arc::new(GrpcAllowlistPusher::new(links)),
        )
        .expect("project actor"),
        outbox: osb_control::OutboxRelay::start(gateway.state.store.clone(), gateway.bus.clone()),
        // The worker does not exist: its commands go unanswered, so wait briefly.
        commands: osb_control::CommandTimings {
            attempt_wait: Duration::from_millis(300),
            attempts: 1,
        },
    };
    let service = SandboxService::new(plane, "runtime-test", ExecutorOptions::default())
        .expect("sagas defined");
    gateway.state = gateway.state.clone().with_control(Arc::new(service));
    for _ in 0..100 {
        if !placement.live_workers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(placement.live_workers().len(), 1, "the worker heartbeats");
    (gateway, beats)
}

#[actix_web::test]
async fn unknown_runtimes_are_refused_with_the_valid_names() {
    let gateway = super::fixtures::with_control(Gateway::start().await).await;
    let before = gateway.snapshot().await;
    for (path, body) in [
        ("/api/sandboxes", r#"{"runtime":"firecracker"}"#),
        ("/api/sandboxes", r#"{"runtime":"dev"}"#),
        ("/api/projects", r#"{"name":"p","runtime":"gvisor"}"#),
    ] {
        let (status, body) = gateway.as_acme("POST", path, Some(body)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(error_code(&body), "invalid_input");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains("netns, microvm"), "{message}");
    }
    assert_eq!(gateway.snapshot().await, before, "refusals change nothing");
}

#[actix_web::test]
async fn projects_keep_a_default_runtime() {
    let gateway = Gateway::start().await;
    let (status, created) = gateway
        .as_acme(
            "POST",
            "/api/projects",
            Some(r#"{"name":"vm","runtime":"microvm"}"#),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["runtime"], "microvm");
    let (_, plain) = gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"plain"}"#))
        .await;
    assert_eq!(plain["runtime"], "netns", "netns is the default");
    let (status, patched) = gateway
        .as_acme(
            "PATCH",
            "/api/projects/plain",
            Some(r#"{"runtime":"microvm"}"#),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["runtime"], "microvm");
    let (status, replaced) = gateway
        .as_acme("PUT", "/api/projects/plain", Some(r#"{}"#))
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        replaced["runtime"], "netns",
        "PUT gives absent fields their defaults"
    );
}

#[actix_web::test]
async fn a_development_worker_serves_no_org_that_did_not_opt_in() {
    let (gateway, beats) = with_development_worker(Gateway::start().await).await;
    let (status, body) = gateway
        .as_acme("POST", "/api/sandboxes", Some(r#"{"cpuCount":1}"#))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "unavailable");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("no live worker offers the netns runtime")
            && message.contains("development runtime")
            && message.contains("osbd admin org"),
        "{message}"
    );

    // A microVM project: the development worker does not offer it either.
    gateway
        .as_acme(
            "POST",
            "/api/projects",
            Some(r#"{"name":"vm","runtime":"microvm"}"#),
        )
        .await;
    let (status, body) = gateway
        .as_acme("POST", "/api/sandboxes", Some(r#"{"project":"vm"}"#))
        .await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("no live worker offers the microvm runtime"),
        "{message}"
    );

    // Opted in, the same request gets past placement to the (unreachable) worker.
    gateway
        .store
        .set_org_development_runtime(gateway.org, true)
        .await
        .expect("opt in");
    let (_, body) = gateway
        .as_acme("POST", "/api/sandboxes", Some(r#"{"cpuCount":1}"#))
        .await;
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        !message.contains("no live worker offers"),
        "placement chose the development worker: {message}"
    );
    beats.abort();
}
