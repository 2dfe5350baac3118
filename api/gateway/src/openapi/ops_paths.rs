//! The operations of the ops dashboard's surface, in the same table shape as `paths`: the read
//! views it needs (`/api/sagas`, `/api/workers`) and the page itself (`/dashboard`, its
//! assets). Kept apart from `paths` so the REST resources' table stays one concern.
//!
//! It must never list a route the gateway does not serve: the `openapi` gateway test compares
//! both tables with the registered routes.

use super::paths::{Access, Body, Operation};

/// The ops routes.
pub const OPS_OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/sagas",
        id: "listSagas",
        tag: "ops",
        summary: "The org's sagas not yet over (running, unwinding, stuck), oldest first, with their logged steps",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the sagas ([] when none)", Body::List("Saga"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/api/workers",
        id: "listWorkers",
        tag: "ops",
        summary: "The workers, as an org may see them: liveness, isolation, capacity and the org's own sandboxes there (ADR 0017)",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the workers by name ([] when none)", Body::List("Worker"))],
        errors: &[503],
    },
    Operation {
        method: "get",
        path: "/dashboard",
        id: "dashboardPage",
        tag: "dashboard",
        summary: "The ops dashboard (HTML; signs in with an API key kept in the tab's session storage)",
        access: Access::Public,
        request: None,
        success: &[(200, "the page", Body::Text("text/html", "HTML page"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/dashboard/{asset}",
        id: "dashboardAsset",
        tag: "dashboard",
        summary: "A script, style sheet or image of the dashboard (embedded in the binary)",
        access: Access::Public,
        request: None,
        success: &[(
            200,
            "the file (`text/javascript`, `text/css` or `image/svg+xml`)",
            Body::Text("text/javascript", "ES module, style sheet or icon"),
        )],
        errors: &[404],
    },
];

/// The replay parameters of `GET /api/events` (`event_replay`).
pub fn replay_parameters() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({
            "name": "since", "in": "query", "required": false,
            "description": "replay from here, then follow live: an event id (the `id:` of a frame; events after it) or an RFC 3339 time (events stored at or after it); anything else is 400",
            "schema": { "type": "string" },
        }),
        serde_json::json!({
            "name": "Last-Event-ID", "in": "header", "required": false,
            "description": "resume after this event id (what EventSource sends on reconnect); wins over `since`; a non-number is 400",
            "schema": { "type": "string" },
        }),
    ]
}
