//! Sandbox events: `osb.sandbox.<id>.<what>` (created, destroyed, failed, checkpointed,
//! restored, snapshotted), published durably after the state change is committed. Payloads
//! carry the org (so the SSE endpoint can filter per caller), ids, status and worker — never a
//! value, never a token. A failed publish is logged: Postgres is the truth, the bus delivers.

use osb_bus::{sandbox_event, Bus, BusMessage, Envelope, MSG_ID_HEADER};
use osb_proto::{OrgId, SandboxId};
use serde_json::{Map, Value};

/// Publishes `what` about `sandbox` with `fields` added to `{orgId, sandboxID}`; `dedupe`
/// makes the message id unique per state change (replays publish the same id).
pub async fn publish_sandbox_event(
    bus: &dyn Bus,
    org: OrgId,
    sandbox: SandboxId,
    what: &str,
    dedupe: &str,
    fields: Value,
) {
    let Ok(subject) = sandbox_event(sandbox, what) else {
        return;
    };
    let mut payload = Map::new();
    payload.insert("orgId".into(), Value::String(org.to_string()));
    payload.insert("sandboxID".into(), Value::String(sandbox.to_string()));
    if let Value::Object(extra) = fields {
        payload.extend(extra);
    }
    let bytes =
        match Envelope::new(format!("sandbox.{what}"), Value::Object(payload), None).to_bytes() {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "sandbox event not encoded");
                return;
            }
        };
    let message =
        BusMessage::new(bytes).with_header(MSG_ID_HEADER, format!("{sandbox}:{what}:{dedupe}"));
    if let Err(error) = bus.publish_durable(subject.as_str(), message).await {
        tracing::warn!(subject = %subject, %error, "sandbox event not published");
    }
}
