//! Fencing (issue 14 item 4): two control planes on one database. A claim is renewed while a
//! slow step runs, so nobody can take the saga over from a live owner; a paused owner whose lease
//! ran out is fenced off (its late writes are refused, it stops) while the new owner finishes;
//! a step past its deadline is abandoned and unwound; a crash at every step is taken over.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use osb_proto::SagaId;
use osb_saga::{ExecutorOptions, SagaError, SagaExecutor, SagaOutcome, TestHooks};
use osb_store::{SagaStatus, StepAction, StepStatus, StoreError};
use osb_testkit::TestDatabase;

use crate::toy::{definition, params, World};

fn executor(
    store: &osb_store::Store,
    owner: &str,
    lease_ms: i64,
    hooks: TestHooks,
) -> SagaExecutor {
    SagaExecutor::new(
        store.clone(),
        owner,
        ExecutorOptions {
            lease: chrono::Duration::milliseconds(lease_ms),
            hooks,
            ..ExecutorOptions::default()
        },
    )
}

#[tokio::test]
async fn a_taken_over_claim_can_write_nothing() {
    for database in TestDatabase::each_kind().await.unwrap() {
        let store = database.migrated_store().await.unwrap();
        let saga = SagaId::new();
        let first = store
            .create_saga(saga, "toy", params(), "cp-a")
            .await
            .unwrap()
            .claim()
            .unwrap();
        // Within the lease, another owner cannot claim.
        let lease = chrono::Duration::seconds(30);
        assert!(store
            .claim_saga(saga, "cp-b", lease)
            .await
            .unwrap()
            .is_none());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = store
            .claim_saga(saga, "cp-b", chrono::Duration::milliseconds(1))
            .await
            .unwrap()
            .expect("the expired claim is taken over");
        assert!(second.generation > first.generation);

        let late = store
            .record_saga_step(
                saga,
                &first,
                0,
                "reserve_slot",
                StepAction::Do,
                StepStatus::Completed,
                None,
            )
            .await;
        assert!(matches!(late, Err(StoreError::Stale(_))), "{late:?}");
        let late = store
            .set_saga_status(saga, &first, SagaStatus::Completed)
            .await;
        assert!(matches!(late, Err(StoreError::Stale(_))), "{late:?}");
        let late = store.renew_saga_claim(saga, &first).await;
        assert!(matches!(late, Err(StoreError::Stale(_))), "{late:?}");
        assert!(
            store.saga_log(saga).await.unwrap().is_empty(),
            "a fenced write landed"
        );
        assert_eq!(
            store.get_saga(saga).await.unwrap().status,
            SagaStatus::Running
        );

        // The same owner claiming again also fences its own older claim.
        let again = store
            .claim_saga(saga, "cp-b", lease)
            .await
            .unwrap()
            .unwrap();
        assert!(again.generation > second.generation);
        assert!(matches!(
            store.renew_saga_claim(saga, &second).await,
            Err(StoreError::Stale(_))
        ));
        store
            .record_saga_step(
                saga,
                &again,
                0,
                "reserve_slot",
                StepAction::Do,
                StepStatus::Started,
                None,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_live_owner_keeps_a_slow_step_and_nobody_else_runs_it() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let world = Arc::new(World::default());
    *world.slow_once.lock().unwrap() = Some(("start_vm", Duration::from_millis(2500)));
    let saga = SagaId::new();
    // A 600 ms lease and a 2.5 s step: only renewals while the step runs keep the claim.
    let owner = executor(&store, "cp-a", 600, TestHooks::default());
    let running = {
        let world = world.clone();
        tokio::spawn(async move { owner.start(&definition(), &*world, saga, params()).await })
    };
    let rival = executor(&store, "cp-b", 600, TestHooks::default());
    let mut attempts = 0;
    while !running.is_finished() {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if running.is_finished() {
            break;
        }
        match rival.resume(&definition(), &*world, saga).await {
            Err(SagaError::ClaimLost { .. }) => attempts += 1,
            other => panic!("the rival took the saga from a live owner: {other:?}"),
        }
    }
    assert!(attempts >= 10, "the rival tried only {attempts} times");
    let outcome = running.await.unwrap().unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(world.runs.load(Ordering::SeqCst), 3, "a step ran twice");
}

#[tokio::test]
async fn a_paused_owner_is_fenced_off_and_the_new_owner_finishes() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let world = Arc::new(World::default());
    *world.slow_once.lock().unwrap() = Some(("start_vm", Duration::from_millis(2500)));
    let saga = SagaId::new();
    // The first owner renews nothing while its step hangs, as a paused process would.
    let paused = executor(
        &store,
        "cp-a",
        500,
        TestHooks {
            no_renewals: true,
            ..TestHooks::default()
        },
    );
    let first = {
        let world = world.clone();
        tokio::spawn(async move { paused.start(&definition(), &*world, saga, params()).await })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let taker = executor(&store, "cp-b", 500, TestHooks::default());
    let outcome = taker.resume(&definition(), &*world, saga).await.unwrap();
    assert!(
        matches!(outcome, SagaOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let log_after_takeover = store.saga_log(saga).await.unwrap();

    // The paused owner wakes up after its step and must stop without writing.
    let late = first.await.unwrap();
    assert!(matches!(late, Err(SagaError::ClaimLost { .. })), "{late:?}");
    assert_eq!(store.saga_log(saga).await.unwrap(), log_after_takeover);
    let record = store.get_saga(saga).await.unwrap();
    assert_eq!(record.status, SagaStatus::Completed);
    assert_eq!(record.owner.as_deref(), Some("cp-b"));
    assert_eq!(world.resources().len(), 3);
}

#[tokio::test]
async fn a_step_past_its_deadline_is_abandoned_and_unwound() {
    for database in TestDatabase::each_kind().await.unwrap() {
        let store = database.migrated_store().await.unwrap();
        let world = World::default();
        *world.slow_once.lock().unwrap() = Some(("start_vm", Duration::from_secs(30)));
        let executor = SagaExecutor::new(
            store.clone(),
            "cp-a",
            ExecutorOptions {
                step_deadline: Duration::from_millis(300),
                ..ExecutorOptions::default()
            },
        );
        let outcome = executor
            .start(&definition(), &world, SagaId::new(), params())
            .await
            .unwrap();
        let SagaOutcome::Unwound {
            failed_step, error, ..
        } = outcome
        else {
            panic!("not unwound: {outcome:?}");
        };
        assert_eq!(failed_step, "start_vm");
        assert!(error.contains("did not finish within"), "{error}");
        world.clean().unwrap();
    }
}

#[tokio::test]
async fn a_crash_at_every_step_is_taken_over_and_completed() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    for step in ["reserve_slot", "create_volume", "start_vm", "mark_running"] {
        let world = World::default();
        let saga = SagaId::new();
        let crashed = executor(
            &store,
            "cp-a",
            200,
            TestHooks {
                stop_after: Some(step.to_owned()),
                ..TestHooks::default()
            },
        )
        .start(&definition(), &world, saga, params())
        .await;
        assert!(
            matches!(crashed, Err(SagaError::Stopped { .. })),
            "{step}: {crashed:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let outcome = executor(&store, "cp-b", 200, TestHooks::default())
            .resume(&definition(), &world, saga)
            .await
            .unwrap();
        assert!(
            matches!(outcome, SagaOutcome::Completed { .. }),
            "{step}: {outcome:?}"
        );
        assert_eq!(
            world.resources().len(),
            3,
            "{step}: {:?}",
            world.resources()
        );
        assert!(*world.running.lock().unwrap(), "{step}");
    }
}

/// The executor writes a step's outcome with the next step's `started` row, and the last
/// outcome with the saga's status, in one fenced write (ADR 0034): all of it lands, or — under
/// a claim that was taken over — none of it.
#[tokio::test]
async fn a_batched_log_write_lands_whole_or_not_at_all() {
    for database in TestDatabase::each_kind().await.unwrap() {
        let store = database.migrated_store().await.unwrap();
        let saga = SagaId::new();
        let first = store
            .create_saga(saga, "toy", params(), "cp-a")
            .await
            .unwrap()
            .claim()
            .unwrap();
        let row = |seq, step: &str, status, output| osb_store::SagaLogEntry {
            seq,
            step: step.to_owned(),
            action: StepAction::Do,
            status,
            output,
        };
        store
            .record_saga_steps(
                saga,
                &first,
                &[row(0, "reserve_slot", StepStatus::Started, None)],
                None,
            )
            .await
            .unwrap();
        // The outcome of step 0 (an upsert of its row) and the start of step 1, together.
        let output = serde_json::json!({ "slot": 7 });
        store
            .record_saga_steps(
                saga,
                &first,
                &[
                    row(
                        0,
                        "reserve_slot",
                        StepStatus::Completed,
                        Some(output.clone()),
                    ),
                    row(1, "create_volume", StepStatus::Started, None),
                ],
                None,
            )
            .await
            .unwrap();
        let log = store.saga_log(saga).await.unwrap();
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(
            (log[0].step.as_str(), log[0].status, log[0].output.clone()),
            ("reserve_slot", StepStatus::Completed, Some(output))
        );
        assert_eq!(
            (log[1].step.as_str(), log[1].status),
            ("create_volume", StepStatus::Started)
        );

        // Taken over: a batch with a status change under the old claim writes nothing at all.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = store
            .claim_saga(saga, "cp-b", chrono::Duration::milliseconds(1))
            .await
            .unwrap()
            .expect("the expired claim is taken over");
        let late = store
            .record_saga_steps(
                saga,
                &first,
                &[
                    row(1, "create_volume", StepStatus::Completed, None),
                    row(2, "start_vm", StepStatus::Started, None),
                ],
                Some(SagaStatus::Completed),
            )
            .await;
        assert!(matches!(late, Err(StoreError::Stale(_))), "{late:?}");
        assert_eq!(
            store.saga_log(saga).await.unwrap(),
            log,
            "a fenced row landed"
        );
        assert_eq!(
            store.get_saga(saga).await.unwrap().status,
            SagaStatus::Running
        );

        // The new owner's last outcome and the completion land together.
        store
            .record_saga_steps(
                saga,
                &second,
                &[row(1, "create_volume", StepStatus::Completed, None)],
                Some(SagaStatus::Completed),
            )
            .await
            .unwrap();
        let log = store.saga_log(saga).await.unwrap();
        assert_eq!(log[1].status, StepStatus::Completed);
        assert_eq!(
            store.get_saga(saga).await.unwrap().status,
            SagaStatus::Completed
        );
    }
}
