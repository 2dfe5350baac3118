//! Authentication: missing key 401, wrong key 403, both header forms accepted.

use super::{error_code, Gateway};

#[tokio::test]
async fn missing_and_wrong_keys_are_refused() {
    let gateway = Gateway::start().await;
    let (status, body) = gateway.call("GET", "/api/projects", None, None).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "missing_api_key")
    );
    let (status, body) = gateway
        .call("GET", "/api/projects", None, Some("osk_nope"))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "invalid_api_key")
    );
    let (status, body) = gateway.as_acme("GET", "/api/projects", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!([]),
        "empty lists are [], never null"
    );
}

#[tokio::test]
async fn bearer_header_works_too() {
    let gateway = Gateway::start().await;
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    let request = actix_web::test::TestRequest::get()
        .uri("/api/projects")
        .insert_header(("Authorization", format!("Bearer {}", gateway.key)))
        .to_request();
    let response = actix_web::test::call_service(&app, request).await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let gateway = Gateway::start().await;
    assert_eq!(gateway.call("GET", "/healthz", None, None).await.0, 200);
    let (status, body) = gateway.call("GET", "/readyz", None, None).await;
    assert_eq!((status, body["database"].as_str()), (200, Some("ok")));
    assert_eq!(body["vault"].as_str(), Some("ok"));
    let (status, body) = gateway.as_acme("GET", "/api/nope", None).await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
}

#[tokio::test]
async fn a_locked_vault_makes_the_gateway_not_ready_and_says_why() {
    use osb_vault::{KeyringConfig, MasterKey, SecretValue, Vault};

    let mut gateway = Gateway::start().await;
    let project = gateway
        .store
        .create_project(osb_store::NewProject {
            org_id: gateway.org,
            name: "web".to_owned(),
            template: None,
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            egress_allowlist: vec![],
            runtime: None,
        })
        .await
        .expect("project");
    gateway
        .state
        .vault
        .put_secret(
            gateway.org,
            project.id,
            "A",
            &SecretValue::from_string("a".into()),
            None,
        )
        .await
        .expect("put");
    // The operator restarts with a mistyped primary key and without the real one.
    let wrong = KeyringConfig {
        primary: MasterKey::generate(),
        retired: Vec::new(),
    };
    let locked = Vault::open(gateway.store.clone(), wrong)
        .await
        .expect("opens locked");
    gateway.state = osb_gateway::AppState::new(locked, gateway.bus.clone());
    let (status, body) = gateway.call("GET", "/readyz", None, None).await;
    assert_eq!((status, error_code(&body).as_str()), (503, "unavailable"));
    let reason = body["error"].as_str().unwrap_or_default();
    assert!(reason.contains("locked"), "{reason}");
    assert!(reason.contains("key version 1"), "{reason}");
    // Writes are refused with the same explanation and change nothing.
    let (status, body) = gateway
        .as_acme(
            "PUT",
            &format!("/api/projects/{}/secrets/B", project.id),
            Some(r#"{"value":"b"}"#),
        )
        .await;
    assert_eq!((status, error_code(&body).as_str()), (503, "unavailable"));
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("locked"),
        "{body}"
    );
    assert_eq!(
        gateway
            .store
            .list_secrets(project.id)
            .await
            .expect("list")
            .len(),
        1
    );
}
