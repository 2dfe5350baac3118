//! Per-org quotas (ADR 0027): the check and the reservation are one transaction, so many
//! concurrent creates of one org never take more than its last slot; quotas count only the
//! org's active sandboxes (a destroyed one frees its slot) and never another org's.

use std::collections::BTreeMap;

use osb_proto::{OrgId, SandboxId};
use osb_store::{NewSandbox, OrgQuotas, SandboxStatus, Store, StoreError};
use osb_testkit::TestDatabase;

use crate::org;

fn sandbox(org_id: OrgId, cpu_count: u32) -> NewSandbox {
    NewSandbox {
        id: SandboxId::new(),
        org_id,
        project_id: None,
        project_name: None,
        template: "host".to_owned(),
        cpu_count,
        memory_mb: 256,
        timeout_sec: 60,
        metadata: BTreeMap::new(),
    }
}

async fn concurrent_creates(store: &Store, org_id: OrgId, count: usize) -> (usize, usize) {
    let attempts: Vec<_> = (0..count)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_sandbox(sandbox(org_id, 1)).await })
        })
        .collect();
    let (mut passed, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(_) => passed += 1,
            Err(StoreError::QuotaExceeded(message)) => {
                assert!(message.contains("quota is"), "{message}");
                refused += 1;
            }
            // SQLite may refuse a concurrent writer outright: it fails closed, never passes.
            Err(StoreError::Database(_)) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    (passed, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_both_take_the_last_slot() {
    let database = TestDatabase::postgres().await.expect("db");
    let store = database.migrated_store().await.expect("store");
    let acme = org(&store, "acme").await;
    let other = org(&store, "globex").await;
    let quotas = OrgQuotas {
        sandboxes: Some(3),
        ..OrgQuotas::default()
    };
    store.set_org_quotas(acme, quotas).await.expect("quotas");
    store.set_org_quotas(other, quotas).await.expect("quotas");
    store
        .insert_sandbox(sandbox(other, 1))
        .await
        .expect("another org's sandbox");
    store.insert_sandbox(sandbox(acme, 1)).await.expect("first");
    store
        .insert_sandbox(sandbox(acme, 1))
        .await
        .expect("second");
    for round in 0..3 {
        let (passed, refused) = concurrent_creates(&store, acme, 12).await;
        assert_eq!(
            (passed, refused),
            (usize::from(round == 0), 12 - usize::from(round == 0))
        );
    }
    assert_eq!(
        store.get_org(acme).await.expect("org").quotas.sandboxes,
        Some(3)
    );
}

#[tokio::test]
async fn quotas_count_active_sandboxes_cpus_and_memory_on_both_engines() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        store
            .set_org_quotas(
                acme,
                OrgQuotas {
                    sandboxes: Some(2),
                    cpus: Some(3),
                    ..OrgQuotas::default()
                },
            )
            .await
            .expect("quotas");
        let first = store
            .insert_sandbox(sandbox(acme, 2))
            .await
            .expect("2 CPUs");
        let refused = store.insert_sandbox(sandbox(acme, 2)).await;
        assert!(
            matches!(&refused, Err(StoreError::QuotaExceeded(m)) if m.contains("3 CPUs")),
            "{refused:?}"
        );
        store.insert_sandbox(sandbox(acme, 1)).await.expect("fits");
        let full = store.insert_sandbox(sandbox(acme, 0)).await;
        assert!(
            matches!(&full, Err(StoreError::QuotaExceeded(m)) if m.contains("2 sandboxes")),
            "{full:?}"
        );
        // A destroyed sandbox frees its slot and its CPUs.
        store
            .transition_sandbox(
                first.id,
                first.generation,
                SandboxStatus::Destroyed,
                None,
                None,
            )
            .await
            .expect("destroyed");
        store
            .insert_sandbox(sandbox(acme, 2))
            .await
            .expect("room again");
        // Unlimited again.
        store
            .set_org_quotas(acme, OrgQuotas::default())
            .await
            .expect("cleared");
        store
            .insert_sandbox(sandbox(acme, 8))
            .await
            .expect("no quota");
    }
}
