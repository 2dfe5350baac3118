//! The dashboard's read views and the page itself: `GET /api/sagas` shows only the caller's
//! unfinished sagas, their steps and failures — never parameters, outputs or whole tokens —
//! and answers as documented; `GET /api/workers` needs a control plane; `/dashboard` and its
//! assets are served with the strict security headers, and nothing outside the embedded table
//! is served.

use osb_proto::SagaId;
use osb_store::{SagaStatus, StepAction, StepStatus};
use serde_json::json;

use super::fixtures::{self, send};
use super::openapi::fetch_document;
use super::schema_check::assert_documented;
use super::{error_code, Gateway};

#[tokio::test]
async fn sagas_are_the_callers_unfinished_ones_without_parameters_or_tokens() {
    let gateway = Gateway::start().await;
    let document = fetch_document(&gateway).await;
    let store = &gateway.store;
    let ours = gateway.org;
    let theirs = fixtures::other_org(&gateway).await;
    let token = format!("osb_sealed_{}", "c0ffee00".repeat(4));
    let params = |org: osb_proto::OrgId| {
        json!({
            "orgId": org.to_string(),
            "sandboxId": format!("sbx_{}", "a".repeat(32)),
            "envs": { "DB_PASSWORD": "user-env-canary" },
        })
    };

    // Ours: one stuck (an undo failed with a token in its message), one running, one done.
    let stuck = SagaId::new();
    let stuck_claim = store
        .create_saga(stuck, "create_sandbox", params(ours), "cp-1")
        .await
        .unwrap()
        .claim()
        .unwrap();
    let sealed = json!({ "secrets": [{ "name": "API_KEY", "token": token }] });
    store
        .record_saga_step(
            stuck,
            &stuck_claim,
            2,
            "seal_secrets",
            StepAction::Do,
            StepStatus::Completed,
            Some(sealed),
        )
        .await
        .unwrap();
    store
        .record_saga_step(
            stuck,
            &stuck_claim,
            3,
            "boot_sandbox",
            StepAction::Do,
            StepStatus::Failed,
            Some(json!({ "error": "boot failed" })),
        )
        .await
        .unwrap();
    store
        .record_saga_step(
            stuck,
            &stuck_claim,
            2,
            "seal_secrets",
            StepAction::Undo,
            StepStatus::Failed,
            Some(json!({ "error": format!("drop session of {token} failed") })),
        )
        .await
        .unwrap();
    store
        .set_saga_status(stuck, &stuck_claim, SagaStatus::Stuck)
        .await
        .unwrap();
    let running = SagaId::new();
    store
        .create_saga(running, "destroy_sandbox", params(ours), "cp-1")
        .await
        .unwrap();
    let done = SagaId::new();
    let done_claim = store
        .create_saga(done, "destroy_sandbox", params(ours), "cp-1")
        .await
        .unwrap()
        .claim()
        .unwrap();
    store
        .set_saga_status(done, &done_claim, SagaStatus::Completed)
        .await
        .unwrap();
    // Theirs: running.
    let foreign = SagaId::new();
    store
        .create_saga(foreign, "create_sandbox", params(theirs), "cp-1")
        .await
        .unwrap();

    let (status, sagas) = gateway.as_acme("GET", "/api/sagas", None).await;
    assert_eq!(status, 200, "{sagas}");
    assert_documented(&document, "GET", "/api/sagas", status, &sagas);
    let ids: Vec<&str> = sagas
        .as_array()
        .unwrap()
        .iter()
        .map(|saga| saga["sagaID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [stuck.to_string(), running.to_string()],
        "oldest first, ours, unfinished"
    );
    let first = &sagas[0];
    assert_eq!(first["status"], "stuck");
    assert_eq!(
        first["currentStep"], "seal_secrets",
        "the undo is where it stands"
    );
    assert_eq!(first["sandboxID"], format!("sbx_{}", "a".repeat(32)));
    let text = sagas.to_string();
    assert!(
        !text.contains("user-env-canary"),
        "parameters leaked: {text}"
    );
    assert!(!text.contains(&token), "a whole token leaked: {text}");
    assert!(
        text.contains("drop session of osb_sealed_[redacted] failed"),
        "{text}"
    );
    assert!(text.contains("boot failed"));

    let (status, theirs_view) = gateway
        .call("GET", "/api/sagas", None, Some(&gateway.other_key.clone()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(theirs_view.as_array().unwrap().len(), 1);
    assert_eq!(theirs_view[0]["sagaID"], foreign.to_string());

    let (status, body) = gateway.call("GET", "/api/sagas", None, None).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "missing_api_key")
    );
}

#[tokio::test]
async fn workers_need_a_control_plane_and_show_no_usage() {
    let gateway = Gateway::start().await;
    let document = fetch_document(&gateway).await;
    let (status, body) = gateway.as_acme("GET", "/api/workers", None).await;
    assert_eq!((status, error_code(&body).as_str()), (503, "unavailable"));
    assert_documented(&document, "GET", "/api/workers", status, &body);
    let gateway = fixtures::with_control(gateway).await;
    let (status, body) = gateway.as_acme("GET", "/api/workers", None).await;
    assert_eq!((status, body.clone()), (200, json!([])));
    assert_documented(&document, "GET", "/api/workers", status, &body);
}

#[tokio::test]
async fn the_page_and_its_assets_carry_strict_headers() {
    use actix_web::{test, web, App};
    let gateway = Gateway::start().await;
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    for (path, media_type) in [
        ("/dashboard", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/event-stream.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/icon.svg", "image/svg+xml"),
    ] {
        let response =
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(media_type), "{path}");
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    // Only the embedded files: no traversal, no directory, no other name.
    for path in [
        "/dashboard/missing.js",
        "/dashboard/..%2FCargo.toml",
        "/dashboard/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/dashboard/index.html%00.js",
    ] {
        let (status, body) = send(&gateway, "GET", path, None, &[]).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(error_code(&body), "not_found", "{path}");
    }
    // Deeper paths match no route at all.
    let (status, _) = send(&gateway, "GET", "/dashboard/app.js/x", None, &[]).await;
    assert_eq!(status, 404);
}
