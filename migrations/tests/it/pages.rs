//! Keyset pages on both engines: walking every page yields each item once, in the listing's
//! order; an item inserted between two pages never repeats one; another org's rows never
//! appear; sandbox metadata round-trips.

use std::collections::BTreeMap;

use osb_proto::{OrgId, SandboxId};
use osb_store::{NewSandbox, NewestFirstKey, Store};
use osb_testkit::TestDatabase;

use crate::{new_project, org};

fn sandbox(org_id: OrgId, label: &str) -> NewSandbox {
    NewSandbox {
        id: SandboxId::new(),
        org_id,
        project_id: None,
        project_name: None,
        template: "host".to_owned(),
        cpu_count: 1,
        memory_mb: 256,
        timeout_sec: 60,
        metadata: BTreeMap::from([("label".to_owned(), label.to_owned())]),
    }
}

async fn all_sandbox_pages(store: &Store, org_id: OrgId, limit: u64) -> Vec<Vec<SandboxId>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .page_sandboxes(org_id, after, limit)
            .await
            .expect("page");
        assert!(page.items.len() as u64 <= limit);
        pages.push(page.items.iter().map(|s| s.id).collect());
        let Some(last) = page.items.last() else { break };
        after = Some(NewestFirstKey {
            created_at: last.created_at,
            id: last.id,
        });
        if !page.has_more {
            break;
        }
    }
    pages
}

#[tokio::test]
async fn pages_cover_every_item_once_in_order_on_both_engines() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let globex = org(&store, "globex").await;
        for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
            store
                .create_project(new_project(acme, name))
                .await
                .expect("project");
        }
        store
            .create_project(new_project(globex, "aaa"))
            .await
            .expect("other org");
        let first = store.page_projects(acme, None, 2).await.expect("page");
        let names: Vec<&str> = first.items.iter().map(|p| p.name.as_str()).collect();
        assert_eq!((names, first.has_more), (vec!["alpha", "bravo"], true));
        let rest = store
            .page_projects(acme, Some("bravo"), 10)
            .await
            .expect("page");
        let names: Vec<&str> = rest.items.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            (names, rest.has_more),
            (vec!["charlie", "delta", "echo"], false)
        );
        let exact = store
            .page_projects(acme, Some("bravo"), 3)
            .await
            .expect("page");
        assert!(!exact.has_more, "a full last page says no more");

        let mut created = Vec::new();
        for index in 0..7 {
            let row = store
                .insert_sandbox(sandbox(acme, &index.to_string()))
                .await
                .expect("row");
            assert_eq!(row.metadata["label"], index.to_string());
            created.push(row.id);
        }
        store
            .insert_sandbox(sandbox(globex, "theirs"))
            .await
            .expect("other org");
        let pages = all_sandbox_pages(&store, acme, 3).await;
        let seen: Vec<SandboxId> = pages.concat();
        let newest_first: Vec<SandboxId> = created.iter().rev().copied().collect();
        assert_eq!(seen, newest_first, "{:?}", store.kind());
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);

        // A sandbox created after the first page was read is newer: it never shows up later.
        let page = store.page_sandboxes(acme, None, 3).await.expect("page");
        let last = page.items.last().expect("item");
        store
            .insert_sandbox(sandbox(acme, "late"))
            .await
            .expect("row");
        let next = store
            .page_sandboxes(
                acme,
                Some(NewestFirstKey {
                    created_at: last.created_at,
                    id: last.id,
                }),
                10,
            )
            .await
            .expect("page");
        let ids: Vec<SandboxId> = next.items.iter().map(|s| s.id).collect();
        assert_eq!(ids, newest_first[3..].to_vec());
    }
}

/// The newest-first pages are index range scans on PostgreSQL: with sequential scans off, the
/// plan of each page query's shape uses the index m0006 made (a missing or wrongly ordered
/// index would show up as a sort over a scan).
#[tokio::test]
async fn newest_first_pages_use_their_indexes_on_postgres() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

    let database = TestDatabase::postgres().await.expect("db");
    database.migrated_store().await.expect("store");
    let db = Database::connect(database.url()).await.expect("connect");
    let org = uuid::Uuid::new_v4().to_string();
    let cases = [
        (
            "ux_projects_org_name",
            format!(
                "SELECT * FROM projects WHERE org_id = '{org}' AND name > 'a' ORDER BY name ASC LIMIT 101"
            ),
        ),
        (
            "ix_sandboxes_org_created_id",
            format!(
                "SELECT * FROM sandboxes WHERE org_id = '{org}' AND (created_at < now() OR (created_at = now() AND id < '{org}')) ORDER BY created_at DESC, id DESC LIMIT 101"
            ),
        ),
        (
            "ix_checkpoints_org_sandbox_created_id",
            format!(
                "SELECT * FROM checkpoints WHERE org_id = '{org}' AND sandbox_id = '{org}' AND (created_at < now() OR (created_at = now() AND id < '{org}')) ORDER BY created_at DESC, id DESC LIMIT 101"
            ),
        ),
    ];
    for (index, query) in cases {
        db.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "SET enable_seqscan = off",
        ))
        .await
        .expect("set");
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("EXPLAIN {query}"),
            ))
            .await
            .expect("explain");
        let plan: Vec<String> = rows
            .iter()
            .map(|row| row.try_get::<String>("", "QUERY PLAN").expect("plan line"))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{index} not used:\n{plan}");
        assert!(!plan.contains("Sort"), "the index gives the order:\n{plan}");
    }
}

/// The same on SQLite (the embedded store): the project and sandbox page queries the listing
/// endpoints run are searches of their indexes, with no temporary B-tree for the order.
#[tokio::test]
async fn listing_pages_use_their_indexes_on_sqlite() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

    let database = TestDatabase::sqlite().await.expect("db");
    database.migrated_store().await.expect("store");
    let db = Database::connect(database.url()).await.expect("connect");
    let org = uuid::Uuid::new_v4();
    let cases = [
        (
            "ux_projects_org_name",
            format!(
                "SELECT * FROM projects WHERE org_id = '{org}' AND name > 'a' ORDER BY name ASC LIMIT 101"
            ),
        ),
        (
            "ix_sandboxes_org_created_id",
            format!(
                "SELECT * FROM sandboxes WHERE org_id = '{org}' AND (created_at < '2026-12-04' OR (created_at = '2026-12-04' AND id < '{org}')) ORDER BY created_at DESC, id DESC LIMIT 101"
            ),
        ),
    ];
    for (index, query) in cases {
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {query}"),
            ))
            .await
            .expect("explain");
        let plan: Vec<String> = rows
            .iter()
            .map(|row| row.try_get::<String>("", "detail").expect("plan line"))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{index} not used:\n{plan}");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "the index gives the order:\n{plan}"
        );
    }
}
