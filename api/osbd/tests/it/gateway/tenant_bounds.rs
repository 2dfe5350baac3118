//! Tenant bounds over REST (ADR 0027): an org at its sandbox quota gets 409 with the quota named
//! and no sandbox row, and one at its checkpoint-bytes quota gets 409 before any worker is asked
//! to write (ADR 0032); `/metrics` reads the store at most once per interval however often it is
//! scraped, and with a scrape key set it refuses scrapes without it; an org holds at most its
//! cap of event streams at once (429, freed when one closes).

use std::sync::Arc;
use std::time::Duration;

use osb_gateway::MetricsCache;
use osb_store::OrgQuotas;

use super::{error_code, Gateway};

#[actix_web::test]
async fn an_org_at_its_quota_gets_409_naming_it() {
    let gateway = super::fixtures::with_control(Gateway::start().await).await;
    gateway
        .store
        .set_org_quotas(
            gateway.org,
            OrgQuotas {
                sandboxes: Some(0),
                ..OrgQuotas::default()
            },
        )
        .await
        .expect("quota");
    let (status, body) = gateway
        .as_acme("POST", "/api/sandboxes", Some(r#"{"cpuCount":1}"#))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "conflict"),
        "{body}"
    );
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("quota is 0 sandboxes"), "{message}");
    assert!(
        !gateway.snapshot().await.contains("sandboxes: "),
        "no sandbox row was reserved"
    );
}

#[actix_web::test]
async fn an_org_at_its_checkpoint_quota_gets_409_before_a_worker_writes() {
    use super::fixtures::{self, CHECKPOINT_BYTES};

    let gateway = super::fixtures::with_control(Gateway::start().await).await;
    let sandbox = fixtures::running_sandbox(&gateway, gateway.org, None).await;
    let checkpoint = fixtures::checkpoint(&gateway, gateway.org, sandbox).await;
    gateway
        .store
        .set_org_quotas(
            gateway.org,
            OrgQuotas {
                checkpoint_bytes: Some(CHECKPOINT_BYTES),
                ..OrgQuotas::default()
            },
        )
        .await
        .expect("quota");
    let rows = || async {
        let dump = gateway.snapshot().await;
        let tables = [
            "checkpoints: ",
            "snapshots: ",
            "sagas: ",
            "saga_log: ",
            "outbox: ",
        ];
        dump.lines()
            .filter(|line| tables.iter().any(|table| line.starts_with(table)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let before = rows().await;
    assert!(before.contains("checkpoints: "), "{before}");
    let snapshot_body = format!(r#"{{"name":"base","sandboxID":"{sandbox}"}}"#);
    for (path, body) in [
        (format!("/api/sandboxes/{sandbox}/checkpoints"), None),
        ("/api/snapshots".to_owned(), Some(snapshot_body.as_str())),
    ] {
        let (status, answer) = gateway.as_acme("POST", &path, body).await;
        // The sandbox's worker does not exist: any attempt to reach it would be 503.
        assert_eq!(
            (status, error_code(&answer).as_str()),
            (409, "conflict"),
            "{path}: {answer}"
        );
        let message = answer["error"].as_str().unwrap_or_default();
        for part in [
            "quota is 4096 bytes of checkpoints",
            "already hold 4096 bytes",
            "delete checkpoints or snapshots",
            "--max-checkpoint-mb",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
    }
    assert_eq!(rows().await, before, "no saga, no row");

    // Deleting the checkpoint frees its bytes (the ghost worker's files are gone with it).
    gateway
        .store
        .delete_checkpoint_row(checkpoint)
        .await
        .expect("delete");
    let room = gateway
        .store
        .check_checkpoint_room(gateway.org)
        .await
        .expect("room again");
    assert_eq!((room.used, room.quota), (0, Some(CHECKPOINT_BYTES)));
}

#[actix_web::test]
async fn metrics_are_cached_and_optionally_key_protected() {
    let mut gateway = Gateway::start().await;
    gateway.state = gateway
        .state
        .clone()
        .with_metrics(Arc::new(MetricsCache::new(Duration::from_secs(3600), None)));
    let scrape = |gateway: &Gateway| {
        let state = gateway.state.clone();
        async move {
            let app = actix_web::test::init_service(
                actix_web::App::new()
                    .app_data(actix_web::web::Data::new(state))
                    .configure(osb_gateway::configure),
            )
            .await;
            let request = actix_web::test::TestRequest::get()
                .uri("/metrics")
                .to_request();
            let response = actix_web::test::call_service(&app, request).await;
            let status = response.status().as_u16();
            let body = actix_web::test::read_body(response).await;
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, first) = scrape(&gateway).await;
    assert_eq!(status, 200);
    // A change in the store does not show until the cached figures expire: scrapes do not
    // query the store.
    gateway
        .store
        .insert_sandbox(osb_store::NewSandbox {
            id: osb_proto::SandboxId::new(),
            org_id: gateway.org,
            project_id: None,
            project_name: None,
            template: "host".into(),
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            metadata: Default::default(),
        })
        .await
        .expect("row");
    for _ in 0..5 {
        assert_eq!(scrape(&gateway).await.1, first, "served from the cache");
    }
    gateway.state = gateway
        .state
        .clone()
        .with_metrics(Arc::new(MetricsCache::new(Duration::ZERO, None)));
    let (_, fresh) = scrape(&gateway).await;
    assert!(
        fresh.contains("osb_sandboxes{status=\"creating\"} 1"),
        "{fresh}"
    );

    gateway.state = gateway
        .state
        .clone()
        .with_metrics(Arc::new(MetricsCache::new(
            Duration::ZERO,
            Some("scrape-canary-key"),
        )));
    let (status, body) = scrape(&gateway).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("scrape-canary-key"));
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    let request = actix_web::test::TestRequest::get()
        .uri("/metrics")
        .insert_header(("Authorization", "Bearer scrape-canary-key"))
        .to_request();
    assert_eq!(
        actix_web::test::call_service(&app, request)
            .await
            .status()
            .as_u16(),
        200
    );
    assert!(!format!("{:?}", gateway.state).contains("scrape-canary-key"));
}

#[actix_web::test]
async fn event_streams_per_org_are_capped_and_freed_when_closed() {
    let mut gateway = Gateway::start().await;
    gateway.state = gateway
        .state
        .clone()
        .with_sse_slots(Arc::new(osb_gateway::SseSlots::new(1)));
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    let open = |key: &str| {
        actix_web::test::TestRequest::get()
            .uri("/api/events")
            .insert_header(("X-API-Key", key.to_owned()))
            .to_request()
    };
    let first = actix_web::test::call_service(&app, open(&gateway.key)).await;
    assert_eq!(first.status().as_u16(), 200);
    let refused = actix_web::test::call_service(&app, open(&gateway.key)).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = actix_web::test::read_body_json(refused).await;
    assert_eq!(error_code(&body), "rate_limited");
    let other = actix_web::test::call_service(&app, open(&gateway.other_key)).await;
    assert_eq!(other.status().as_u16(), 200, "the cap is per org");
    drop(first);
    let again = actix_web::test::call_service(&app, open(&gateway.key)).await;
    assert_eq!(
        again.status().as_u16(),
        200,
        "a closed stream frees its slot"
    );
}
