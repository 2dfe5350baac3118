//! Sandboxes: historic rows never block a project's deletion; generation-checked transitions.

use osb_proto::SandboxId;
use osb_store::{NewSandbox, SandboxStatus, StoreError};
use osb_testkit::TestDatabase;

use crate::{new_project, org};

#[tokio::test]
async fn deleting_a_project_detaches_its_historic_sandboxes() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let project = store
            .create_project(new_project(acme, "web"))
            .await
            .expect("create");
        let sandbox = store
            .insert_sandbox(NewSandbox {
                id: SandboxId::new(),
                org_id: acme,
                project_id: Some(project.id),
                project_name: Some(project.name.clone()),
                template: "host".to_owned(),
                cpu_count: 1,
                memory_mb: 256,
                timeout_sec: 60,
                metadata: Default::default(),
            })
            .await
            .expect("sandbox");

        store
            .delete_project(acme, project.id)
            .await
            .expect("delete is not blocked");
        let after = store
            .get_sandbox(acme, sandbox.id)
            .await
            .expect("sandbox kept");
        assert_eq!(after.project_id, None);
        assert_eq!(
            after.project_name.as_deref(),
            Some("web"),
            "history keeps the name"
        );
    }
}

#[tokio::test]
async fn transitions_check_the_generation() {
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
        assert_eq!(sandbox.status, SandboxStatus::Creating);
        let worker: osb_proto::WorkerName = "wrk-1".parse().expect("worker name");
        let generation = store
            .transition_sandbox(sandbox.id, 0, SandboxStatus::Running, Some(&worker), None)
            .await
            .expect("first transition");
        assert_eq!(generation, 1);
        // A replay at the old generation is refused and leaves the row as it is.
        let replay = store
            .transition_sandbox(sandbox.id, 0, SandboxStatus::Failed, None, Some("late"))
            .await;
        assert!(matches!(replay, Err(StoreError::Stale(_))));
        let row = store.get_sandbox(acme, sandbox.id).await.expect("get");
        assert_eq!(row.status, SandboxStatus::Running);
        assert_eq!(row.worker_id, Some(worker));
        assert_eq!(row.generation, 1);
        // Another org cannot see it.
        let other = org(&store, "other").await;
        assert!(matches!(
            store.get_sandbox(other, sandbox.id).await,
            Err(StoreError::NotFound(_))
        ));
    }
}
