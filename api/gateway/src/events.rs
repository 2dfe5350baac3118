//! Change events the gateway publishes after a write commits: `osb.project.<id>.secret_updated`
//! and `.secret_deleted`, carrying the secret's name, version and allowed hosts — never its
//! value. Workers hosting the project's sandboxes react to them (the vault pushes the new value
//! over the mutual-TLS gRPC link, the only path for values). A failed publish is logged, not
//! returned: the write is already committed and the saga log / resync recovers delivery.

use osb_bus::{project_event, BusMessage, Envelope, MSG_ID_HEADER};
use osb_proto::ProjectId;
use serde::{Deserialize, Serialize};

use super::state::AppState;

/// Payload of `secret_updated` / `secret_deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretChanged {
    /// The org owning the project (the SSE endpoint shows an event to this org only).
    pub org_id: osb_proto::OrgId,
    pub name: String,
    pub version: u64,
    pub allowed_hosts: Option<Vec<String>>,
}

/// Publishes a durable project event; `what` is `secret_updated` or `secret_deleted`.
pub async fn publish_secret_change(
    state: &AppState,
    project: ProjectId,
    what: &str,
    change: SecretChanged,
) {
    let Ok(subject) = project_event(project, what) else {
        return;
    };
    let message_id = format!("{project}:{}:{}:{what}", change.name, change.version);
    let kind = format!("project.{what}");
    let bytes = match Envelope::new(kind, change, None).to_bytes() {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "secret change event not encoded");
            return;
        }
    };
    let message = BusMessage::new(bytes).with_header(MSG_ID_HEADER, message_id);
    if let Err(error) = state.bus.publish_durable(subject.as_str(), message).await {
        tracing::warn!(subject = %subject, %error, "secret change event not published");
    }
}
