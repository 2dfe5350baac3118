//! Secrets through the gateway: write-only values, versions, validation, and the canary: the
//! value never comes back in any response and the database holds only ciphertext.

use osb_testkit::Canary;
use serde_json::json;

use super::{error_code, Gateway};

#[tokio::test]
async fn set_list_update_delete_without_ever_returning_the_value() {
    let gateway = Gateway::start().await;
    gateway
        .as_acme(
            "POST",
            "/api/projects",
            Some(r#"{"name":"web","egressAllowlist":["api.example.test"]}"#),
        )
        .await;
    let canary = Canary::new("gateway");
    let mut responses = String::new();

    let body = json!({ "value": canary.value(), "allowedHosts": ["API.example.test"] }).to_string();
    let (status, set) = gateway
        .as_acme(
            "PUT",
            "/api/projects/web/secrets/ANTHROPIC_API_KEY",
            Some(&body),
        )
        .await;
    responses.push_str(&set.to_string());
    assert_eq!(status, 201, "{set}");
    assert_eq!(
        set,
        json!({"name":"ANTHROPIC_API_KEY","status":"set","version":1,"refreshed":0})
    );

    let updated_value = Canary::new("gateway-v2");
    let body = json!({ "value": updated_value.value() }).to_string();
    let (status, set) = gateway
        .as_acme(
            "PUT",
            "/api/projects/web/secrets/ANTHROPIC_API_KEY",
            Some(&body),
        )
        .await;
    responses.push_str(&set.to_string());
    assert_eq!((status, set["version"].as_u64()), (200, Some(2)));

    let (status, list) = gateway
        .as_acme("GET", "/api/projects/web/secrets", None)
        .await;
    responses.push_str(&list.to_string());
    assert_eq!(status, 200);
    assert_eq!(list[0]["name"], "ANTHROPIC_API_KEY");
    assert_eq!(list[0]["allowedHosts"], json!([]));
    assert_eq!(list[0]["inheritsProjectAllowlist"], true);
    assert!(list[0].get("value").is_none());

    canary.assert_absent("API responses", &responses);
    updated_value.assert_absent("API responses", &responses);
    let rows = gateway.snapshot().await;
    canary.assert_absent("the database", &rows);
    updated_value.assert_absent("the database", &rows);

    let (status, _) = gateway
        .as_acme(
            "DELETE",
            "/api/projects/web/secrets/ANTHROPIC_API_KEY",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, list) = gateway
        .as_acme("GET", "/api/projects/web/secrets", None)
        .await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn bad_secret_requests_are_refused_and_change_nothing() {
    let gateway = Gateway::start().await;
    gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
        .await;
    let canary = Canary::new("refused");
    let before = gateway.snapshot().await;
    let big = json!({ "value": "v".repeat(70_000) }).to_string();
    let with_canary = json!({ "value": canary.value(), "allowedHosts": ["*"] }).to_string();
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        (
            "PUT",
            "/api/projects/web/secrets/1BAD".into(),
            Some(r#"{"value":"x"}"#),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/A-B".into(),
            Some(r#"{"value":"x"}"#),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/HTTPS_PROXY".into(),
            Some(r#"{"value":"x"}"#),
            422,
            "unprocessable",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/A".into(),
            Some(r#"{"value":""}"#),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/A".into(),
            Some(&big),
            413,
            "payload_too_large",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/A".into(),
            Some(r#"{"value":"x","allowedHosts":[]}"#),
            422,
            "unprocessable",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/A".into(),
            Some(&with_canary),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/A".into(),
            Some(r#"{"value":"x","extra":true}"#),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/projects/web/secrets/A".into(),
            Some(r#"{"valu"#),
            400,
            "invalid_input",
        ),
        (
            "PUT",
            "/api/projects/nope/secrets/A".into(),
            Some(r#"{"value":"x"}"#),
            404,
            "not_found",
        ),
        (
            "DELETE",
            "/api/projects/web/secrets/MISSING".into(),
            None,
            404,
            "not_found",
        ),
    ];
    let mut responses = String::new();
    for (method, path, body, status, code) in &cases {
        let (got_status, got) = gateway.as_acme(method, path, *body).await;
        responses.push_str(&got.to_string());
        assert_eq!(got_status, *status, "{method} {path}: {got}");
        assert_eq!(error_code(&got), *code, "{method} {path}");
    }
    canary.assert_absent("error responses", &responses);
    assert_eq!(gateway.snapshot().await, before, "refusals changed nothing");
}
