//! The engine's guarantees: completion, the three saga checks, crash resume by another owner,
//! exclusive claims, stuck undos retried on resume, steps without an undo passed over,
//! invalid definitions refused.

use std::sync::atomic::Ordering;

use osb_proto::SagaId;
use osb_saga::testing::{check_each_step_twice, check_failure_at_each_step};
use osb_saga::{ExecutorOptions, SagaDefinition, SagaError, SagaExecutor, SagaOutcome, TestHooks};
use osb_store::{SagaStatus, StepAction, StepStatus};
use osb_testkit::TestDatabase;

use crate::toy::{definition, definition_with_a_check, params, IrreversibleWithUndo, World};

fn executor(store: &osb_store::Store, owner: &str, hooks: TestHooks) -> SagaExecutor {
    SagaExecutor::new(
        store.clone(),
        owner,
        ExecutorOptions {
            hooks,
            ..ExecutorOptions::default()
        },
    )
}

#[tokio::test]
async fn completes_and_logs_every_step_before_and_after() {
    for database in TestDatabase::each_kind().await.unwrap() {
        let store = database.migrated_store().await.unwrap();
        let world = World::default();
        let saga = SagaId::new();
        let outcome = executor(&store, "cp-1", TestHooks::default())
            .start(&definition(), &world, saga, params())
            .await
            .unwrap();
        let SagaOutcome::Completed { outputs, .. } = outcome else {
            panic!("not completed: {outcome:?}");
        };
        assert_eq!(
            outputs["start_vm"]["resource"],
            "start_vm:sbx1<create_volume:sbx1<reserve_slot:sbx1"
        );
        assert_eq!(world.resources().len(), 3);
        assert!(*world.running.lock().unwrap());
        let log = store.saga_log(saga).await.unwrap();
        assert_eq!(log.len(), 4);
        assert!(log
            .iter()
            .all(|e| e.action == StepAction::Do && e.status == StepStatus::Completed));
        assert_eq!(
            store.get_saga(saga).await.unwrap().status,
            SagaStatus::Completed
        );
    }
}

#[tokio::test]
async fn each_step_twice_is_harmless() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let world = World::default();
    check_each_step_twice(
        &store,
        &definition(),
        &world,
        params(),
        async |world: &World| {
            if world.resources().len() == 3 && *world.running.lock().unwrap() {
                Ok(())
            } else {
                Err(format!("unexpected world {:?}", world.resources()))
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(
        world.runs.load(Ordering::SeqCst),
        6,
        "every action really ran twice"
    );
}

#[tokio::test]
async fn failure_at_each_step_unwinds_to_nothing() {
    for database in TestDatabase::each_kind().await.unwrap() {
        let store = database.migrated_store().await.unwrap();
        check_failure_at_each_step(
            &store,
            &definition(),
            World::default,
            params(),
            false,
            async |world: &World| world.clean(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn unwinding_twice_is_harmless() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    check_failure_at_each_step(
        &store,
        &definition(),
        World::default,
        params(),
        true,
        async |world: &World| world.clean(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_crashed_owner_is_taken_over_and_the_saga_completes() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let world = World::default();
    let saga = SagaId::new();
    // cp-1 "crashes" after create_volume's work but before logging it completed.
    let crashed = executor(
        &store,
        "cp-1",
        TestHooks {
            stop_after: Some("create_volume".to_owned()),
            ..TestHooks::default()
        },
    )
    .start(&definition(), &world, saga, params())
    .await;
    assert!(matches!(crashed, Err(SagaError::Stopped { .. })));
    let unfinished = store.list_unfinished_sagas().await.unwrap();
    assert!(unfinished.iter().any(|record| record.id == saga));

    // cp-2 cannot take it while cp-1's lease is fresh…
    let fresh = executor(&store, "cp-2", TestHooks::default())
        .resume(&definition(), &world, saga)
        .await;
    assert!(
        matches!(fresh, Err(SagaError::ClaimLost { .. })),
        "{fresh:?}"
    );

    // …but once the lease has expired it resumes, re-running the interrupted step.
    let taker = SagaExecutor::new(
        store.clone(),
        "cp-2",
        ExecutorOptions {
            lease: chrono::Duration::zero(),
            ..ExecutorOptions::default()
        },
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let outcome = taker.resume(&definition(), &world, saga).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(world.resources().len(), 3, "the re-run step is idempotent");
    let record = store.get_saga(saga).await.unwrap();
    assert_eq!(
        (record.status, record.owner.as_deref()),
        (SagaStatus::Completed, Some("cp-2"))
    );

    // Resuming a finished saga is a no-op that reports the same outcome.
    let again = taker.resume(&definition(), &world, saga).await.unwrap();
    assert!(matches!(again, SagaOutcome::Completed { .. }));
}

#[tokio::test]
async fn a_failing_undo_marks_the_saga_stuck_and_resume_finishes_the_unwind() {
    let database = TestDatabase::sqlite().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let world = World::default();
    // create_volume's undo fails 3 times (all attempts of the first run), then works.
    *world.failing_undo.lock().unwrap() = Some(("create_volume", 3));
    let saga = SagaId::new();
    let outcome = executor(
        &store,
        "cp-1",
        TestHooks {
            fail_after: Some("start_vm".to_owned()),
            ..TestHooks::default()
        },
    )
    .start(&definition(), &world, saga, params())
    .await
    .unwrap();
    assert!(
        matches!(&outcome, SagaOutcome::Stuck { step, .. } if step == "create_volume"),
        "{outcome:?}"
    );
    assert_eq!(
        store.get_saga(saga).await.unwrap().status,
        SagaStatus::Stuck
    );
    assert!(
        world.clean().is_err(),
        "stuck means something is still there"
    );

    let resumed = executor(&store, "cp-1", TestHooks::default())
        .resume(&definition(), &world, saga)
        .await
        .unwrap();
    assert!(
        matches!(&resumed, SagaOutcome::Unwound { failed_step, .. } if failed_step == "start_vm"),
        "{resumed:?}"
    );
    world.clean().unwrap();
}

#[tokio::test]
async fn resume_refuses_a_saga_of_another_kind() {
    let database = TestDatabase::sqlite().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let saga = SagaId::new();
    store
        .create_saga(saga, "other_kind", params(), "cp-1")
        .await
        .unwrap();
    let error = executor(&store, "cp-1", TestHooks::default())
        .resume(&definition(), &World::default(), saga)
        .await
        .unwrap_err();
    assert!(matches!(error, SagaError::WrongKind { .. }), "{error}");
}

#[test]
fn invalid_definitions_are_refused() {
    let empty = SagaDefinition::<World>::new("empty", vec![]).unwrap_err();
    assert!(empty.to_string().contains("at least one step"));
    let undoable_last =
        SagaDefinition::<World>::new("bad", vec![Box::new(IrreversibleWithUndo)]).unwrap_err();
    assert!(
        undoable_last.to_string().contains("cannot have an undo"),
        "{undoable_last}"
    );
}

#[tokio::test]
async fn a_step_without_an_undo_is_passed_over_when_unwinding() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let definition = definition_with_a_check();
    // Every failure point unwinds to nothing, whether or not the step has an undo.
    check_failure_at_each_step(
        &store,
        &definition,
        World::default,
        params(),
        true,
        async |world: &World| world.clean(),
    )
    .await
    .unwrap();
    // Failing after create_volume: the two resources are undone (and logged), the check is not.
    let world = World::default();
    let saga = SagaId::new();
    let hooks = TestHooks {
        fail_after: Some("create_volume".to_owned()),
        ..TestHooks::default()
    };
    let outcome = executor(&store, "cp-1", hooks)
        .start(&definition, &world, saga, params())
        .await
        .unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Unwound { .. }),
        "{outcome:?}"
    );
    world.clean().unwrap();
    let undone: Vec<String> = store
        .saga_log(saga)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == StepAction::Undo)
        .map(|entry| format!("{}:{:?}", entry.step, entry.status))
        .collect();
    assert!(
        undone
            .iter()
            .any(|entry| entry.starts_with("create_volume:"))
            && undone
                .iter()
                .any(|entry| entry.starts_with("reserve_slot:")),
        "{undone:?}"
    );
    assert!(
        !undone.iter().any(|entry| entry.starts_with("check_quota:")),
        "a step without an undo leaves no undo row: {undone:?}"
    );
}
