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
    let (status, body) = gateway.as_acme("GET", "/api/nope", None).await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
}
