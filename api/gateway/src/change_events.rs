//! Listing invalidation from other processes (ADR 0035): follows the sandbox, saga and project
//! events on the bus (published by `osbd control` through the outbox, ADR 0031, by saga
//! progress and by gateways) and marks the org each names as changed, so a listing cached here
//! stops being served as soon as another process's write is announced. A message whose org
//! cannot be read marks every org changed (over-invalidation is safe, the opposite is not).
//!
//! It must never forward, store or log an event's payload; it only bumps counters. When the bus
//! refuses the subscription, the cache's ttl (1 s) remains the only bound, and a warning says so.

use std::sync::Arc;

use osb_bus::{Bus, PROJECT_EVENTS_PREFIX, SAGA_EVENTS_PREFIX, SANDBOX_EVENTS_PREFIX};
use osb_proto::OrgId;

/// Event families whose payload names an org whose listings may have changed.
const FAMILIES: [&str; 3] = [
    SANDBOX_EVENTS_PREFIX,
    SAGA_EVENTS_PREFIX,
    PROJECT_EVENTS_PREFIX,
];

/// The org an event envelope names (`payload.orgId`), if it names one this build can read.
pub(crate) fn org_of(envelope: &[u8]) -> Option<OrgId> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        payload: Payload,
    }
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(rename = "orgId")]
        org_id: Option<String>,
    }
    let envelope: Envelope = serde_json::from_slice(envelope).ok()?;
    envelope.payload.org_id?.parse().ok()
}

/// Starts one task per event family on the current tokio runtime (none outside one: then only
/// the ttl bounds what other processes' writes leave stale, and a warning says so).
pub(crate) fn follow(bus: Arc<dyn Bus>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            "no async runtime: listings cached by this gateway see other processes' writes only after the cache ttl"
        );
        return;
    };
    for family in FAMILIES {
        let bus = bus.clone();
        runtime.spawn(async move {
            let pattern = format!("{family}>");
            let mut events = match bus.subscribe(&pattern).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%pattern, %error, "listing cache cannot follow events; other processes' writes show after the cache ttl");
                    return;
                }
            };
            while let Some(event) = events.next().await {
                match org_of(&event.payload) {
                    Some(org) => osb_store::note_listing_change(org),
                    None => osb_store::note_listing_change_everywhere(),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_is_read_from_the_envelope_payload() {
        let org = OrgId::new();
        let envelope = serde_json::json!({
            "version": 1, "kind": "sandbox.created", "payload": { "orgId": org.to_string(), "sandboxID": "sbx_x" }
        });
        assert_eq!(org_of(envelope.to_string().as_bytes()), Some(org));
        for unreadable in [
            serde_json::json!({ "payload": { "orgId": "nope" } }).to_string(),
            serde_json::json!({ "payload": {} }).to_string(),
            "not json".to_owned(),
        ] {
            assert_eq!(org_of(unreadable.as_bytes()), None, "{unreadable}");
        }
    }
}
