//! Saga steps as worker commands (ADR 0020): a step that acts on a worker stages the values
//! its command needs over the mutual-TLS link (`StageValues`), publishes the command to the
//! worker's durable queue (`osb.cmd.worker.<worker>.<verb>`, `Nats-Msg-Id` = the step's key
//! `{saga}:{step}:{do|undo}`) and awaits the worker's outcome on
//! `osb.saga.<saga>.<step>.<completed|failed|undone>` — subscribed before publishing, so the
//! answer cannot slip past. The saga executor has logged the step as started before this runs,
//! and logs the outcome before the next step publishes anything.
//!
//! When no outcome arrives in time the command is sent again, a bounded number of times, under
//! the same idempotency key (the worker answers a key it ran from its record), then the step
//! fails and the saga unwinds. Each send has its own message id (`{key}#{run}.{attempt}`):
//! JetStream's duplicate window drops the publish retries of one send, but must not drop a
//! re-send or a step run again by a resumed saga, which exist to recover a lost outcome.
//!
//! It must never put a value on the bus: values go only into the `StageValues` request.

use std::time::{Duration, Instant};

use osb_bus::command::{
    CommandPayload, StepOutcome, StepResult, WorkerCommand, COMMAND_KIND, OUTCOME_KIND,
};
use osb_bus::{saga_step_outcomes, BusMessage, Envelope, SagaAction, SAGA_ID_HEADER};
use osb_grpc::proto as wire;
use osb_proto::{SagaId, SandboxId, WorkerName};
use osb_saga::StepError;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::plane::ControlPlane;

/// How long a step waits for its worker, and how often it re-sends.
#[derive(Debug, Clone, Copy)]
pub struct CommandTimings {
    /// Wait for an outcome after each send.
    pub attempt_wait: Duration,
    /// Sends in all (the first and the re-sends).
    pub attempts: u32,
}

impl Default for CommandTimings {
    fn default() -> Self {
        Self {
            attempt_wait: Duration::from_secs(30),
            attempts: 4,
        }
    }
}

/// Pause between publish attempts while the bus refuses (NATS restarting).
const PUBLISH_RETRY: Duration = Duration::from_millis(250);
/// Publish attempts per send before the send counts as done (its wait then runs out).
const PUBLISH_TRIES: u32 = 40;

/// One step's command to one worker.
#[derive(Debug)]
pub(crate) struct StepCommand<'a> {
    pub worker: &'a WorkerName,
    pub saga: SagaId,
    pub step: &'a str,
    pub action: SagaAction,
    /// What the step does, for error sentences ("boot the sandbox").
    pub what: &'a str,
}

impl StepCommand<'_> {
    /// The idempotency key of this command.
    pub(crate) fn key(&self) -> String {
        osb_bus::idempotency_key(self.saga, self.step, self.action)
    }

    fn not_live(&self) -> StepError {
        StepError::new(format!(
            "worker {} is not live (no recent heartbeat); its sandboxes are unreachable",
            self.worker
        ))
    }
}

/// Hands `worker` the values the command keyed `key` needs, over the mutual-TLS link.
pub(crate) async fn stage_values(
    plane: &ControlPlane,
    step: &StepCommand<'_>,
    sandbox: SandboxId,
    user_envs: std::collections::HashMap<String, String>,
    sealed_envs: Vec<wire::SealedEnv>,
    secrets: Vec<wire::SecretMaterial>,
) -> Result<String, StepError> {
    if !plane.links.is_live(step.worker) {
        return Err(step.not_live());
    }
    let key = step.key();
    let staging = async {
        let mut client = plane.worker(step.worker).await?;
        client
            .stage_values(wire::StageValuesRequest {
                idempotency_key: key.clone(),
                sandbox_id: sandbox.to_string(),
                user_envs,
                sealed_envs,
                secrets,
            })
            .await
            .map_err(|status| plane.rpc_failed(step.worker, "take the command's values", status))
    };
    staging
        .instrument(tracing::info_span!(
            "command.stage_values",
            step = step.step
        ))
        .await?;
    Ok(key)
}

/// Sends the command and returns the step's output as `T`.
pub(crate) async fn send<T: DeserializeOwned>(
    plane: &ControlPlane,
    step: &StepCommand<'_>,
    payload: CommandPayload,
) -> Result<T, StepError> {
    let output = send_value(plane, step, payload)
        .instrument(tracing::info_span!("command.round_trip", step = step.step))
        .await?;
    serde_json::from_value(output).map_err(|error| {
        StepError::new(format!(
            "worker {} answered {} with a malformed output: {error}",
            step.worker, step.step
        ))
    })
}

async fn send_value(
    plane: &ControlPlane,
    step: &StepCommand<'_>,
    payload: CommandPayload,
) -> Result<serde_json::Value, StepError> {
    if !plane.links.is_live(step.worker) {
        return Err(step.not_live());
    }
    let bus_failed = |error: osb_bus::BusError| {
        StepError::new(format!("the bus refused {}'s command: {error}", step.step))
    };
    let command = WorkerCommand::new(step.saga, step.step, step.action, payload);
    let verb = command.verb();
    let bytes = Envelope::new(COMMAND_KIND, command.clone(), None)
        .to_bytes()
        .map_err(|error| StepError::new(error.to_string()))?;
    // Subscribed (and the subscription on the server) before the first publish.
    let pattern = saga_step_outcomes(step.saga, step.step)
        .map_err(|error| StepError::new(error.to_string()))?;
    let mut outcomes = plane.bus.subscribe(&pattern).await.map_err(bus_failed)?;
    plane.bus.flush().await.map_err(bus_failed)?;
    let timings = plane.commands;
    // One id per send: a step run again (a resumed saga, a re-send) must reach the worker even
    // inside the duplicate window, which only guards the publish retries of one send.
    let run: u32 = rand::random();
    for attempt in 0..timings.attempts.max(1) {
        let message_id = format!("{}#{run:08x}.{attempt}", command.key);
        if attempt > 0 {
            tracing::warn!(key = %command.key, attempt, worker = %step.worker, "no outcome in time; sending the command again");
        }
        let message =
            BusMessage::new(bytes.clone()).with_header(SAGA_ID_HEADER, step.saga.to_string());
        let mut tries = 0;
        while let Err(error) = plane
            .bus
            .publish_command(step.worker.as_str(), verb, message.clone(), &message_id)
            .await
        {
            tries += 1;
            if tries >= PUBLISH_TRIES {
                tracing::warn!(key = %command.key, %error, "command not published");
                break;
            }
            tokio::time::sleep(PUBLISH_RETRY).await;
        }
        let deadline = Instant::now() + timings.attempt_wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(delivered) = outcomes.next_within(left).await else {
                break;
            };
            let Ok(envelope) = Envelope::<StepOutcome>::from_bytes(&delivered.payload) else {
                // The control plane's own progress reports share these subjects.
                continue;
            };
            if envelope.kind != OUTCOME_KIND || envelope.payload.key != command.key {
                continue;
            }
            return match envelope.payload.result {
                StepResult::Done { output } => Ok(output),
                StepResult::Failed(error) => Err(StepError::new(format!(
                    "worker {} could not {}: {}",
                    step.worker, step.what, error.message
                ))),
            };
        }
        if !plane.links.is_live(step.worker) {
            return Err(step.not_live());
        }
    }
    Err(StepError::new(format!(
        "worker {} did not answer the {} command after {} sends ({:?} each); it may be overloaded or cut off from the bus",
        step.worker,
        step.step,
        timings.attempts.max(1),
        timings.attempt_wait
    )))
}
