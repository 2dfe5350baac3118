//! Fan-out delivery against real PostgreSQL with scripted workers: a refused first push is
//! retried until acknowledged, a revocation likewise (guaranteed, not best-effort), a worker
//! that never answers is reported after bounded rounds, a sandbox destroyed meanwhile is
//! reported gone; the actor serialises one project's fan-outs and restarts after a panic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use osb_proto::{ProjectId, SandboxId, WorkerName};
use osb_store::{NewSandbox, SandboxStatus, Store};
use osb_testkit::TestDatabase;
use osb_vault::{
    DeliveryPolicy, FanOutSecret, GetVaultState, PanicOnNextFanOut, SecretPush, SecretPusher,
    SecretValue, SecretVaultActor, Vault, VaultActorError,
};

use crate::{hex_key, project, vault, PRIMARY};

fn quick(rounds: u32) -> DeliveryPolicy {
    DeliveryPolicy {
        rounds,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// A worker whose answers are scripted; past the script it acknowledges. Optionally marks the
/// sandbox destroyed in the store at its first refusal (the sandbox ends mid-delivery).
#[derive(Default)]
struct ScriptedWorker {
    answers: Mutex<VecDeque<Result<bool, String>>>,
    attempts: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    pause: Duration,
    destroy_on_refusal: Mutex<Option<(Store, SandboxId)>>,
}

impl ScriptedWorker {
    fn refusing(times: usize) -> Self {
        let answers = (0..times)
            .map(|attempt| Err(format!("worker busy (attempt {attempt})")))
            .collect();
        Self {
            answers: Mutex::new(answers),
            ..Self::default()
        }
    }

    async fn answer(&self) -> Result<bool, String> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.pause).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let answer = self
            .answers
            .lock()
            .expect("test step")
            .pop_front()
            .unwrap_or(Ok(true));
        if answer.is_err() {
            let destroy = self.destroy_on_refusal.lock().expect("test step").take();
            if let Some((store, sandbox)) = destroy {
                store
                    .transition_sandbox(sandbox, 1, SandboxStatus::Destroyed, None, None)
                    .await
                    .expect("test step");
            }
        }
        answer
    }
}

#[async_trait]
impl SecretPusher for ScriptedWorker {
    async fn push(
        &self,
        _worker: &WorkerName,
        _sandbox: SandboxId,
        _secret: &SecretPush<'_>,
    ) -> Result<bool, String> {
        self.answer().await
    }

    async fn remove(
        &self,
        _worker: &WorkerName,
        _sandbox: SandboxId,
        _name: &str,
    ) -> Result<bool, String> {
        self.answer().await
    }
}

/// A project with one secret and one running sandbox on worker `w1`.
async fn setup(store: &Store) -> (Vault, ProjectId, SandboxId) {
    let vault = vault(store, &[(PRIMARY, &hex_key())]).await;
    let (org, project) = project(store).await;
    vault
        .put_secret(
            org,
            project,
            "API_KEY",
            &SecretValue::from("fanout-v1"),
            None,
        )
        .await
        .expect("test step");
    let sandbox = SandboxId::new();
    store
        .insert_sandbox(NewSandbox {
            id: sandbox,
            org_id: org,
            project_id: Some(project),
            project_name: Some("web".into()),
            template: "host-system".into(),
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            metadata: Default::default(),
        })
        .await
        .expect("test step");
    let worker: WorkerName = "w1".parse().expect("test step");
    store
        .transition_sandbox(sandbox, 0, SandboxStatus::Running, Some(&worker), None)
        .await
        .expect("test step");
    (vault, project, sandbox)
}

#[tokio::test]
async fn a_refused_push_and_a_refused_revocation_are_retried_until_acknowledged() {
    let database = TestDatabase::postgres().await.expect("test step");
    let store = database.migrated_store().await.expect("test step");
    let (vault, project, _sandbox) = setup(&store).await;

    let worker = ScriptedWorker::refusing(1);
    let report = vault
        .fan_out_secret(project, "API_KEY", &worker, quick(4))
        .await
        .expect("test step");
    assert_eq!((report.refreshed, report.attempts), (1, 2), "{report:?}");
    assert!(report.failed.is_empty() && report.gone.is_empty());

    let worker = ScriptedWorker::refusing(2);
    let report = vault
        .fan_out_removal(project, "API_KEY", &worker, quick(4))
        .await
        .expect("test step");
    assert_eq!((report.refreshed, report.attempts), (1, 3), "{report:?}");
    assert!(report.failed.is_empty());
}

#[tokio::test]
async fn a_worker_that_never_answers_is_reported_after_bounded_rounds() {
    let database = TestDatabase::postgres().await.expect("test step");
    let store = database.migrated_store().await.expect("test step");
    let (vault, project, sandbox) = setup(&store).await;

    let worker = ScriptedWorker::refusing(1000);
    let report = vault
        .fan_out_removal(project, "API_KEY", &worker, quick(3))
        .await
        .expect("test step");
    assert_eq!(report.attempts, 3);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, sandbox);
    assert!(report.failed[0].1.contains("worker busy"), "{report:?}");
}

#[tokio::test]
async fn a_sandbox_destroyed_while_retried_is_reported_gone_not_failed() {
    let database = TestDatabase::postgres().await.expect("test step");
    let store = database.migrated_store().await.expect("test step");
    let (vault, project, sandbox) = setup(&store).await;

    let worker = ScriptedWorker::refusing(1);
    *worker.destroy_on_refusal.lock().expect("test step") = Some((store.clone(), sandbox));
    let report = vault
        .fan_out_secret(project, "API_KEY", &worker, quick(4))
        .await
        .expect("test step");
    assert_eq!(report.gone, vec![sandbox], "{report:?}");
    assert!(report.failed.is_empty());
    assert_eq!(report.attempts, 1);
}

#[actix::test]
async fn the_actor_serialises_a_project_and_restarts_after_a_panic() {
    let database = TestDatabase::postgres().await.expect("test step");
    let store = database.migrated_store().await.expect("test step");
    let (vault, project, _sandbox) = setup(&store).await;
    let worker = Arc::new(ScriptedWorker {
        pause: Duration::from_millis(30),
        ..ScriptedWorker::default()
    });
    let actor = {
        let (vault, worker) = (Arc::new(vault), worker.clone());
        actix::Supervisor::start(move |_| SecretVaultActor::with_policy(vault, worker, quick(3)))
    };
    let fan_out = || FanOutSecret {
        project,
        name: "API_KEY".into(),
    };

    // Three changes of one project at once: delivered one after another.
    let (a, b, c) = tokio::join!(
        actor.send(fan_out()),
        actor.send(fan_out()),
        actor.send(fan_out())
    );
    for report in [a, b, c] {
        assert_eq!(report.expect("test step").expect("test step").refreshed, 1);
    }
    assert_eq!(worker.max_in_flight.load(Ordering::SeqCst), 1);

    actor.send(PanicOnNextFanOut).await.expect("test step");
    let crashed = actor.send(fan_out()).await.expect("test step");
    assert!(
        matches!(crashed, Err(VaultActorError::Fatal)),
        "{crashed:?}"
    );
    // The restarted actor re-reads the store and delivers the change when asked again.
    let report = actor
        .send(fan_out())
        .await
        .expect("test step")
        .expect("test step");
    assert_eq!(report.refreshed, 1);
    let state = actor.send(GetVaultState).await.expect("test step");
    assert_eq!(state.restarts, 1);
}
