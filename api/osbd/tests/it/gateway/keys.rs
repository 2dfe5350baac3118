//! The API key lifecycle over REST (ADR 0026): an admin key lists, creates (named, scoped,
//! optionally expiring), revokes and rotates keys; revoked and expired keys are 401 with their
//! own codes while unknown ones stay 403; every scope is checked against every route class
//! (a table: scope × class → allowed or 403 `insufficient_scope`); `last_used_at` is written
//! in batches, not per request; cached lookups still honour revocation and expiry; and no key
//! ever reaches a log line (canary on captured logs).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osb_gateway::{ApiKey, KeyCache, KeyUsage};
use osb_store::NewApiKey;
use serde_json::json;

use super::{error_code, Gateway};

/// A key of the primary org with `scope` (and `expires_at`), created straight in the store.
async fn key_with(
    gateway: &Gateway,
    scope: &str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let key = ApiKey::generate();
    gateway
        .store
        .create_api_key(NewApiKey {
            org_id: gateway.org,
            name: format!("{scope} key"),
            key_hash: key.hash(),
            key_prefix: key.display_prefix(),
            scope: scope.to_owned(),
            expires_at,
        })
        .await
        .expect("key");
    key.expose().to_owned()
}

#[actix_web::test]
async fn keys_are_listed_created_revoked_and_rotated_by_an_admin_key() {
    let gateway = Gateway::start().await;
    let (status, listed) = gateway.as_acme("GET", "/api/keys", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "the bootstrap key"
    );
    assert_eq!(listed[0]["scope"], "admin");
    assert!(
        listed[0].get("apiKey").is_none(),
        "listings never show a key"
    );

    let expiry = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let body = json!({ "name": "ci runner", "scope": "sandboxes", "expiresAt": expiry });
    let (status, created) = gateway
        .as_acme("POST", "/api/keys", Some(&body.to_string()))
        .await;
    assert_eq!(status, 201, "{created}");
    let ci_key = created["apiKey"].as_str().expect("shown once").to_owned();
    let ci_id = created["keyID"].as_str().expect("id").to_owned();
    assert!(ci_key.starts_with(created["prefix"].as_str().unwrap_or("?")));
    assert_eq!(created["status"], "active");
    assert!(
        !gateway.snapshot().await.contains(&ci_key),
        "only the hash is stored"
    );
    let (status, _) = gateway
        .call("GET", "/api/sandboxes", None, Some(&ci_key))
        .await;
    assert_eq!(status, 200, "the new key works");

    // Rotation: the new key works, the old one is revoked (401 revoked_api_key).
    let (status, rotated) = gateway
        .as_acme("POST", &format!("/api/keys/{ci_id}/rotate"), None)
        .await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(
        (rotated["name"].clone(), rotated["scope"].clone()),
        (json!("ci runner"), json!("sandboxes"))
    );
    assert_eq!(
        rotated["expiresAt"], created["expiresAt"],
        "rotation keeps the expiry"
    );
    let new_key = rotated["apiKey"].as_str().expect("new key").to_owned();
    let (status, body) = gateway
        .call("GET", "/api/sandboxes", None, Some(&ci_key))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "revoked_api_key")
    );
    let (status, _) = gateway
        .call("GET", "/api/sandboxes", None, Some(&new_key))
        .await;
    assert_eq!(status, 200);
    let (status, body) = gateway
        .as_acme("POST", &format!("/api/keys/{ci_id}/rotate"), None)
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (409, "conflict"),
        "a revoked key is not rotated"
    );

    // Revocation.
    let new_id = rotated["keyID"].as_str().expect("id");
    let (status, revoked) = gateway
        .as_acme("DELETE", &format!("/api/keys/{new_id}"), None)
        .await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")));
    let (status, body) = gateway
        .call("GET", "/api/sandboxes", None, Some(&new_key))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "revoked_api_key")
    );

    // Another org's key id is 404; bad input is 400 and changes nothing.
    let (_, other) = gateway
        .call("GET", "/api/keys", None, Some(&gateway.other_key.clone()))
        .await;
    let other_id = other[0]["keyID"]
        .as_str()
        .expect("other org's key")
        .to_owned();
    let before = gateway.snapshot().await;
    for (method, path, body, expected) in [
        ("DELETE", format!("/api/keys/{other_id}"), None, 404),
        ("POST", format!("/api/keys/{other_id}/rotate"), None, 404),
        ("DELETE", "/api/keys/not-a-uuid".to_owned(), None, 400),
        (
            "POST",
            "/api/keys".to_owned(),
            Some(r#"{"name":"x","scope":"root"}"#),
            400,
        ),
        (
            "POST",
            "/api/keys".to_owned(),
            Some(r#"{"name":"","scope":"read"}"#),
            400,
        ),
        ("POST", "/api/keys".to_owned(), Some(r#"{"name":"x"}"#), 400),
        (
            "POST",
            "/api/keys".to_owned(),
            Some(r#"{"name":"x","scope":"read","expiresAt":"2001-01-01T00:00:00Z"}"#),
            400,
        ),
    ] {
        let (status, body) = gateway.as_acme(method, &path, body).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        error_code(&body);
    }
    assert_eq!(gateway.snapshot().await, before, "refusals change nothing");
}

#[actix_web::test]
async fn expired_keys_are_refused_with_their_own_code() {
    let gateway = Gateway::start().await;
    let expired = key_with(
        &gateway,
        "admin",
        Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
    )
    .await;
    let (status, body) = gateway
        .call("GET", "/api/projects", None, Some(&expired))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "expired_api_key")
    );
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("rotate"), "{message}");
    assert!(
        !message.contains(&expired),
        "the refusal never quotes the key"
    );
    let (status, body) = gateway
        .call("GET", "/api/projects", None, Some("osk_unknown"))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "invalid_api_key")
    );
}

/// Each scope against one route of each class: `true` = allowed (the route's own answer),
/// `false` = 403 `insufficient_scope`.
#[actix_web::test]
async fn every_scope_is_enforced_on_every_route_class() {
    let gateway = Gateway::start().await;
    let keys = [
        ("admin", key_with(&gateway, "admin", None).await),
        ("sandboxes", key_with(&gateway, "sandboxes", None).await),
        ("read", key_with(&gateway, "read", None).await),
    ];
    let missing = "sbx_00000000000000000000000000000000";
    #[rustfmt::skip]
    let table: &[(&str, String, Option<&str>, [bool; 3])] = &[
        //  method   path                                   body                           admin  sandboxes read
        ("GET",    "/api/keys".into(),                      None,                          [true, false, false]),
        ("POST",   "/api/keys".into(),                      Some(r#"{"name":"n","scope":"read"}"#), [true, false, false]),
        ("GET",    "/api/projects".into(),                  None,                          [true, false, true]),
        ("POST",   "/api/projects".into(),                  Some(r#"{"name":"scoped"}"#),  [true, false, false]),
        ("PUT",    "/api/projects/scoped/secrets/TOKEN".into(), Some(r#"{"value":"v"}"#),  [true, false, false]),
        ("GET",    "/api/projects/scoped/secrets".into(),   None,                          [true, false, true]),
        ("GET",    "/api/sandboxes".into(),                 None,                          [true, true, true]),
        ("POST",   "/api/sandboxes".into(),                 Some(r#"{"cpuCount":0}"#),     [true, true, false]),
        ("DELETE", format!("/api/sandboxes/{missing}"),     None,                          [true, true, false]),
        ("GET",    "/api/snapshots".into(),                 None,                          [true, true, true]),
        ("GET",    "/api/workers".into(),                   None,                          [true, true, true]),
        ("GET",    "/api/sagas".into(),                     None,                          [true, true, true]),
    ];
    for (method, path, body, allowed) in table {
        for ((scope, key), allowed) in keys.iter().zip(allowed) {
            let (status, answer) = gateway.call(method, path, *body, Some(key)).await;
            let refused = status == 403 && answer["code"] == "insufficient_scope";
            assert_eq!(
                !refused, *allowed,
                "{scope} key on {method} {path}: {status} {answer}"
            );
            if refused {
                let message = answer["error"].as_str().unwrap_or_default();
                assert!(
                    message.contains(scope) && message.contains(path.as_str()),
                    "{message}"
                );
            }
        }
    }
}

#[actix_web::test]
async fn last_use_is_written_in_batches_not_per_request() {
    let mut gateway = Gateway::start().await;
    let usage = Arc::new(KeyUsage::new(Duration::from_secs(3600)));
    gateway.state = gateway.state.clone().with_key_usage(usage.clone());
    let key = key_with(&gateway, "read", None).await;
    for _ in 0..25 {
        let (status, _) = gateway.call("GET", "/api/projects", None, Some(&key)).await;
        assert_eq!(status, 200);
    }
    assert_eq!(usage.batches(), 1, "25 requests, one batch (the first use)");
    usage.flush(&gateway.store).await.expect("flush");
    assert_eq!(usage.batches(), 2, "the rest in one more");
    let keys = gateway
        .store
        .list_api_keys(gateway.org)
        .await
        .expect("keys");
    let used = keys
        .iter()
        .find(|k| k.scope == "read")
        .expect("the read key");
    assert!(used.last_used_at.is_some(), "{used:?}");
}

/// Lookups are cached by the key's hash (ADR 0033), yet revocation holds: through this gateway
/// at once, and from elsewhere (another gateway, `osbd admin keys revoke`: straight in the
/// store here) within the cache's ttl. Expiry is exact even for a cached key.
#[actix_web::test]
async fn cached_keys_still_honour_revocation_and_expiry() {
    let mut gateway = Gateway::start().await;
    let ttl = Duration::from_millis(400);
    let cache = Arc::new(KeyCache::new(ttl, 64));
    gateway.state = gateway.state.clone().with_key_cache(cache.clone());
    let key = key_with(&gateway, "read", None).await;
    let (status, _) = gateway.call("GET", "/api/projects", None, Some(&key)).await;
    assert_eq!(status, 200);
    assert_eq!(cache.len(), 1, "the key's record is cached after one use");
    let unknown = ApiKey::generate();
    let (status, _) = gateway
        .call("GET", "/api/projects", None, Some(unknown.expose()))
        .await;
    assert_eq!(status, 403);
    assert_eq!(cache.len(), 1, "unknown keys are never cached");

    let keys = gateway
        .store
        .list_api_keys(gateway.org)
        .await
        .expect("keys");
    let id = keys
        .iter()
        .find(|k| k.scope == "read")
        .expect("read key")
        .id;
    gateway
        .store
        .revoke_api_key(gateway.org, id)
        .await
        .expect("revoked elsewhere");
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let (status, body) = gateway.call("GET", "/api/projects", None, Some(&key)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "revoked_api_key"),
        "a revocation made elsewhere holds within the ttl"
    );

    // A key that expires while cached is refused from its expiry on, not the cache's.
    let soon = key_with(
        &gateway,
        "admin",
        Some(chrono::Utc::now() + chrono::Duration::milliseconds(300)),
    )
    .await;
    let long_cache = Arc::new(KeyCache::new(Duration::from_secs(3600), 64));
    gateway.state = gateway.state.clone().with_key_cache(long_cache);
    let (status, _) = gateway
        .call("GET", "/api/projects", None, Some(&soon))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, body) = gateway
        .call("GET", "/api/projects", None, Some(&soon))
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (401, "expired_api_key")
    );
}

/// A writer the test's subscriber logs into.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn no_key_reaches_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let gateway = Gateway::start().await;
    let (_, created) = gateway
        .as_acme(
            "POST",
            "/api/keys",
            Some(r#"{"name":"canary","scope":"read"}"#),
        )
        .await;
    let canary = created["apiKey"].as_str().expect("key").to_owned();
    let id = created["keyID"].as_str().expect("id").to_owned();
    gateway
        .call("GET", "/api/projects", None, Some(&canary))
        .await;
    gateway
        .call(
            "POST",
            "/api/projects",
            Some(r#"{"name":"x"}"#),
            Some(&canary),
        )
        .await;
    gateway
        .as_acme("DELETE", &format!("/api/keys/{id}"), None)
        .await;
    gateway
        .call("GET", "/api/projects", None, Some(&canary))
        .await;
    gateway
        .call("GET", "/api/projects", None, Some(&format!("{canary}x")))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
    assert!(
        logs.contains("api key revoked") && logs.contains(&id),
        "the capture works: {logs}"
    );
    assert!(logs.contains("a revoked api key was refused"), "{logs}");
    let secret_part = canary.trim_start_matches("osk_");
    assert!(!logs.contains(secret_part), "a key reached the logs");
    assert!(!logs.contains(&gateway.key), "a key reached the logs");
}
