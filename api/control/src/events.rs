//! Sandbox events: `osb.sandbox.<id>.<what>` (created, destroyed, failed, checkpointed,
//! restored, snapshotted, expired, worker_lost). They are never published directly: an event is
//! written to the outbox — in the same transaction as the sandbox transition it announces where
//! there is one — and the outbox relay publishes it (`outbox.rs`). Payloads carry the org (so
//! the SSE endpoint can filter per caller), ids, status and worker — never a value, never a
//! token.

use osb_bus::{sandbox_event, Envelope};
use osb_proto::{OrgId, SandboxId, WorkerName};
use osb_store::{OutboxEvent, SandboxStatus, StoreError};
use serde_json::{Map, Value};

use crate::plane::ControlPlane;

/// The event `what` about `sandbox`, with `fields` added to `{orgId, sandboxID}`; `dedupe`
/// makes the message id unique per state change (a replay builds the same id).
pub fn sandbox_event_record(
    org: OrgId,
    sandbox: SandboxId,
    what: &str,
    dedupe: &str,
    fields: Value,
) -> Result<OutboxEvent, String> {
    let subject = sandbox_event(sandbox, what).map_err(|error| error.to_string())?;
    let mut payload = Map::new();
    payload.insert("orgId".into(), Value::String(org.to_string()));
    payload.insert("sandboxID".into(), Value::String(sandbox.to_string()));
    if let Value::Object(extra) = fields {
        payload.extend(extra);
    }
    let payload = Envelope::new(format!("sandbox.{what}"), Value::Object(payload), None)
        .to_bytes()
        .map_err(|error| error.to_string())?;
    Ok(OutboxEvent {
        msg_id: format!("{sandbox}:{what}:{dedupe}"),
        subject: subject.as_str().to_owned(),
        payload,
    })
}

/// Announces `what` about `sandbox` (outbox append, then the relay is woken). For events whose
/// state change is a saga step's own log entry: the step reruns until it is logged, and the
/// append is idempotent under the message id. A failed append is logged.
pub async fn publish_sandbox_event(
    plane: &ControlPlane,
    org: OrgId,
    sandbox: SandboxId,
    what: &str,
    dedupe: &str,
    fields: Value,
) {
    let event = match sandbox_event_record(org, sandbox, what, dedupe, fields) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(%error, "sandbox event not encoded");
            return;
        }
    };
    match plane.store.append_outbox(&event).await {
        Ok(()) => plane.outbox.poke(),
        Err(error) => {
            tracing::warn!(subject = %event.subject, %error, "sandbox event not recorded")
        }
    }
}

/// What a transition announces.
#[derive(Debug)]
pub(crate) struct Announcement<'a> {
    pub org: OrgId,
    pub what: &'a str,
    pub dedupe: &'a str,
    pub fields: Value,
}

/// Moves `sandbox` to `status` and records the event announcing it in one transaction (both or
/// neither), then wakes the relay. `Stale` when the sandbox moved on meanwhile.
pub(crate) async fn transition_announcing(
    plane: &ControlPlane,
    (sandbox, generation): (SandboxId, u64),
    status: SandboxStatus,
    (worker, reason): (Option<&WorkerName>, Option<&str>),
    announcement: Announcement<'_>,
) -> Result<u64, StoreError> {
    let event = sandbox_event_record(
        announcement.org,
        sandbox,
        announcement.what,
        announcement.dedupe,
        announcement.fields,
    )
    .map_err(|reason| StoreError::Corrupt {
        what: "sandbox event".to_owned(),
        reason,
    })?;
    let generation = plane
        .store
        .transition_sandbox_announcing(sandbox, generation, status, (worker, reason), &event)
        .await?;
    plane.outbox.poke();
    Ok(generation)
}
