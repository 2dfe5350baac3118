//! `ProjectActor` against real PostgreSQL with a recording worker: allowlist propagations of
//! one project are delivered one after another, each with the list stored when its turn came;
//! a panic mid-propagation is answered fatal, restarts the actor, and asking again delivers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use osb_project::{
    AllowlistChanged, AllowlistPusher, PanicOnNextPropagation, ProjectActor, ProjectActorError,
};
use osb_proto::{SandboxId, WorkerName};
use osb_store::{NewProject, NewSandbox, ProjectPatch, SandboxStatus};
use osb_testkit::TestDatabase;

#[derive(Default)]
struct RecordingWorker {
    lists: Mutex<Vec<Vec<String>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[async_trait]
impl AllowlistPusher for RecordingWorker {
    async fn push(
        &self,
        _worker: &WorkerName,
        _sandbox: SandboxId,
        allowlist: &[String],
    ) -> Result<bool, String> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.lists
            .lock()
            .expect("test step")
            .push(allowlist.to_vec());
        Ok(true)
    }
}

#[actix::test]
async fn propagations_are_serialised_per_project_and_a_panic_restarts_the_actor() {
    let database = TestDatabase::postgres().await.expect("test step");
    let store = database.migrated_store().await.expect("test step");
    let org = store
        .create_org(&format!("org-{}", uuid::Uuid::new_v4().simple()))
        .await
        .expect("test step");
    let project = store
        .create_project(NewProject {
            org_id: org.id,
            name: "web".into(),
            template: None,
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            egress_allowlist: vec!["a.example.test".into()],
            runtime: None,
        })
        .await
        .expect("test step");
    let sandbox = SandboxId::new();
    store
        .insert_sandbox(NewSandbox {
            id: sandbox,
            org_id: org.id,
            project_id: Some(project.id),
            project_name: Some("web".into()),
            template: "host-system".into(),
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            metadata: Default::default(),
        })
        .await
        .expect("test step");
    let worker_name: WorkerName = "w1".parse().expect("test step");
    store
        .transition_sandbox(sandbox, 0, SandboxStatus::Running, Some(&worker_name), None)
        .await
        .expect("test step");

    let worker = Arc::new(RecordingWorker::default());
    let actor = {
        let (store, worker) = (store.clone(), worker.clone());
        actix::Supervisor::start(move |_| ProjectActor::new(store, worker))
    };
    let changed = || AllowlistChanged {
        org: org.id,
        project: project.id,
    };
    let (first, second) = tokio::join!(actor.send(changed()), actor.send(changed()));
    assert_eq!(first.expect("test step").expect("test step").applied, 1);
    assert_eq!(second.expect("test step").expect("test step").applied, 1);
    assert_eq!(worker.max_in_flight.load(Ordering::SeqCst), 1);

    actor.send(PanicOnNextPropagation).await.expect("test step");
    let crashed = actor.send(changed()).await.expect("test step");
    assert!(
        matches!(crashed, Err(ProjectActorError::Fatal)),
        "{crashed:?}"
    );

    // The restarted actor reads the store again: the newest list is what reaches the worker.
    store
        .update_project(
            org.id,
            project.id,
            ProjectPatch {
                egress_allowlist: Some(vec!["b.example.test".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("test step");
    let report = actor
        .send(changed())
        .await
        .expect("test step")
        .expect("test step");
    assert_eq!(report.applied, 1);
    let lists = worker.lists.lock().expect("test step").clone();
    assert_eq!(
        lists.last().map(Vec::as_slice),
        Some(&["b.example.test".to_owned()][..])
    );
}
