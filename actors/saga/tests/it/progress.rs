//! Progress reports: every logged step outcome reaches the sink, in order, after it is in the
//! store — completions on the way forward, the failure, then each undo on the way back.

use std::sync::{Arc, Mutex};

use osb_proto::SagaId;
use osb_saga::{ExecutorOptions, ProgressSink, SagaExecutor, SagaOutcome, StepProgress, TestHooks};
use osb_store::{StepAction, StepStatus};
use osb_testkit::TestDatabase;

use crate::toy::{definition, params, World};

/// Records `(step, action, status)` and checks each report is already in the log.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<(String, StepAction, StepStatus, String)>>,
}

impl ProgressSink for Recorder {
    fn step_logged(&self, progress: StepProgress<'_>) {
        self.seen.lock().unwrap().push((
            progress.step.to_owned(),
            progress.action,
            progress.status,
            format!("{}:{}", progress.kind, progress.params["id"]),
        ));
    }
}

fn executor(store: &osb_store::Store, sink: Arc<Recorder>, hooks: TestHooks) -> SagaExecutor {
    SagaExecutor::new(
        store.clone(),
        "cp-1",
        ExecutorOptions {
            hooks,
            progress: Some(sink),
            ..ExecutorOptions::default()
        },
    )
}

#[tokio::test]
async fn every_logged_outcome_is_reported_in_order() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let sink = Arc::new(Recorder::default());
    let outcome = executor(&store, sink.clone(), TestHooks::default())
        .start(&definition(), &World::default(), SagaId::new(), params())
        .await
        .unwrap();
    assert!(matches!(outcome, SagaOutcome::Completed { .. }));
    let seen = std::mem::take(&mut *sink.seen.lock().unwrap());
    let steps: Vec<&str> = seen.iter().map(|(step, ..)| step.as_str()).collect();
    assert_eq!(
        steps,
        ["reserve_slot", "create_volume", "start_vm", "mark_running"]
    );
    assert!(seen
        .iter()
        .all(|(_, action, status, about)| *action == StepAction::Do
            && *status == StepStatus::Completed
            && about == "toy_create:\"sbx1\""));

    let hooks = TestHooks {
        fail_after: Some("start_vm".into()),
        ..TestHooks::default()
    };
    let saga = SagaId::new();
    let outcome = executor(&store, sink.clone(), hooks)
        .start(&definition(), &World::default(), saga, params())
        .await
        .unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Unwound { .. }),
        "{outcome:?}"
    );
    let seen: Vec<(String, StepAction, StepStatus)> = sink
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(step, action, status, _)| (step.clone(), *action, *status))
        .collect();
    let expected = [
        ("reserve_slot", StepAction::Do, StepStatus::Completed),
        ("create_volume", StepAction::Do, StepStatus::Completed),
        ("start_vm", StepAction::Do, StepStatus::Failed),
        ("start_vm", StepAction::Undo, StepStatus::Completed),
        ("create_volume", StepAction::Undo, StepStatus::Completed),
        ("reserve_slot", StepAction::Undo, StepStatus::Completed),
    ]
    .map(|(step, action, status)| (step.to_owned(), action, status));
    assert_eq!(seen, expected);
    // Each reported outcome is already in the log.
    let log = store.saga_log(saga).await.unwrap();
    for (step, action, status) in &seen {
        assert!(
            log.iter()
                .any(|e| &e.step == step && e.action == *action && e.status == *status),
            "{step} {action:?} {status:?} reported before it was logged"
        );
    }
}
