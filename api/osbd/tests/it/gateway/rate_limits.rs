//! The REST rate limit per API key (ADR 0027): a key that spent its burst gets 429
//! `rate_limited` with a `Retry-After` header, while another key of the same org is unaffected.

use std::sync::Arc;

use osb_gateway::RateLimiter;

use super::{error_code, Gateway};

#[actix_web::test]
async fn a_key_past_its_burst_gets_429_with_retry_after() {
    let mut gateway = Gateway::start().await;
    // Three at once, then one every ~17 minutes: the fourth request is refused.
    let limiter = Arc::new(RateLimiter::new(0.001, 3.0));
    gateway.state = gateway.state.clone().with_rate_limiter(limiter);
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    let get = |key: &str| {
        actix_web::test::TestRequest::get()
            .uri("/api/projects")
            .insert_header(("X-API-Key", key.to_owned()))
            .to_request()
    };
    for _ in 0..3 {
        let response = actix_web::test::call_service(&app, get(&gateway.key)).await;
        assert_eq!(response.status().as_u16(), 200);
    }
    let refused = actix_web::test::call_service(&app, get(&gateway.key)).await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((900..=1001).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = actix_web::test::read_body_json(refused).await;
    assert_eq!(error_code(&body), "rate_limited");

    let (_, other_key) = super::org_with_key(&gateway.store, "initech").await;
    let response = actix_web::test::call_service(&app, get(&other_key)).await;
    assert_eq!(response.status().as_u16(), 200, "buckets are per key");
}
