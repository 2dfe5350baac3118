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

#[tokio::test]
async fn secret_changes_are_events_with_names_and_versions_only() {
    let gateway = Gateway::start().await;
    let mut events = gateway.bus.subscribe("osb.project.>").await.unwrap();
    let (_, project) = gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
        .await;
    let project_id = project["id"].as_str().unwrap().to_owned();
    let canary = Canary::new("event");
    let body = json!({ "value": canary.value(), "allowedHosts": ["api.example.test"] }).to_string();
    gateway
        .as_acme("PUT", "/api/projects/web/secrets/API_KEY", Some(&body))
        .await;
    gateway
        .as_acme("DELETE", "/api/projects/web/secrets/API_KEY", None)
        .await;

    let updated = events
        .next_within(std::time::Duration::from_secs(5))
        .await
        .expect("secret_updated");
    assert_eq!(
        updated.subject,
        format!("osb.project.{project_id}.secret_updated")
    );
    let payload: serde_json::Value = serde_json::from_slice(&updated.payload).unwrap();
    assert_eq!(payload["payload"]["name"], "API_KEY");
    assert_eq!(payload["payload"]["version"], 1);
    assert_eq!(
        payload["payload"]["allowedHosts"],
        json!(["api.example.test"])
    );
    assert!(
        payload["payload"]["orgId"]
            .as_str()
            .unwrap()
            .starts_with("org_"),
        "the org, so event streams can filter: {payload}"
    );
    assert_eq!(
        payload["payload"].as_object().unwrap().len(),
        4,
        "names, version, hosts and org only: {payload}"
    );
    let deleted = events
        .next_within(std::time::Duration::from_secs(5))
        .await
        .expect("secret_deleted");
    assert_eq!(
        deleted.subject,
        format!("osb.project.{project_id}.secret_deleted")
    );
    let all = format!(
        "{updated:?}{deleted:?}{}",
        String::from_utf8_lossy(&updated.payload)
    );
    canary.assert_absent("bus events", &all);
}

/// DESIGN.md §7 on the real bus: everything that crosses NATS (`>`) while secrets are set,
/// updated and deleted through the gateway is searched for the canary in every encoding.
#[tokio::test]
async fn no_secret_value_crosses_nats() {
    let url =
        std::env::var("OSB_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let nats = osb_bus::NatsBus::connect(&url).await.unwrap();
    nats.ensure_streams().await.unwrap();
    let bus: std::sync::Arc<dyn osb_bus::Bus> = std::sync::Arc::new(nats);
    let mut everything = bus.subscribe(">").await.unwrap();
    bus.flush().await.unwrap();
    let database = osb_testkit::TestDatabase::postgres().await.unwrap();
    let gateway = Gateway::start_with_bus(database, bus.clone()).await;
    gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
        .await;
    let first = Canary::new("nats-1");
    let second = Canary::new("nats-2");
    for canary in [&first, &second] {
        let body = json!({ "value": canary.value() }).to_string();
        let (status, _) = gateway
            .as_acme("PUT", "/api/projects/web/secrets/API_KEY", Some(&body))
            .await;
        assert!(status == 200 || status == 201);
    }
    gateway
        .as_acme("DELETE", "/api/projects/web/secrets/API_KEY", None)
        .await;
    let mut seen = Vec::new();
    let mut updates = 0;
    while let Some(message) = everything
        .next_within(std::time::Duration::from_millis(500))
        .await
    {
        if message.subject.ends_with(".secret_updated") {
            updates += 1;
        }
        seen.extend_from_slice(message.subject.as_bytes());
        seen.extend_from_slice(format!("{:?}", message.headers).as_bytes());
        seen.extend_from_slice(&message.payload);
    }
    assert!(updates >= 2, "the updates really crossed NATS ({updates})");
    for canary in [&first, &second] {
        assert!(
            canary.found_in_bytes(&seen).is_empty(),
            "a secret value crossed NATS"
        );
    }
}
