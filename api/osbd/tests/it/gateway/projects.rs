//! Projects through the gateway.

use serde_json::json;

use super::{error_code, Gateway};

/// method, path, body, expected status, expected code, a word the error must mention.
type Case<'a> = (&'a str, &'a str, Option<&'a str>, u16, &'a str, &'a str);

#[tokio::test]
async fn create_get_list_patch_delete() {
    let gateway = Gateway::start().await;
    let (status, created) = gateway
        .as_acme(
            "POST",
            "/api/projects",
            Some(r#"{"name":"web","egressAllowlist":["API.example.test "],"cpuCount":2}"#),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["egressAllowlist"], json!(["api.example.test"]));
    assert_eq!(
        (created["cpuCount"].as_u64(), created["memoryMB"].as_u64()),
        (Some(2), Some(512))
    );
    assert_eq!(
        created["orgId"].as_str(),
        Some(gateway.org.to_string().as_str())
    );
    let id = created["id"].as_str().unwrap().to_owned();

    gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"alpha"}"#))
        .await;
    let (_, list) = gateway.as_acme("GET", "/api/projects", None).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "web"], "sorted by name");

    let (status, by_name) = gateway.as_acme("GET", "/api/projects/web", None).await;
    assert_eq!((status, by_name["id"].as_str()), (200, Some(id.as_str())));
    let (status, _) = gateway
        .as_acme("GET", &format!("/api/projects/{id}"), None)
        .await;
    assert_eq!(status, 200);

    let (status, patched) = gateway
        .as_acme(
            "PATCH",
            "/api/projects/web",
            Some(r#"{"memoryMB":1024,"template":null}"#),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["memoryMB"], 1024);
    assert_eq!(
        patched["egressAllowlist"],
        json!(["api.example.test"]),
        "absent keeps"
    );
    assert_eq!(patched["cpuCount"], 2);
    let (_, cleared) = gateway
        .as_acme(
            "PATCH",
            "/api/projects/web",
            Some(r#"{"egressAllowlist":[]}"#),
        )
        .await;
    assert_eq!(cleared["egressAllowlist"], json!([]), "[] clears");

    let (status, _) = gateway.as_acme("DELETE", "/api/projects/web", None).await;
    assert_eq!(status, 204);
    let (status, body) = gateway.as_acme("GET", "/api/projects/web", None).await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let gateway = Gateway::start().await;
    gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
        .await;
    let before = gateway.snapshot().await;
    let cases: &[Case] = &[
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":"web"}"#),
            409,
            "conflict",
            "already exists",
        ),
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":"Bad Name"}"#),
            400,
            "invalid_input",
            "lowercase",
        ),
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":"x","cpuCount":99}"#),
            400,
            "invalid_input",
            "cpuCount",
        ),
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":"x","memoryMB":1}"#),
            400,
            "invalid_input",
            "memoryMB",
        ),
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":"x","egressAllowlist":["*"]}"#),
            400,
            "invalid_input",
            "egressAllowlist[0]",
        ),
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":"x","bogus":1}"#),
            400,
            "invalid_input",
            "bogus",
        ),
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":"x""#),
            400,
            "invalid_input",
            "not valid",
        ),
        (
            "POST",
            "/api/projects",
            Some(r#"{"name":5}"#),
            400,
            "invalid_input",
            "not valid",
        ),
        (
            "PATCH",
            "/api/projects/web",
            Some(r#"{"cpuCount":0}"#),
            400,
            "invalid_input",
            "cpuCount",
        ),
        (
            "PATCH",
            "/api/projects/web",
            Some(r#"{"egressAllowlist":["https://x.test/"]}"#),
            400,
            "invalid_input",
            "egressAllowlist[0]",
        ),
        (
            "PATCH",
            "/api/projects/nope",
            Some(r#"{"cpuCount":2}"#),
            404,
            "not_found",
            "nope",
        ),
        (
            "DELETE",
            "/api/projects/nope",
            None,
            404,
            "not_found",
            "nope",
        ),
    ];
    for (method, path, body, status, code, mentions) in cases {
        let (got_status, got) = gateway.as_acme(method, path, *body).await;
        assert_eq!(got_status, *status, "{method} {path} {body:?}: {got}");
        assert_eq!(error_code(&got), *code, "{method} {path} {body:?}");
        assert!(
            got["error"].as_str().unwrap().contains(mentions),
            "{method} {path}: {got}"
        );
    }
    // A rename onto a taken name is a conflict too.
    gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"api"}"#))
        .await;
    let after_create = gateway.snapshot().await;
    let (status, body) = gateway
        .as_acme(
            "PATCH",
            "/api/projects/api",
            Some(r#"{"name":"web","cpuCount":4}"#),
        )
        .await;
    assert_eq!((status, error_code(&body).as_str()), (409, "conflict"));
    assert_eq!(
        gateway.snapshot().await,
        after_create,
        "the failed rename changed nothing"
    );
    assert_ne!(before, after_create);
    let oversized = format!(
        r#"{{"name":"big","template":"{}"}}"#,
        "t".repeat(2 * 1024 * 1024)
    );
    let (status, body) = gateway
        .as_acme("POST", "/api/projects", Some(&oversized))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (413, "payload_too_large")
    );
    assert_eq!(
        gateway.snapshot().await,
        after_create,
        "refusals changed nothing"
    );
}

#[tokio::test]
async fn other_orgs_see_nothing_and_touch_nothing() {
    let gateway = Gateway::start().await;
    let (_, created) = gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
        .await;
    let id = created["id"].as_str().unwrap();
    let other = gateway.other_key.clone();
    let before = gateway.snapshot().await;
    for (method, path, body) in [
        ("GET", format!("/api/projects/{id}"), None),
        ("GET", "/api/projects/web".to_owned(), None),
        (
            "PATCH",
            format!("/api/projects/{id}"),
            Some(r#"{"cpuCount":3}"#),
        ),
        ("DELETE", format!("/api/projects/{id}"), None),
        ("GET", format!("/api/projects/{id}/secrets"), None),
        (
            "PUT",
            format!("/api/projects/{id}/secrets/API_KEY"),
            Some(r#"{"value":"x"}"#),
        ),
    ] {
        let (status, body) = gateway.call(method, &path, body, Some(&other)).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (404, "not_found"),
            "{method} {path}"
        );
    }
    let (_, list) = gateway
        .call("GET", "/api/projects", None, Some(&other))
        .await;
    assert_eq!(list, json!([]));
    assert_eq!(gateway.snapshot().await, before);
}
