//! An org's footprint per worker counts only its own active sandboxes, on both engines.

use osb_proto::{SandboxId, WorkerName};
use osb_store::{NewSandbox, SandboxStatus};
use osb_testkit::TestDatabase;

use crate::org;

#[tokio::test]
async fn counts_only_the_orgs_active_sandboxes_per_worker() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let globex = org(&store, "globex").await;
        let place = |org, worker: &'static str, status| {
            let store = store.clone();
            async move {
                let id = SandboxId::new();
                let row = store
                    .insert_sandbox(NewSandbox {
                        id,
                        org_id: org,
                        project_id: None,
                        project_name: None,
                        template: "host".to_owned(),
                        cpu_count: 1,
                        memory_mb: 256,
                        timeout_sec: 60,
                        metadata: Default::default(),
                    })
                    .await
                    .expect("insert");
                store
                    .transition_sandbox(
                        id,
                        row.generation,
                        status,
                        Some(&WorkerName::new(worker).expect("name")),
                        None,
                    )
                    .await
                    .expect("transition");
            }
        };
        place(acme, "w1", SandboxStatus::Running).await;
        place(acme, "w1", SandboxStatus::Running).await;
        place(acme, "w2", SandboxStatus::Destroyed).await;
        place(globex, "w1", SandboxStatus::Running).await;
        place(globex, "w2", SandboxStatus::Running).await;
        let mut counts = store
            .count_active_sandboxes_by_worker(acme)
            .await
            .expect("count");
        counts.sort();
        assert_eq!(counts, vec![("w1".to_owned(), 2)]);
    }
}
