//! The outbox: an event commits with the transition it announces or not at all, the same
//! message id is kept once, waiting events come back oldest first and go once removed.

use osb_proto::SandboxId;
use osb_store::{NewSandbox, OutboxEvent, SandboxStatus, StoreError};
use osb_testkit::TestDatabase;

use crate::org;

fn event(msg_id: &str) -> OutboxEvent {
    OutboxEvent {
        msg_id: msg_id.to_owned(),
        subject: format!("osb.sandbox.x.{msg_id}"),
        payload: format!("{{\"id\":\"{msg_id}\"}}").into_bytes(),
    }
}

#[tokio::test]
async fn an_event_commits_with_its_transition_or_not_at_all() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let sandbox = store
            .insert_sandbox(NewSandbox {
                id: SandboxId::new(),
                org_id: acme,
                project_id: None,
                project_name: None,
                template: "host".to_owned(),
                cpu_count: 1,
                memory_mb: 256,
                timeout_sec: 60,
                metadata: Default::default(),
            })
            .await
            .expect("sandbox");
        let worker: osb_proto::WorkerName = "wrk-1".parse().expect("worker name");

        let generation = store
            .transition_sandbox_announcing(
                sandbox.id,
                0,
                SandboxStatus::Running,
                (Some(&worker), None),
                &event("created"),
            )
            .await
            .expect("transition");
        assert_eq!(generation, 1);
        // A stale transition writes neither the row nor its event.
        let stale = store
            .transition_sandbox_announcing(
                sandbox.id,
                0,
                SandboxStatus::Failed,
                (None, Some("late")),
                &event("failed"),
            )
            .await;
        assert!(matches!(stale, Err(StoreError::Stale(_))), "{stale:?}");
        assert_eq!(
            store.waiting_outbox(10).await.expect("waiting"),
            vec![event("created")]
        );
        let row = store.get_sandbox(acme, sandbox.id).await.expect("row");
        assert_eq!(row.status, SandboxStatus::Running);
    }
}

#[tokio::test]
async fn the_same_message_id_waits_once_and_events_leave_when_removed() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        for id in ["a", "b", "a", "c", "b"] {
            store.append_outbox(&event(id)).await.expect("append");
        }
        let waiting = store.waiting_outbox(10).await.expect("waiting");
        assert_eq!(
            waiting,
            vec![event("a"), event("b"), event("c")],
            "oldest first, once each"
        );
        assert_eq!(store.waiting_outbox(2).await.expect("limit").len(), 2);
        store
            .remove_outbox(&["a".to_owned(), "c".to_owned()])
            .await
            .expect("remove");
        store.remove_outbox(&[]).await.expect("nothing to remove");
        assert_eq!(
            store.waiting_outbox(10).await.expect("waiting"),
            vec![event("b")]
        );
    }
}
