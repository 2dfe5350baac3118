//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the gateway, built by hand with
//! `serde_json` from one table of operations (`paths`) and the schemas of every body and view
//! (`schemas`) — see ADR 0013 for why not `utoipa`. It needs no API key: it describes the API,
//! never an org's objects.
//!
//! It must never drift from the handlers: the `openapi` gateway test checks that every route is
//! documented, every documented route is served, and real answers use only documented fields.

mod field_schemas;
mod key_paths;
mod ops_paths;
mod ops_schemas;
mod pages;
mod paths;
mod schemas;

use std::sync::OnceLock;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/openapi.json", web::get().to(openapi_json));
}

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OpenSandbox REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sandboxes that use API keys without seeing them. Every error is {\"error\": \"<sentence>\", \"code\": \"<snake_case>\"}. User guide: docs/api.md.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "servers": [{ "url": "/", "description": "this gateway" }],
        "security": [{ "apiKey": [] }, { "bearer": [] }],
        "tags": [
            { "name": "projects", "description": "secrets, allowlist and sandbox defaults" },
            { "name": "secrets", "description": "write-only values sealed into sandboxes" },
            { "name": "sandboxes", "description": "create, fork, exec, destroy" },
            { "name": "checkpoints", "description": "checkpoint and restore in place" },
            { "name": "snapshots", "description": "golden snapshots new sandboxes boot from" },
            { "name": "events", "description": "server-sent events of the caller's org" },
            { "name": "ops", "description": "sagas in flight and the workers, for operators" },
            { "name": "keys", "description": "the org's API keys: list, create, revoke, rotate (admin scope)" },
            { "name": "dashboard", "description": "the ops dashboard page (no key: it asks for one)" },
            { "name": "meta", "description": "health, readiness, metrics, this document" },
        ],
        "paths": paths::paths(),
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key",
                            "description": "an org's API key (`osk_…`)" },
                "bearer": { "type": "http", "scheme": "bearer",
                            "description": "the same key as `Authorization: Bearer osk_…`" },
            },
            "schemas": schemas::schemas(),
            "responses": paths::error_responses(),
        },
    })
}

async fn openapi_json() -> HttpResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let text = DOCUMENT.get_or_init(|| document().to_string());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(text.as_str())
}
