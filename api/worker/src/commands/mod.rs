//! The command runner (ADR 0021): consumes this worker's saga commands from the bus
//! (`osb.cmd.worker.<name>.<verb>`, a durable per-worker consumer), executes each through the
//! worker's own handlers, records the outcome on disk, publishes it on
//! `osb.saga.<saga>.<step>.<completed|failed|undone>` and only then acknowledges the command.
//! A command whose key is recorded is answered from the record and never run again, so a
//! redelivery (a lost outcome, a runner killed before its acknowledgement, a whole worker
//! killed with `kill -9` between executing and publishing, a control plane that re-sent) has no
//! second effect. A record whose sandbox did not survive (the worker restarted and reaped it)
//! answers with a domain failure instead of a `booted` that is no longer true (`replay`).
//! Commands with different keys run concurrently; one key runs once at a time. The crash tests
//! kill the process in the window between record and publish through `AbortAfterRecord`,
//! which only `osbd`'s test build can arm.
//!
//! It must never put a value in an outcome, a record or a log, and never acknowledge a command
//! whose outcome was not published (the redelivery is how a lost publish is repaired).

mod abort_hook;
mod execute;
mod locks;
mod record;
mod replay;

use std::sync::Arc;
use std::time::Duration;

use osb_bus::command::{
    CommandDelivery, StepOutcome, StepResult, WorkerCommand, COMMAND_KIND, OUTCOME_KIND,
};
use osb_bus::{idempotency_key, Bus, BusMessage, Envelope, MSG_ID_HEADER};
use osb_proto::WorkerName;
use tokio::task::JoinHandle;

use crate::service::WorkerService;
pub use abort_hook::AbortAfterRecord;
use locks::KeyLocks;
pub(crate) use record::OutcomeRecords;

/// How often a running command tells the bus it is still being worked on.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Pause before consuming again after the feed broke (NATS restarting, …).
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// What every command task shares.
struct Runner {
    bus: Arc<dyn Bus>,
    worker: WorkerName,
    service: WorkerService,
    records: OutcomeRecords,
    locks: KeyLocks,
    /// The crash tests' hook; `None` outside `osbd`'s test build.
    abort_after: Option<AbortAfterRecord>,
}

/// Starts consuming `worker`'s commands; the task runs until aborted.
pub(crate) fn start(
    bus: Arc<dyn Bus>,
    worker: WorkerName,
    service: WorkerService,
    records: OutcomeRecords,
    abort_after: Option<AbortAfterRecord>,
) -> JoinHandle<()> {
    let runner = Arc::new(Runner {
        bus,
        worker,
        service,
        records,
        locks: KeyLocks::default(),
        abort_after,
    });
    tokio::spawn(async move {
        loop {
            let mut feed = match runner.bus.consume_commands(runner.worker.as_str()).await {
                Ok(feed) => feed,
                Err(error) => {
                    tracing::warn!(worker = %runner.worker, %error, "cannot consume commands; retrying");
                    tokio::time::sleep(RECONNECT_AFTER).await;
                    continue;
                }
            };
            loop {
                match feed.next().await {
                    Some(Ok(delivery)) => {
                        let runner = runner.clone();
                        tokio::spawn(async move { runner.handle(delivery).await });
                    }
                    Some(Err(error)) => {
                        tracing::warn!(worker = %runner.worker, %error, "command feed failed; consuming again");
                        break;
                    }
                    None => break,
                }
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    })
}

impl Runner {
    async fn handle(&self, delivery: CommandDelivery) {
        let command = match Envelope::<WorkerCommand>::from_bytes(&delivery.message.payload) {
            Ok(envelope) if envelope.kind == COMMAND_KIND => envelope.payload,
            Ok(envelope) => {
                tracing::warn!(kind = %envelope.kind, "not a worker command; dropped");
                let _ = delivery.ack().await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, subject = %delivery.message.subject, "malformed command; dropped");
                let _ = delivery.ack().await;
                return;
            }
        };
        // The key is the record's name: it must be the one shape, for this very step.
        if command.key != idempotency_key(command.saga, &command.step, command.action.into()) {
            tracing::warn!(key = %command.key, "command key does not match its saga step; dropped");
            let _ = delivery.ack().await;
            return;
        }
        let _one_at_a_time = self.locks.lock(&command.key).await;
        let outcome = match self.records.get(&command.key) {
            Some(recorded) => {
                let answer = replay::answer(&command.payload, recorded, &self.service.holdings());
                tracing::info!(key = %command.key, verb = command.verb(), done = matches!(answer.result, StepResult::Done { .. }), "command answered from its record, not run again");
                answer
            }
            None => {
                let outcome = self.run(&delivery, &command).await;
                self.abort_if_armed(&command);
                outcome
            }
        };
        if self.publish(&command, &outcome).await {
            if let Err(error) = delivery.ack().await {
                tracing::warn!(key = %command.key, %error, "command not acknowledged; its redelivery is answered from the record");
            }
        }
    }

    /// The crash tests' window: the command's effect ran and its record is readable on disk,
    /// but its outcome is not published and the command not acknowledged. Dies there when armed.
    fn abort_if_armed(&self, command: &WorkerCommand) {
        let Some(hook) = &self.abort_after else {
            return;
        };
        if hook.matches(command) && self.records.get(&command.key).is_some() {
            tracing::error!(key = %command.key, verb = command.verb(), "aborting the worker between recording and publishing (test hook)");
            std::process::abort();
        }
    }

    /// Executes a command not run before and records a final outcome.
    async fn run(&self, delivery: &CommandDelivery, command: &WorkerCommand) -> StepOutcome {
        tracing::info!(key = %command.key, verb = command.verb(), "executing command");
        let execution = execute::execute(&self.service, command);
        tokio::pin!(execution);
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        ticker.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut execution => break result,
                _ = ticker.tick() => {
                    let _ = delivery.in_progress().await;
                }
            }
        };
        let outcome = StepOutcome {
            key: command.key.clone(),
            worker: self.worker.to_string(),
            replayed: false,
            result: match result {
                Ok(output) => StepResult::Done { output },
                Err(error) => StepResult::Failed(error),
            },
        };
        // A fatal failure is not recorded: the worker could not act, so a redelivery may.
        let fatal = matches!(&outcome.result, StepResult::Failed(error) if error.fatal);
        if !fatal {
            // A record lasts as long as the effect it guards (ADR 0034).
            let durability = if replay::lives_with_the_process(&command.payload).is_some() {
                record::Durability::Process
            } else {
                record::Durability::Machine
            };
            if let Err(error) = self.records.put(&outcome, durability) {
                tracing::warn!(key = %command.key, %error, "outcome not recorded; a redelivery would run the command again");
            }
            if let Some(staged_key) = command.payload.staged_key() {
                self.service.staged.forget(staged_key);
            }
        }
        outcome
    }

    /// Publishes an outcome durably; false when the bus refused it.
    async fn publish(&self, command: &WorkerCommand, outcome: &StepOutcome) -> bool {
        let subject = match outcome.subject(command) {
            Ok(subject) => subject,
            Err(error) => {
                tracing::warn!(key = %command.key, %error, "no progress subject for this step");
                return true;
            }
        };
        let bytes = match Envelope::new(OUTCOME_KIND, outcome.clone(), None).to_bytes() {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(key = %command.key, %error, "outcome not encodable");
                return false;
            }
        };
        let message = BusMessage::new(bytes).with_header(MSG_ID_HEADER, outcome.message_id());
        match self.bus.publish_durable(subject.as_str(), message).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(key = %command.key, %error, "outcome not published; the command stays unacknowledged");
                false
            }
        }
    }
}
