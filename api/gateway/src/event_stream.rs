//! `GET /api/events[?subject=PATTERN]`: server-sent events of the caller's org. It subscribes
//! to the bus (sandbox and project events only — never commands, heartbeats or worker events)
//! and forwards each event whose sandbox or project belongs to the caller, as
//! `event: <subject>` / `data: <envelope JSON>`; a `: ping` comment every 15 s keeps proxies
//! from closing the stream. Events carry names, ids, hosts and versions only, never values.
//!
//! It must never forward an event it cannot attribute to the caller's org.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use osb_bus::{
    validate_pattern, Delivered, Subscription, ALL_PROJECT_EVENTS, ALL_SANDBOX_EVENTS,
    PROJECT_EVENTS_PREFIX, SANDBOX_EVENTS_PREFIX,
};
use osb_proto::{ErrorCode, OrgId, SandboxId};
use osb_store::Store;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;

/// Event families a caller may follow.
const ROOTS: [&str; 2] = [SANDBOX_EVENTS_PREFIX, PROJECT_EVENTS_PREFIX];
const PING_EVERY: Duration = Duration::from_secs(15);

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/events", web::get().to(events));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    subject: Option<String>,
}

fn patterns(query: &EventQuery) -> Result<Vec<String>, ApiError> {
    let Some(pattern) = query.subject.as_deref() else {
        return Ok(vec![ALL_SANDBOX_EVENTS.into(), ALL_PROJECT_EVENTS.into()]);
    };
    validate_pattern(pattern)
        .map_err(|error| ApiError::invalid(format!("subject is not a valid pattern: {error}")))?;
    if !ROOTS.iter().any(|root| pattern.starts_with(root)) {
        return Err(ApiError::invalid(
            "subject must start with osb.sandbox. or osb.project. (e.g. osb.sandbox.*.created)",
        ));
    }
    Ok(vec![pattern.to_owned()])
}

async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut subscriptions = Vec::new();
    for pattern in patterns(&query)? {
        subscriptions.push(state.bus.subscribe(&pattern).await.map_err(|error| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!("the event bus is unavailable: {error}"),
            )
        })?);
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<Delivered>(256);
    for mut subscription in subscriptions {
        let sender = sender.clone();
        tokio::spawn(async move { pump(&mut subscription, sender).await });
    }
    let filter = OrgFilter {
        org: caller.org_id,
        store: state.store.clone(),
        sandboxes: HashMap::new(),
    };
    let stream = futures_util::stream::unfold(
        (receiver, filter, tokio::time::interval(PING_EVERY)),
        |(mut receiver, mut filter, mut ping)| async move {
            loop {
                let chunk = tokio::select! {
                    message = receiver.recv() => {
                        let message = message?;
                        if !filter.allows(&message).await {
                            continue;
                        }
                        let data = String::from_utf8_lossy(&message.payload).replace('\n', " ");
                        format!("event: {}\ndata: {data}\n\n", message.subject)
                    }
                    _ = ping.tick() => ": ping\n\n".to_owned(),
                };
                return Some((
                    Ok::<_, actix_web::Error>(Bytes::from(chunk)),
                    (receiver, filter, ping),
                ));
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream))
}

/// Forwards one subscription into the stream's channel; ends (dropping the subscription) as
/// soon as the client goes away, even on a subject where nothing is published.
async fn pump(subscription: &mut Subscription, sender: tokio::sync::mpsc::Sender<Delivered>) {
    loop {
        tokio::select! {
            message = subscription.next() => {
                let Some(message) = message else { return };
                if sender.send(message).await.is_err() {
                    return;
                }
            }
            () = sender.closed() => return,
        }
    }
}

/// Decides whether an event belongs to the caller's org.
struct OrgFilter {
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
            "project" => {
                let payload: serde_json::Value =
                    serde_json::from_slice(&message.payload).unwrap_or_default();
                payload["payload"]["orgId"].as_str() == Some(self.org.to_string().as_str())
            }
            _ => false,
        }
    }
}
