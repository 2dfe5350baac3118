//! `GET /api/events[?subject=PATTERN][&since=ID|TIME]`: server-sent events of the caller's org.
//! It follows the bus's durable event stream (sandbox, project and saga events only — never
//! commands, heartbeats or worker events), from `Last-Event-ID` or `since` when given (replay,
//! then live, without gap or repeat: `event_replay`), and forwards each event whose sandbox,
//! project or saga belongs to the caller, as `id: <sequence>` / `event: <subject>` /
//! `data: <envelope JSON>`; a `: ping` comment every 15 s keeps proxies from closing the
//! stream. Events carry names, ids, hosts and versions only, never values.
//!
//! It must never forward an event it cannot attribute to the caller's org — replayed events
//! are filtered exactly like live ones.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use osb_bus::{
    validate_pattern, Delivered, FeedItem, PROJECT_EVENTS_PREFIX, SAGA_EVENTS_PREFIX,
    SANDBOX_EVENTS_PREFIX,
};
use osb_proto::{ErrorCode, OrgId, SandboxId};
use osb_store::Store;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::event_replay::{event_frame, replay_start, truncated_frame};
use super::sse_slots::SseSlot;
use super::state::AppState;

/// Event families a caller may follow.
const ROOTS: [&str; 3] = [
    SANDBOX_EVENTS_PREFIX,
    PROJECT_EVENTS_PREFIX,
    SAGA_EVENTS_PREFIX,
];
const PING_EVERY: Duration = Duration::from_secs(15);

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/events", web::get().to(events));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    subject: Option<String>,
    since: Option<String>,
}

/// The pattern to follow; `None` is every sandbox, project and saga event.
fn pattern(query: &EventQuery) -> Result<Option<String>, ApiError> {
    let Some(pattern) = query.subject.as_deref() else {
        return Ok(None);
    };
    validate_pattern(pattern)
        .map_err(|error| ApiError::invalid(format!("subject is not a valid pattern: {error}")))?;
    if !ROOTS.iter().any(|root| pattern.starts_with(root)) {
        return Err(ApiError::invalid(
            "subject must start with osb.sandbox., osb.project. or osb.saga. (e.g. osb.sandbox.*.created)",
        ));
    }
    Ok(Some(pattern.to_owned()))
}

async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let pattern = pattern(&query)?;
    let from = replay_start(&request, query.since.as_deref())?;
    let slot = state.sse_slots.acquire(caller.org_id).map_err(|cap| {
        ApiError::rate_limited(
            format!(
                "this org already has {cap} event streams open (the limit); close one and retry"
            ),
            5,
        )
    })?;
    // The feed is set up before the answer starts: nothing published after the head is missed.
    let feed = state
        .bus
        .follow_events(pattern.as_deref(), from)
        .await
        .map_err(|error| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!("the event bus is unavailable: {error}"),
            )
        })?;
    let filter = OrgFilter {
        org: caller.org_id,
        store: state.store.clone(),
        sandboxes: HashMap::new(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(
        (feed, filter, tokio::time::interval(PING_EVERY)),
        |(mut feed, mut filter, mut ping)| async move {
            loop {
                let chunk = tokio::select! {
                    item = feed.next() => match item? {
                        FeedItem::Event(event) => {
                            if !filter.allows(&event.message).await {
                                continue;
                            }
                            event_frame(&event)
                        }
                        FeedItem::Truncated(truncation) => truncated_frame(&truncation),
                    },
                    _ = ping.tick() => ": ping\n\n".to_owned(),
                };
                return Some((
                    Ok::<_, actix_web::Error>(Bytes::from(chunk)),
                    (feed, filter, ping),
                ));
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream))
}

/// Decides whether an event belongs to the caller's org.
struct OrgFilter {
    /// Held for as long as the stream lives (ADR 0027).
    _slot: SseSlot,
    org: OrgId,
    store: Store,
    sandboxes: HashMap<SandboxId, bool>,
}

impl OrgFilter {
    async fn allows(&mut self, message: &Delivered) -> bool {
        let mut tokens = message.subject.split('.');
        let (Some("osb"), Some(family), Some(id)) = (tokens.next(), tokens.next(), tokens.next())
        else {
            return false;
        };
        match family {
            "sandbox" => {
                let Ok(sandbox) = id.parse::<SandboxId>() else {
                    return false;
                };
                if let Some(known) = self.sandboxes.get(&sandbox) {
                    return *known;
                }
                let ours = self.store.get_sandbox(self.org, sandbox).await.is_ok();
                if self.sandboxes.len() > 10_000 {
                    self.sandboxes.clear();
                }
                self.sandboxes.insert(sandbox, ours);
                ours
            }
            // Project events come from the gateway, saga progress from the control plane; both
            // name their org in the payload.
            "project" | "saga" => {
                let payload: serde_json::Value =
                    serde_json::from_slice(&message.payload).unwrap_or_default();
                payload["payload"]["orgId"].as_str() == Some(self.org.to_string().as_str())
            }
            _ => false,
        }
    }
}
