//! Saga progress on the bus: the executor's `ProgressSink` for the control plane. Each logged
//! step outcome becomes `osb.saga.<saga_id>.<step>.<completed|failed|undone>` with a payload of
//! ids only — org, sandbox, saga, kind, step, action — so the events endpoint can show an org
//! its own sagas moving. Reports go through a bounded channel to one publishing task (in
//! order, never blocking a saga); when the channel is full a report is dropped: the saga log
//! in the store stays the truth.
//!
//! It must never publish a saga's parameters or step outputs: they hold sealed tokens and user
//! environment values.

use std::sync::Arc;

use osb_bus::{saga_progress, Bus, BusMessage, Envelope, SagaOutcome, MSG_ID_HEADER};
use osb_saga::{ProgressSink, StepProgress};
use osb_store::{StepAction, StepStatus};
use serde_json::json;
use tokio::sync::mpsc;

const QUEUE: usize = 1024;

/// Publishes saga progress events.
#[derive(Debug)]
pub struct BusProgressSink {
    sender: mpsc::Sender<(String, BusMessage)>,
}

impl BusProgressSink {
    /// A sink and its publishing task on the current tokio runtime.
    pub fn start(bus: Arc<dyn Bus>) -> Arc<Self> {
        let (sender, mut receiver) = mpsc::channel::<(String, BusMessage)>(QUEUE);
        tokio::spawn(async move {
            while let Some((subject, message)) = receiver.recv().await {
                if let Err(error) = bus.publish(&subject, message).await {
                    tracing::debug!(%subject, %error, "saga progress not published");
                }
            }
        });
        Arc::new(Self { sender })
    }
}

impl ProgressSink for BusProgressSink {
    fn step_logged(&self, progress: StepProgress<'_>) {
        let Some((subject, message)) = progress_message(&progress) else {
            return;
        };
        if self.sender.try_send((subject, message)).is_err() {
            tracing::debug!(saga = %progress.saga, "saga progress queue full; report dropped");
        }
    }
}

/// The subject and message of one report (`None` for outcomes that are not reported).
fn progress_message(progress: &StepProgress<'_>) -> Option<(String, BusMessage)> {
    let outcome = match (progress.action, progress.status) {
        (_, StepStatus::Started) => return None,
        (StepAction::Do, StepStatus::Completed) => SagaOutcome::Completed,
        (StepAction::Undo, StepStatus::Completed) => SagaOutcome::Undone,
        (_, StepStatus::Failed) => SagaOutcome::Failed,
    };
    let subject = saga_progress(progress.saga, progress.step, outcome).ok()?;
    // Only ids leave: the parameters also hold envs and, in outputs, sealed tokens.
    let id = |field: &str| progress.params[field].as_str().map(str::to_owned);
    let payload = json!({
        "orgId": id("orgId"),
        "sandboxID": id("sandboxId"),
        "sagaID": progress.saga.to_string(),
        "kind": progress.kind,
        "step": progress.step,
        "action": progress.action.as_str(),
        "outcome": subject.as_str().rsplit('.').next(),
    });
    let bytes = Envelope::new("saga.step", payload, None).to_bytes().ok()?;
    let message_id = format!(
        "{}:{}:{}:{}",
        progress.saga,
        progress.step,
        progress.action.as_str(),
        progress.status.as_str()
    );
    Some((
        subject.as_str().to_owned(),
        BusMessage::new(bytes).with_header(MSG_ID_HEADER, message_id),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use osb_proto::SagaId;

    #[test]
    fn reports_carry_ids_only() {
        let saga = SagaId::new();
        let params = json!({
            "orgId": "org_1", "sandboxId": "sbx_1",
            "envs": { "PASSWORD": "user-env-canary" },
        });
        let progress = StepProgress {
            saga,
            kind: "create_sandbox",
            params: &params,
            step: "seal_secrets",
            action: StepAction::Undo,
            status: StepStatus::Completed,
        };
        let (subject, message) = progress_message(&progress).unwrap();
        assert_eq!(subject, format!("osb.saga.{saga}.seal_secrets.undone"));
        let text = String::from_utf8(message.payload.to_vec()).unwrap();
        assert!(!text.contains("user-env-canary"), "{text}");
        let envelope: Envelope<serde_json::Value> = Envelope::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(envelope.payload["orgId"], "org_1");
        assert_eq!(envelope.payload["sandboxID"], "sbx_1");
        assert_eq!(envelope.payload["outcome"], "undone");
        let started = StepProgress {
            status: StepStatus::Started,
            ..progress
        };
        assert!(progress_message(&started).is_none());
    }
}
