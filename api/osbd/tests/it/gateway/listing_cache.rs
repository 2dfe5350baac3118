//! The listing cache (ADR 0035) through the gateway: with a ttl of an hour — so only
//! invalidation, never expiry, can make a change visible — a list after every kind of write made
//! through this process shows the write at once; a change written straight into the database
//! (another process) stays hidden until its event arrives on the bus or, with a short ttl, the
//! ttl passes; another org never gets acme's pages, whatever cursor or limit it sends; cursors
//! walk the same pages cached or not; the bounds hold; and a canary secret value is never in the
//! cached bytes. Runs on PostgreSQL and SQLite.

use std::sync::Arc;
use std::time::Duration;

use osb_bus::{BusMessage, Envelope};
use osb_gateway::{ListingBounds, ListingCache};
use osb_proto::{OrgId, SandboxId};
use osb_store::{NewSandbox, OutboxEvent, SandboxStatus};
use osb_testkit::{Canary, TestDatabase};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{json, Value};

use super::fixtures::{self, get_as, other_org};
use super::Gateway;

const HOUR: Duration = Duration::from_secs(3600);

/// A gateway whose listing cache keeps pages for `ttl`, and a connection of "another process"
/// to its database.
async fn gateway_on(database: TestDatabase, ttl: Duration) -> (Gateway, DatabaseConnection) {
    let other_process = Database::connect(database.url())
        .await
        .expect("second connection");
    let mut gateway = Gateway::start_on(database).await;
    gateway.state = gateway
        .state
        .clone()
        .with_listing_cache(Arc::new(ListingCache::new(ListingBounds {
            ttl,
            ..ListingBounds::default()
        })));
    (gateway, other_process)
}

async fn list(gateway: &Gateway, path: &str) -> Value {
    let (status, _, body) = get_as(gateway, &gateway.key, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn field(list: &Value, name: &str) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|item| item[name].to_string())
        .collect()
}

/// The status the listing shows for `id`.
fn status_of(list: &Value, id: SandboxId) -> String {
    list.as_array()
        .expect("array")
        .iter()
        .find(|item| item["sandboxID"] == id.to_string())
        .map(|item| item["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "absent".to_owned())
}

async fn sql(db: &DatabaseConnection, statement: &str) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), statement))
        .await
        .expect(statement);
}

/// A sandbox inserted through this gateway (its list shows it `creating` at once), then failed
/// by "another process" straight in SQL: a change this gateway learns of only by an event or
/// once the ttl has passed.
async fn failed_elsewhere(
    gateway: &Gateway,
    other_process: &DatabaseConnection,
    template: &str,
) -> osb_store::SandboxRecord {
    let row = gateway
        .store
        .insert_sandbox(new_sandbox(gateway.org, template))
        .await
        .expect("insert");
    assert_eq!(
        status_of(&list(gateway, "/api/sandboxes").await, row.id),
        "creating"
    );
    sql(
        other_process,
        &format!("UPDATE sandboxes SET status = 'failed' WHERE template = '{template}'"),
    )
    .await;
    row
}

fn new_sandbox(org: OrgId, template: &str) -> NewSandbox {
    NewSandbox {
        id: SandboxId::new(),
        org_id: org,
        project_id: None,
        project_name: None,
        template: template.into(),
        cpu_count: 1,
        memory_mb: 256,
        timeout_sec: 300,
        metadata: Default::default(),
    }
}

#[tokio::test]
async fn a_list_after_each_project_write_shows_it_at_once() {
    for database in TestDatabase::each_kind().await.expect("databases") {
        let (gateway, other_process) = gateway_on(database, HOUR).await;
        assert_eq!(list(&gateway, "/api/projects").await, json!([]));

        let (status, _) = gateway
            .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
            .await;
        assert_eq!(status, 201);
        assert_eq!(
            field(&list(&gateway, "/api/projects").await, "name"),
            ["\"web\""]
        );

        let (status, _) = gateway
            .as_acme("PATCH", "/api/projects/web", Some(r#"{"cpuCount":2}"#))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            field(&list(&gateway, "/api/projects").await, "cpuCount"),
            ["2"]
        );

        let (status, _) = gateway
            .as_acme("PUT", "/api/projects/web", Some(r#"{"name":"site"}"#))
            .await;
        assert_eq!(status, 200);
        let listed = list(&gateway, "/api/projects").await;
        assert_eq!(field(&listed, "name"), ["\"site\""]);
        assert_eq!(
            field(&listed, "cpuCount"),
            ["1"],
            "PUT gave the default back"
        );

        // The cache is really in use: a change no write path of this process made stays hidden
        // for the ttl (an hour here)...
        sql(&other_process, "UPDATE projects SET cpu_count = 7").await;
        assert_eq!(
            field(&list(&gateway, "/api/projects").await, "cpuCount"),
            ["1"]
        );
        // ...until a write through this process invalidates the org.
        let (status, _) = gateway.as_acme("DELETE", "/api/projects/site", None).await;
        assert_eq!(status, 204);
        assert_eq!(list(&gateway, "/api/projects").await, json!([]));
    }
}

/// Every store write a saga, the reaper or a lost-worker report makes to a sandbox row shows in
/// the next list: insert, placement, runtime, transitions with and without their outbox event.
#[tokio::test]
async fn a_list_after_each_sandbox_write_shows_it_at_once() {
    for database in TestDatabase::each_kind().await.expect("databases") {
        let (gateway, _) = gateway_on(database, HOUR).await;
        let store = &gateway.store;
        assert_eq!(list(&gateway, "/api/sandboxes").await, json!([]));

        let row = store
            .insert_sandbox(new_sandbox(gateway.org, "host-system"))
            .await
            .expect("insert");
        let id = row.id;
        assert_eq!(
            status_of(&list(&gateway, "/api/sandboxes").await, id),
            "creating"
        );

        let worker: osb_proto::WorkerName = "wa".parse().expect("name");
        store
            .set_sandbox_worker(id, Some(&worker))
            .await
            .expect("placed");
        let listed = list(&gateway, "/api/sandboxes").await;
        assert_eq!(listed[0]["workerID"], "wa", "{listed}");

        store
            .set_sandbox_runtime(id, "netns", "enforced")
            .await
            .expect("runtime");
        assert_eq!(
            list(&gateway, "/api/sandboxes").await[0]["egress"],
            "enforced"
        );

        let generation = store
            .transition_sandbox(id, row.generation, SandboxStatus::Running, None, None)
            .await
            .expect("running");
        assert_eq!(
            status_of(&list(&gateway, "/api/sandboxes").await, id),
            "running"
        );

        let event = OutboxEvent {
            msg_id: format!("{id}:worker_lost:1"),
            subject: format!("osb.sandbox.{id}.worker_lost"),
            payload: b"{}".to_vec(),
        };
        store
            .transition_sandbox_announcing(
                id,
                generation,
                SandboxStatus::Failed,
                (None, Some("worker lost")),
                &event,
            )
            .await
            .expect("failed");
        let listed = list(&gateway, "/api/sandboxes").await;
        assert_eq!(status_of(&listed, id), "failed");
        assert_eq!(listed[0]["failureReason"], "worker lost");
    }
}

/// Another process's write (straight SQL here) shows after its event arrives on the bus, and —
/// when nothing announces it — once the ttl has passed.
#[tokio::test]
async fn another_processs_write_shows_after_its_event_or_the_ttl() {
    for database in TestDatabase::each_kind().await.expect("databases") {
        let (gateway, other_process) = gateway_on(database, HOUR).await;
        let row = failed_elsewhere(&gateway, &other_process, "probe-event").await;
        assert_eq!(
            status_of(&list(&gateway, "/api/sandboxes").await, row.id),
            "creating",
            "no event yet: the page is still served"
        );
        // What `osbd control`'s outbox relay publishes for that transition.
        let envelope = Envelope::new(
            "sandbox.failed",
            json!({ "orgId": gateway.org.to_string(), "sandboxID": row.id.to_string() }),
            None,
        );
        gateway
            .bus
            .publish(
                &format!("osb.sandbox.{}.failed", row.id),
                BusMessage::new(envelope.to_bytes().expect("bytes")),
            )
            .await
            .expect("published");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while status_of(&list(&gateway, "/api/sandboxes").await, row.id) != "failed" {
            assert!(
                std::time::Instant::now() < deadline,
                "the event did not invalidate"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    let (gateway, other_process) = gateway_on(
        TestDatabase::postgres().await.expect("db"),
        Duration::from_millis(300),
    )
    .await;
    let row = failed_elsewhere(&gateway, &other_process, "probe-ttl").await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        status_of(&list(&gateway, "/api/sandboxes").await, row.id),
        "failed"
    );
}

/// Globex asks for exactly what acme asked for (same paths, limits, even acme's cursor) and
/// never gets acme's page.
#[tokio::test]
async fn another_org_never_gets_a_cached_page() {
    let (gateway, _) = gateway_on(TestDatabase::postgres().await.expect("db"), HOUR).await;
    for name in ["a-acme", "b-acme", "c-acme"] {
        let (status, _) = gateway
            .as_acme(
                "POST",
                "/api/projects",
                Some(&format!(r#"{{"name":"{name}"}}"#)),
            )
            .await;
        assert_eq!(status, 201);
    }
    fixtures::running_sandbox(&gateway, gateway.org, None).await;
    let globex = other_org(&gateway).await;
    let theirs = fixtures::running_sandbox(&gateway, globex, None).await;

    let (_, headers, first) = get_as(&gateway, &gateway.key, "/api/projects?limit=1").await;
    let cursor = headers.get("x-next-cursor").expect("more pages").clone();
    let acme_second = format!("/api/projects?limit=1&cursor={cursor}");
    let (status, _, second) = get_as(&gateway, &gateway.key, &acme_second).await;
    assert_eq!(status, 200, "{second}");
    let acme_sandboxes = list(&gateway, "/api/sandboxes").await;

    for path in ["/api/projects", "/api/projects?limit=1", "/api/sandboxes"] {
        let (status, _, body) = get_as(&gateway, &gateway.other_key, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let text = body.to_string();
        assert!(
            !text.contains("-acme"),
            "{path} showed acme's projects: {text}"
        );
        assert!(
            !text.contains(gateway.org.to_string().as_str()),
            "{path} showed acme's org: {text}"
        );
    }
    let (_, _, globex_sandboxes) = get_as(&gateway, &gateway.other_key, "/api/sandboxes").await;
    assert_eq!(
        field(&globex_sandboxes, "sandboxID"),
        [format!("\"{theirs}\"")]
    );
    // Acme's cursor is refused for globex, from the cache or not.
    let (status, _, refused) = get_as(&gateway, &gateway.other_key, &acme_second).await;
    assert_eq!(status, 400, "{refused}");
    // Acme still gets its own pages.
    assert_eq!(list(&gateway, "/api/projects?limit=1").await, first);
    assert_eq!(list(&gateway, &acme_second).await, second);
    assert_eq!(list(&gateway, "/api/sandboxes").await, acme_sandboxes);
}

/// Walking the cursors gives the same pages from the cache as from the store, and a project
/// created between two walks is in the second.
#[tokio::test]
async fn cursors_walk_the_same_pages_through_the_cache() {
    let (gateway, _) = gateway_on(TestDatabase::postgres().await.expect("db"), HOUR).await;
    for name in ["p1", "p2", "p3", "p5", "p6"] {
        let (status, _) = gateway
            .as_acme(
                "POST",
                "/api/projects",
                Some(&format!(r#"{{"name":"{name}"}}"#)),
            )
            .await;
        assert_eq!(status, 201);
    }
    async fn walk(gateway: &Gateway) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut next = Some("/api/projects?limit=2".to_owned());
        while let Some(path) = next.take() {
            let (status, headers, body) = get_as(gateway, &gateway.key, &path).await;
            assert_eq!(status, 200, "{body}");
            pages.push(field(&body, "name"));
            next = headers.get("link").map(|link| {
                link.trim_start_matches('<')
                    .split_once('>')
                    .expect("link")
                    .0
                    .to_owned()
            });
        }
        pages
    }
    let uncached = walk(&gateway).await;
    assert_eq!(uncached.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(walk(&gateway).await, uncached, "the cached walk");
    let (status, _) = gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"p4"}"#))
        .await;
    assert_eq!(status, 201);
    let names: Vec<String> = walk(&gateway).await.concat();
    assert_eq!(
        names,
        ["p1", "p2", "p3", "p4", "p5", "p6"].map(|n| format!("\"{n}\""))
    );
}

/// Many orgs and many pages: the cache never holds more than its bounds.
#[tokio::test]
async fn the_bounds_hold_over_many_orgs_and_pages() {
    let (mut gateway, _) = gateway_on(TestDatabase::sqlite().await.expect("db"), HOUR).await;
    let cache = Arc::new(ListingCache::new(ListingBounds {
        ttl: HOUR,
        entries: 8,
        entries_per_org: 3,
        bytes: 64 * 1024,
    }));
    gateway.state = gateway.state.clone().with_listing_cache(cache.clone());
    let mut keys = vec![gateway.key.clone(), gateway.other_key.clone()];
    for n in 0..4 {
        keys.push(
            super::org_with_key(&gateway.store, &format!("org{n}"))
                .await
                .1,
        );
    }
    for key in &keys {
        for limit in 1..=5 {
            let (status, _, _) =
                get_as(&gateway, key, &format!("/api/projects?limit={limit}")).await;
            assert_eq!(status, 200);
            let (entries, bytes) = cache.size();
            assert!(
                entries <= 8 && bytes <= 64 * 1024,
                "{entries} pages, {bytes} bytes"
            );
        }
    }
    assert!(cache.size().0 > 0, "pages are kept");
}

/// Views carry names, never values: with a secret whose value is a canary, the cached pages of
/// both listings hold the project and the sandbox but no encoding of the value.
#[tokio::test]
async fn a_secret_value_never_reaches_the_cache() {
    let (gateway, _) = gateway_on(TestDatabase::postgres().await.expect("db"), HOUR).await;
    let canary = Canary::new("listing-cache");
    let (status, project) = gateway
        .as_acme("POST", "/api/projects", Some(r#"{"name":"web"}"#))
        .await;
    assert_eq!(status, 201);
    let (status, _) = gateway
        .as_acme(
            "PUT",
            "/api/projects/web/secrets/API_KEY",
            Some(&json!({ "value": canary.value() }).to_string()),
        )
        .await;
    assert_eq!(status, 201, "the secret is created");
    let project_id = project["id"].as_str().expect("id").parse().expect("id");
    fixtures::running_sandbox(&gateway, gateway.org, Some((project_id, "web"))).await;
    list(&gateway, "/api/projects").await;
    list(&gateway, "/api/sandboxes").await;
    let held = gateway.state.listings.held_bytes();
    let text = String::from_utf8_lossy(&held);
    assert!(text.contains("\"web\""), "the pages are cached: {text}");
    assert!(text.contains("sandboxID"), "the pages are cached: {text}");
    assert!(
        canary.found_in_bytes(&held).is_empty(),
        "the canary is in the listing cache"
    );
}
