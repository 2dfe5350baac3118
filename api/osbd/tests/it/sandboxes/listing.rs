//! The listing cache (ADR 0035) on a real platform: with the cache's ttl set to an hour, the
//! sandbox list shows every change the sagas make at once — a create's transitions, a delete's,
//! and the reaper's destroy of an expired sandbox that no request of the caller triggered.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use osbd::testkit::{start_platform, Platform, PlatformOptions};

async fn status_in_list(platform: &Platform, id: &str) -> String {
    let (status, list) = platform.call("GET", "/api/sandboxes", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .expect("array")
        .iter()
        .find(|item| item["sandboxID"] == id)
        .map(|item| item["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "absent".to_owned())
}

async fn create(platform: &Platform, body: Value) -> String {
    let (status, sandbox) = platform.call("POST", "/api/sandboxes", Some(body)).await;
    assert_eq!(status, 201, "{sandbox}");
    sandbox["sandboxID"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn the_sandbox_list_shows_every_saga_transition_at_once() {
    let platform = start_platform(PlatformOptions::new("osbrc", 213)).await;
    let control = platform.control.as_ref().expect("a control plane");
    control.state().listings.set_ttl(Duration::from_secs(3600));
    platform.project_with_key("demo").await;
    let (status, empty) = platform.call("GET", "/api/sandboxes", None).await;
    assert_eq!(
        (status, empty),
        (200, json!([])),
        "primed with the empty list"
    );

    let kept = create(&platform, json!({ "project": "demo" })).await;
    assert_eq!(status_in_list(&platform, &kept).await, "running");

    // The reaper destroys this one after 2 s; nothing the caller sends invalidates for it.
    let expiring = create(&platform, json!({ "project": "demo", "timeoutSec": 2 })).await;
    assert_eq!(status_in_list(&platform, &expiring).await, "running");
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_in_list(&platform, &expiring).await != "destroyed" {
        assert!(
            Instant::now() < deadline,
            "the list never showed the reaper's destroy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, deleted) = platform
        .call("DELETE", &format!("/api/sandboxes/{kept}"), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        status_in_list(&platform, &kept).await,
        deleted["status"].as_str().expect("status")
    );
    assert_eq!(deleted["status"], "destroyed", "{deleted}");
    platform.stop().await;
}
