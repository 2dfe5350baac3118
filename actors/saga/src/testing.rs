//! The three checks every saga must pass (omicron/steno style), usable from any saga's tests:
//! * [`check_each_step_twice`]: every action runs twice; the saga still completes and the world
//!   looks exactly as after one run (the caller's `check_done` decides);
//! * [`check_failure_at_each_step`]: a failure injected after each step's action (before the
//!   irreversible one) unwinds to nothing left behind (`check_clean`) with the saga row unwound;
//! * the same with every undo run twice, so unwinding twice is harmless.
//!
//! Each case gets a fresh context from `make_context` so cases cannot hide each other's leaks.

use osb_proto::SagaId;
use osb_store::{SagaStatus, Store};

use crate::definition::SagaDefinition;
use crate::executor::{ExecutorOptions, SagaExecutor, SagaOutcome, TestHooks};

fn executor(store: &Store, hooks: TestHooks) -> SagaExecutor {
    SagaExecutor::new(
        store.clone(),
        format!("test-{}", SagaId::new()),
        ExecutorOptions {
            hooks,
            ..ExecutorOptions::default()
        },
    )
}

/// Runs the saga with every action repeated; it must complete and pass `check_done`.
pub async fn check_each_step_twice<C: Send + Sync>(
    store: &Store,
    definition: &SagaDefinition<C>,
    context: &C,
    params: serde_json::Value,
    check_done: impl AsyncFn(&C) -> Result<(), String>,
) -> Result<(), String> {
    let hooks = TestHooks {
        repeat_actions: true,
        ..TestHooks::default()
    };
    let outcome = executor(store, hooks)
        .start(definition, context, SagaId::new(), params)
        .await
        .map_err(|error| error.to_string())?;
    if !matches!(outcome, SagaOutcome::Completed { .. }) {
        return Err(format!(
            "with every step run twice the saga did not complete: {outcome:?}"
        ));
    }
    check_done(context).await
}

/// Injects a failure at each step in turn (and, with `repeat_undos`, runs every undo twice);
/// each run must unwind at that step and leave nothing behind.
pub async fn check_failure_at_each_step<C: Send + Sync>(
    store: &Store,
    definition: &SagaDefinition<C>,
    make_context: impl Fn() -> C,
    params: serde_json::Value,
    repeat_undos: bool,
    check_clean: impl AsyncFn(&C) -> Result<(), String>,
) -> Result<(), String> {
    for step in definition.step_names() {
        let context = make_context();
        let hooks = TestHooks {
            fail_after: Some(step.to_owned()),
            repeat_undos,
            ..TestHooks::default()
        };
        let saga = SagaId::new();
        let outcome = executor(store, hooks)
            .start(definition, &context, saga, params.clone())
            .await
            .map_err(|error| format!("failure at {step}: {error}"))?;
        match &outcome {
            SagaOutcome::Unwound { failed_step, .. } if failed_step == step => {}
            other => return Err(format!("failure at {step} did not unwind there: {other:?}")),
        }
        let record = store
            .get_saga(saga)
            .await
            .map_err(|error| error.to_string())?;
        if record.status != SagaStatus::Unwound {
            return Err(format!(
                "failure at {step}: saga row is {:?}",
                record.status
            ));
        }
        check_clean(&context)
            .await
            .map_err(|left| format!("failure at {step} left something behind: {left}"))?;
    }
    Ok(())
}
