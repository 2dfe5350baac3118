//! The executor: drives a saga forward, logging before and after every action, and unwinds it
//! on failure. Every write happens under the executor's claim on the saga row (owner and
//! generation, checked in the same transaction as the write); the claim is renewed while a step
//! runs and every step is bounded by a deadline (`fence`). A claim lost to another control plane
//! stops this one without touching anything further.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use osb_proto::SagaId;
use osb_store::{SagaClaim, SagaLogEntry, SagaRecord, SagaStatus, StepAction, StepStatus, Store};
use serde_json::json;
use tracing::{info, info_span, warn, Instrument};

use crate::definition::SagaDefinition;
use crate::error::{SagaError, StepError};
use crate::fence::{fenced, run_holding, FenceSettings, Fenced};
use crate::inputs::StepInputs;
use crate::progress::{ProgressSink, StepProgress};

/// How the executor behaves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// How long a claim lasts without renewal before another control plane may take the saga.
    pub lease: chrono::Duration,
    /// Attempts at an undo before the saga is marked stuck.
    pub undo_attempts: u32,
    /// The longest one step action or undo may run; past it the step is abandoned as failed
    /// (a worker that never answers cannot hold a saga forever).
    pub step_deadline: Duration,
    /// Fault injection for the saga test helpers; all off in production.
    pub hooks: TestHooks,
    /// Told of every step outcome once it is logged (saga progress events).
    pub progress: Option<Arc<dyn ProgressSink>>,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            lease: chrono::Duration::seconds(30),
            undo_attempts: 3,
            step_deadline: Duration::from_secs(300),
            hooks: TestHooks::default(),
            progress: None,
        }
    }
}

/// Fault injection used by `testing` (and by crash tests through a failpoint).
#[derive(Debug, Clone, Default)]
pub struct TestHooks {
    /// Run every action twice (the second result is kept).
    pub repeat_actions: bool,
    /// Run every undo twice.
    pub repeat_undos: bool,
    /// Fail this step after its action ran (the worst case: work done, failure reported).
    pub fail_after: Option<String>,
    /// Stop the executor after this step's action ran but before it is logged completed, as a
    /// crash would.
    pub stop_after: Option<String>,
    /// Never renew the claim while a step runs (a paused or partitioned control plane).
    pub no_renewals: bool,
}

/// How a saga ended.
#[derive(Debug, Clone, PartialEq)]
pub enum SagaOutcome {
    /// Every step completed; outputs by step name.
    Completed {
        saga: SagaId,
        outputs: BTreeMap<String, serde_json::Value>,
    },
    /// A step failed and every started step was undone.
    Unwound {
        saga: SagaId,
        failed_step: String,
        error: String,
    },
    /// An undo kept failing: the saga needs attention and is retried on every resume.
    Stuck {
        saga: SagaId,
        step: String,
        error: String,
    },
}

/// Runs sagas on behalf of one owner (a control-plane instance).
#[derive(Debug, Clone)]
pub struct SagaExecutor {
    store: Store,
    owner: String,
    options: ExecutorOptions,
}

impl SagaExecutor {
    /// An executor for `owner` (unique per control-plane process).
    pub fn new(store: Store, owner: impl Into<String>, options: ExecutorOptions) -> Self {
        Self {
            store,
            owner: owner.into(),
            options,
        }
    }

    /// Records a new saga and drives it to its end.
    pub async fn start<C: Send + Sync>(
        &self,
        definition: &SagaDefinition<C>,
        context: &C,
        saga: SagaId,
        params: serde_json::Value,
    ) -> Result<SagaOutcome, SagaError> {
        let record = self
            .store
            .create_saga(saga, definition.kind(), params, &self.owner)
            .instrument(info_span!("saga.insert"))
            .await?;
        let claim = record.claim().ok_or_else(|| SagaError::ClaimLost {
            saga: saga.to_string(),
        })?;
        // A saga this call just inserted has no log yet: nothing to read back.
        self.drive(definition, context, record, &claim, Vec::new())
            .await
    }

    /// Claims an unfinished saga (ours, unowned, or a crashed owner's) and drives it on.
    pub async fn resume<C: Send + Sync>(
        &self,
        definition: &SagaDefinition<C>,
        context: &C,
        saga: SagaId,
    ) -> Result<SagaOutcome, SagaError> {
        let Some(claim) = self
            .store
            .claim_saga(saga, &self.owner, self.options.lease)
            .await?
        else {
            return Err(SagaError::ClaimLost {
                saga: saga.to_string(),
            });
        };
        let record = self.store.get_saga(saga).await?;
        if record.kind != definition.kind() {
            return Err(SagaError::WrongKind {
                saga: saga.to_string(),
                found: record.kind,
                expected: definition.kind().to_owned(),
            });
        }
        let log = self.store.saga_log(saga).await?;
        self.drive(definition, context, record, &claim, log).await
    }

    /// Runs one step action or undo under the fence: the claim renewed while it runs, bounded by
    /// the step deadline (an abandoned step is a failed step).
    async fn bounded<T>(
        &self,
        saga: SagaId,
        claim: &SagaClaim,
        name: &str,
        step: impl Future<Output = Result<T, StepError>>,
    ) -> Result<Result<T, StepError>, SagaError> {
        let settings = FenceSettings {
            lease: self
                .options
                .lease
                .to_std()
                .unwrap_or(Duration::from_secs(30)),
            step_deadline: self.options.step_deadline,
            renewals: !self.options.hooks.no_renewals,
        };
        Ok(
            match run_holding(&self.store, saga, claim, settings, step).await? {
                Fenced::Finished(result) => result,
                Fenced::DeadlineExceeded => Err(StepError::new(format!(
                    "step {name} did not finish within {} s and was abandoned",
                    settings.step_deadline.as_secs()
                ))),
            },
        )
    }

    /// Logs a step action's status under the claim (fenced: `ClaimLost` if it was taken over).
    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        saga: SagaId,
        claim: &SagaClaim,
        seq: u32,
        name: &str,
        action: StepAction,
        status: StepStatus,
        output: Option<serde_json::Value>,
    ) -> Result<(), SagaError> {
        let result = self
            .store
            .record_saga_step(saga, claim, seq, name, action, status, output)
            .instrument(info_span!("saga.log_write", rows = 1))
            .await;
        fenced(saga, result)
    }

    /// Logs several step-log rows, and the saga's status when given, in one fenced write.
    async fn log_all(
        &self,
        saga: SagaId,
        claim: &SagaClaim,
        entries: &[SagaLogEntry],
        status: Option<SagaStatus>,
    ) -> Result<(), SagaError> {
        let result = self
            .store
            .record_saga_steps(saga, claim, entries, status)
            .instrument(info_span!("saga.log_write", rows = entries.len()))
            .await;
        fenced(saga, result)
    }

    /// Sets the saga's status under the claim (fenced).
    async fn set_status(
        &self,
        saga: SagaId,
        claim: &SagaClaim,
        status: SagaStatus,
    ) -> Result<(), SagaError> {
        fenced(saga, self.store.set_saga_status(saga, claim, status).await)
    }

    /// Tells the progress sink about a logged step outcome.
    fn report(
        &self,
        kind: &str,
        saga: SagaId,
        inputs: &StepInputs,
        step: &str,
        (action, status): (StepAction, StepStatus),
    ) {
        if let Some(sink) = &self.options.progress {
            sink.step_logged(StepProgress {
                saga,
                kind,
                params: &inputs.params,
                step,
                action,
                status,
            });
        }
    }

    async fn drive<C: Send + Sync>(
        &self,
        definition: &SagaDefinition<C>,
        context: &C,
        record: SagaRecord,
        claim: &SagaClaim,
        log: Vec<SagaLogEntry>,
    ) -> Result<SagaOutcome, SagaError> {
        let saga = record.id;
        let mut inputs = StepInputs {
            saga,
            params: record.params,
            outputs: BTreeMap::new(),
        };
        for entry in &log {
            if entry.action == StepAction::Do && entry.status == StepStatus::Completed {
                if let Some(output) = &entry.output {
                    inputs.outputs.insert(entry.step.clone(), output.clone());
                }
            }
        }
        let failure = match record.status {
            SagaStatus::Completed => {
                return Ok(SagaOutcome::Completed {
                    saga,
                    outputs: inputs.outputs,
                })
            }
            SagaStatus::Unwound => {
                let (failed_step, error) = failed_entry(&log);
                return Ok(SagaOutcome::Unwound {
                    saga,
                    failed_step,
                    error,
                });
            }
            SagaStatus::Unwinding | SagaStatus::Stuck => failed_entry(&log),
            SagaStatus::Running => match self
                .run_forward(definition, context, saga, claim, &mut inputs)
                .await?
            {
                Forward::Completed(last) => {
                    // The last step's outcome and the saga's completion: one fenced write.
                    let entries: Vec<SagaLogEntry> = last.iter().cloned().collect();
                    self.log_all(saga, claim, &entries, Some(SagaStatus::Completed))
                        .await?;
                    if let Some(last) = &last {
                        self.report(definition.kind(), saga, &inputs, &last.step, DO_COMPLETED);
                    }
                    info!(saga = %saga, kind = definition.kind(), "saga completed");
                    return Ok(SagaOutcome::Completed {
                        saga,
                        outputs: inputs.outputs,
                    });
                }
                Forward::Failed(failure) => failure,
            },
        };
        self.unwind(definition, context, (saga, claim), &inputs, failure)
            .await
    }

    /// Runs the steps that have not completed. A step's `completed` row is written together with
    /// the next step's `started` row (one fenced write, still before the next step acts); the
    /// last one is handed back to be written with the saga's completion (ADR 0034).
    async fn run_forward<C: Send + Sync>(
        &self,
        definition: &SagaDefinition<C>,
        context: &C,
        saga: SagaId,
        claim: &SagaClaim,
        inputs: &mut StepInputs,
    ) -> Result<Forward, SagaError> {
        // The completed row of the step before, not written yet.
        let mut pending: Option<SagaLogEntry> = None;
        for (seq, step) in definition.steps().iter().enumerate() {
            let name = step.name();
            if inputs.outputs.contains_key(name) {
                continue;
            }
            let seq = u32::try_from(seq).unwrap_or(u32::MAX);
            // The fenced write renews the claim too: no separate round trip.
            let started = entry(seq, name, StepAction::Do, StepStatus::Started, None);
            let finished = pending.take();
            let rows: Vec<SagaLogEntry> = finished.iter().cloned().chain([started]).collect();
            self.log_all(saga, claim, &rows, None).await?;
            if let Some(finished) = &finished {
                self.report(
                    definition.kind(),
                    saga,
                    inputs,
                    &finished.step,
                    DO_COMPLETED,
                );
            }
            let inject = self.options.hooks.fail_after.as_deref() == Some(name);
            if inject && step.irreversible() {
                // An irreversible step cannot have run and then failed: inject before it.
                let error = format!("injected failure before irreversible step {name}");
                let failed = self.fail_step(saga, claim, seq, name, error).await?;
                self.report(definition.kind(), saga, inputs, name, DO_FAILED);
                return Ok(Forward::Failed(failed));
            }
            let span = info_span!("saga.step", step = name);
            let mut result = self
                .bounded(saga, claim, name, step.run(context, inputs))
                .instrument(span.clone())
                .await?;
            if self.options.hooks.repeat_actions && result.is_ok() {
                result = self
                    .bounded(saga, claim, name, step.run(context, inputs))
                    .instrument(span)
                    .await?;
            }
            if self.options.hooks.stop_after.as_deref() == Some(name) {
                return Err(SagaError::Stopped {
                    step: name.to_owned(),
                });
            }
            if inject && result.is_ok() {
                result = Err(StepError::new(format!(
                    "injected failure after step {name}"
                )));
            }
            match result {
                Ok(output) => {
                    pending = Some(entry(
                        seq,
                        name,
                        StepAction::Do,
                        StepStatus::Completed,
                        Some(output.clone()),
                    ));
                    inputs.outputs.insert(name.to_owned(), output);
                }
                Err(error) => {
                    let failed = self
                        .fail_step(saga, claim, seq, name, error.message)
                        .await?;
                    self.report(definition.kind(), saga, inputs, name, DO_FAILED);
                    return Ok(Forward::Failed(failed));
                }
            }
        }
        Ok(Forward::Completed(pending))
    }

    /// Logs a step failure and switches the saga to unwinding.
    async fn fail_step(
        &self,
        saga: SagaId,
        claim: &SagaClaim,
        seq: u32,
        name: &str,
        error: String,
    ) -> Result<(String, String), SagaError> {
        warn!(saga = %saga, step = name, error = %error, "saga step failed; unwinding");
        let failed = entry(
            seq,
            name,
            StepAction::Do,
            StepStatus::Failed,
            Some(json!({ "error": error })),
        );
        self.log_all(saga, claim, &[failed], Some(SagaStatus::Unwinding))
            .await?;
        Ok((name.to_owned(), error))
    }

    /// Undoes, in reverse order, every step with an undo whose action started. Steps without
    /// one (nothing to undo, or the irreversible last step) are passed over and not logged.
    async fn unwind<C: Send + Sync>(
        &self,
        definition: &SagaDefinition<C>,
        context: &C,
        (saga, claim): (SagaId, &SagaClaim),
        inputs: &StepInputs,
        (failed_step, error): (String, String),
    ) -> Result<SagaOutcome, SagaError> {
        let log = self.store.saga_log(saga).await?;
        let started = |name: &str| {
            log.iter()
                .any(|entry| entry.step == name && entry.action == StepAction::Do)
        };
        let undone = |name: &str| {
            log.iter().any(|entry| {
                entry.step == name
                    && entry.action == StepAction::Undo
                    && entry.status == StepStatus::Completed
            })
        };
        for (seq, step) in definition.steps().iter().enumerate().rev() {
            let name = step.name();
            let Some(undo) = step.undo() else {
                continue;
            };
            if !started(name) || undone(name) {
                continue;
            }
            // The fenced `started` write renews the claim too: no separate round trip.
            let seq = u32::try_from(seq).unwrap_or(u32::MAX);
            self.log(
                saga,
                claim,
                seq,
                name,
                StepAction::Undo,
                StepStatus::Started,
                None,
            )
            .await?;
            let mut last_error = None;
            for _ in 0..self.options.undo_attempts.max(1) {
                let mut result = self
                    .bounded(saga, claim, name, undo.undo(context, inputs))
                    .await?;
                if self.options.hooks.repeat_undos && result.is_ok() {
                    result = self
                        .bounded(saga, claim, name, undo.undo(context, inputs))
                        .await?;
                }
                match result {
                    Ok(()) => {
                        last_error = None;
                        break;
                    }
                    Err(undo_error) => last_error = Some(undo_error),
                }
            }
            if let Some(undo_error) = last_error {
                warn!(saga = %saga, step = name, error = %undo_error, "undo keeps failing; saga is stuck");
                self.log(
                    saga,
                    claim,
                    seq,
                    name,
                    StepAction::Undo,
                    StepStatus::Failed,
                    Some(json!({ "error": undo_error.message })),
                )
                .await?;
                self.set_status(saga, claim, SagaStatus::Stuck).await?;
                self.report(definition.kind(), saga, inputs, name, UNDO_FAILED);
                return Ok(SagaOutcome::Stuck {
                    saga,
                    step: name.to_owned(),
                    error: undo_error.message,
                });
            }
            self.log(
                saga,
                claim,
                seq,
                name,
                StepAction::Undo,
                StepStatus::Completed,
                None,
            )
            .await?;
            self.report(definition.kind(), saga, inputs, name, UNDO_COMPLETED);
        }
        self.set_status(saga, claim, SagaStatus::Unwound).await?;
        info!(saga = %saga, kind = definition.kind(), failed_step = %failed_step, "saga unwound");
        Ok(SagaOutcome::Unwound {
            saga,
            failed_step,
            error,
        })
    }
}

/// How the forward run ended.
enum Forward {
    /// Every step completed; the last completed row still to be written (none when the saga
    /// was resumed with every step already logged).
    Completed(Option<SagaLogEntry>),
    /// A step failed (logged, the saga unwinding): its name and error.
    Failed((String, String)),
}

/// One step-log row to write.
fn entry(
    seq: u32,
    step: &str,
    action: StepAction,
    status: StepStatus,
    output: Option<serde_json::Value>,
) -> SagaLogEntry {
    SagaLogEntry {
        seq,
        step: step.to_owned(),
        action,
        status,
        output,
    }
}

const DO_COMPLETED: (StepAction, StepStatus) = (StepAction::Do, StepStatus::Completed);
const DO_FAILED: (StepAction, StepStatus) = (StepAction::Do, StepStatus::Failed);
const UNDO_COMPLETED: (StepAction, StepStatus) = (StepAction::Undo, StepStatus::Completed);
const UNDO_FAILED: (StepAction, StepStatus) = (StepAction::Undo, StepStatus::Failed);

/// The step that failed and its error, from the log (for resumed unwinds).
fn failed_entry(log: &[osb_store::SagaLogEntry]) -> (String, String) {
    log.iter()
        .find(|entry| entry.action == StepAction::Do && entry.status == StepStatus::Failed)
        .map(|entry| {
            let error = entry
                .output
                .as_ref()
                .and_then(|output| output.get("error"))
                .and_then(|error| error.as_str())
                .unwrap_or("unknown error")
                .to_owned();
            (entry.step.clone(), error)
        })
        .unwrap_or_else(|| ("unknown".to_owned(), "the saga was interrupted".to_owned()))
}
