//! The checkpoint-bytes quota (ADR 0032) in the store: sizes are recorded on checkpoint and
//! snapshot rows; the quota check and the row insert are one transaction, so a checkpoint that
//! would pass the quota leaves no row, concurrent inserts never together pass it, deleting a
//! checkpoint frees its bytes, another org's checkpoints never count, and a replayed insert of
//! a recorded checkpoint is not refused for its own bytes.

use osb_proto::{CheckpointId, OrgId, SnapshotId, WorkerName};
use osb_store::{CheckpointRecord, DatabaseKind, OrgQuotas, SnapshotRecord, Store, StoreError};
use osb_testkit::TestDatabase;

use crate::org;

fn checkpoint(org_id: OrgId, size_bytes: Option<u64>) -> CheckpointRecord {
    CheckpointRecord {
        id: CheckpointId::new(),
        org_id,
        sandbox_id: None,
        project_id: None,
        worker: WorkerName::new("wa").expect("worker name"),
        metadata: serde_json::json!({}),
        created_at: chrono::Utc::now(),
        size_bytes,
    }
}

async fn set_quota(store: &Store, org_id: OrgId, bytes: Option<u64>) {
    store
        .set_org_quotas(
            org_id,
            OrgQuotas {
                checkpoint_bytes: bytes,
                ..OrgQuotas::default()
            },
        )
        .await
        .expect("quota");
}

#[tokio::test]
async fn checkpoint_bytes_are_recorded_bounded_and_freed_on_both_engines() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let globex = org(&store, "globex").await;
        set_quota(&store, acme, Some(1000)).await;
        assert_eq!(
            store
                .get_org(acme)
                .await
                .expect("org")
                .quotas
                .checkpoint_bytes,
            Some(1000)
        );
        // Another org's bytes never count against acme's quota.
        store
            .insert_checkpoint(&checkpoint(globex, Some(5000)))
            .await
            .expect("globex has no quota");

        let first = store
            .insert_checkpoint(&checkpoint(acme, Some(600)))
            .await
            .expect("600 of 1000");
        assert_eq!(first.size_bytes, Some(600));
        // A replay of a recorded checkpoint is not refused for its own bytes.
        let replayed = store.insert_checkpoint(&first).await.expect("replay");
        assert_eq!(replayed.id, first.id);

        let over = checkpoint(acme, Some(401));
        let refused = store.insert_checkpoint(&over).await;
        match &refused {
            Err(StoreError::QuotaExceeded(message)) => {
                assert!(
                    message.contains("the org's quota is 1000 bytes"),
                    "{message}"
                );
                assert!(message.contains("hold 600 bytes"), "{message}");
                assert!(
                    message.contains("delete checkpoints or snapshots"),
                    "{message}"
                );
                assert!(message.contains("--max-checkpoint-mb"), "{message}");
            }
            other => panic!("expected a quota refusal, got {other:?}"),
        }
        assert!(
            matches!(
                store.get_checkpoint(acme, over.id).await,
                Err(StoreError::NotFound(_))
            ),
            "a refused checkpoint leaves no row"
        );
        let bytes = store.checkpoint_bytes(acme).await.expect("bytes");
        assert_eq!((bytes.used, bytes.quota), (600, Some(1000)));
        store
            .check_checkpoint_room(acme)
            .await
            .expect("under: room");

        // Exactly at the quota fits; at it, the pre-check refuses before any write.
        let second = store
            .insert_checkpoint(&checkpoint(acme, Some(400)))
            .await
            .expect("exactly the quota");
        let at = store.check_checkpoint_room(acme).await;
        assert!(
            matches!(&at, Err(StoreError::QuotaExceeded(m)) if m.contains("already hold 1000 bytes")),
            "{at:?}"
        );

        // A golden snapshot records its checkpoint's size and is not counted a second time.
        let snapshot = store
            .insert_snapshot(&SnapshotRecord {
                id: SnapshotId::new(),
                org_id: acme,
                name: "base".into(),
                checkpoint_id: Some(second.id),
                metadata: serde_json::json!({}),
                created_at: chrono::Utc::now(),
                size_bytes: Some(400),
            })
            .await
            .expect("snapshot");
        assert_eq!(snapshot.size_bytes, Some(400));
        assert_eq!(
            store.checkpoint_bytes(acme).await.expect("bytes").used,
            1000
        );

        // Deleting a checkpoint frees its bytes.
        store.delete_checkpoint_row(first.id).await.expect("delete");
        assert_eq!(store.checkpoint_bytes(acme).await.expect("bytes").used, 400);
        store
            .insert_checkpoint(&checkpoint(acme, Some(600)))
            .await
            .expect("room again");

        // A checkpoint of unknown size (taken before sizes were recorded) counts as 0.
        let unknown = store
            .insert_checkpoint(&checkpoint(acme, None))
            .await
            .expect("unknown size");
        assert_eq!(unknown.size_bytes, None);

        // Unlimited again.
        set_quota(&store, acme, None).await;
        store
            .insert_checkpoint(&checkpoint(acme, Some(1 << 40)))
            .await
            .expect("no quota");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checkpoints_never_together_pass_the_quota() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        set_quota(&store, acme, Some(1000)).await;
        let mut total_passed = 0;
        for round in 0..3 {
            let attempts: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.insert_checkpoint(&checkpoint(acme, Some(300))).await
                    })
                })
                .collect();
            let mut passed = 0;
            for attempt in attempts {
                match attempt.await.expect("task") {
                    Ok(_) => passed += 1,
                    Err(StoreError::QuotaExceeded(message)) => {
                        assert!(message.contains("quota is 1000 bytes"), "{message}")
                    }
                    // SQLite may refuse a concurrent writer outright: closed, never passed.
                    Err(StoreError::Database(_)) if store.kind() == DatabaseKind::Sqlite => {}
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            let used = store.checkpoint_bytes(acme).await.expect("bytes").used;
            assert!(used <= 1000, "round {round}: {used} bytes recorded");
            total_passed += passed;
            if store.kind() == DatabaseKind::Postgres {
                // Every writer waits for the org row: exactly what fits passes.
                assert_eq!(passed, if round == 0 { 3 } else { 0 }, "round {round}");
            }
        }
        assert!(
            total_passed <= 3,
            "{total_passed} checkpoints of 300 bytes under 1000"
        );
        assert_eq!(
            store.checkpoint_bytes(acme).await.expect("bytes").used,
            300 * total_passed
        );
    }
}
