//! The operations of the OpenAPI document, one row per registered route, in a single table.
//! A row says what the handler accepts (path parameters, body, `Idempotency-Key`), what it
//! answers on success, and which refusals it can give; the `{"error","code"}` shape is shared.
//!
//! It must never list a route the gateway does not serve, nor leave one out: the `openapi`
//! gateway test compares this table with the registered routes in both directions.

use serde_json::{json, Map, Value};

use super::pages::{lists, page_headers, page_parameters};
use super::schemas::schema_ref;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No API key (health, metrics, this document).
    Public,
    /// `X-API-Key` or `Authorization: Bearer`.
    ApiKey,
}

/// What a successful answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A JSON object of a named schema.
    Json(&'static str),
    /// A JSON array of a named schema.
    List(&'static str),
    /// No body (204).
    Empty,
    /// Free-form text of a media type (`text/plain`, `text/event-stream`, `application/json`).
    Text(&'static str, &'static str),
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    /// The full path, with `{param}` segments as in the route table.
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// The request body's schema, and whether it is required.
    pub request: Option<(&'static str, bool)>,
    /// Success statuses with their descriptions and bodies.
    pub success: &'static [(u16, &'static str, Body)],
    /// Refusal statuses beyond 401/403 (added for `ApiKey` operations).
    pub errors: &'static [u16],
}

const SANDBOX_ERRORS: &[u16] = &[400, 404, 409, 413, 422, 503];

/// Every route the gateway serves.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: "/api/projects",
        id: "createProject",
        tag: "projects",
        summary: "Create a project",
        access: Access::ApiKey,
        request: Some(("CreateProject", true)),
        success: &[(201, "the project", Body::Json("Project"))],
        errors: &[400, 409, 413, 422],
    },
    Operation {
        method: "get",
        path: "/api/projects",
        id: "listProjects",
        tag: "projects",
        summary: "List the org's projects, sorted by name",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the projects ([] when none)", Body::List("Project"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/api/projects/{project}",
        id: "getProject",
        tag: "projects",
        summary: "Get a project by id or name",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the project", Body::Json("Project"))],
        errors: &[404],
    },
    Operation {
        method: "patch",
        path: "/api/projects/{project}",
        id: "updateProject",
        tag: "projects",
        summary: "Update a project (absent or null keeps; [] clears the allowlist)",
        access: Access::ApiKey,
        request: Some(("UpdateProject", true)),
        success: &[(200, "the updated project", Body::Json("Project"))],
        errors: &[400, 404, 409, 413, 422],
    },
    Operation {
        method: "put",
        path: "/api/projects/{project}",
        id: "replaceProject",
        tag: "projects",
        summary: "Replace a project's whole mutable record (absent or null fields take their defaults; an absent name keeps the current one)",
        access: Access::ApiKey,
        request: Some(("ReplaceProject", true)),
        success: &[(200, "the replaced project", Body::Json("Project"))],
        errors: &[400, 404, 409, 413, 422],
    },
    Operation {
        method: "delete",
        path: "/api/projects/{project}",
        id: "deleteProject",
        tag: "projects",
        summary: "Delete a project and its secrets",
        access: Access::ApiKey,
        request: None,
        success: &[(204, "deleted", Body::Empty)],
        errors: &[404, 409],
    },
    Operation {
        method: "get",
        path: "/api/projects/{project}/secrets",
        id: "listSecrets",
        tag: "secrets",
        summary: "List a project's secrets (names and hosts, never values)",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the secrets ([] when none)", Body::List("Secret"))],
        errors: &[404],
    },
    Operation {
        method: "put",
        path: "/api/projects/{project}/secrets/{name}",
        id: "setSecret",
        tag: "secrets",
        summary: "Set (create or replace) a secret; running sandboxes get the new value",
        access: Access::ApiKey,
        request: Some(("PutSecret", true)),
        success: &[
            (200, "replaced", Body::Json("SecretSet")),
            (201, "created", Body::Json("SecretSet")),
        ],
        errors: &[400, 404, 409, 413, 422],
    },
    Operation {
        method: "delete",
        path: "/api/projects/{project}/secrets/{name}",
        id: "deleteSecret",
        tag: "secrets",
        summary: "Delete a secret",
        access: Access::ApiKey,
        request: None,
        success: &[(204, "deleted", Body::Empty)],
        errors: &[400, 404, 422],
    },
    Operation {
        method: "post",
        path: "/api/sandboxes",
        id: "createSandbox",
        tag: "sandboxes",
        summary: "Create a sandbox (fresh or from a golden snapshot); honours Idempotency-Key",
        access: Access::ApiKey,
        request: Some(("CreateSandbox", true)),
        success: &[
            (
                200,
                "an Idempotency-Key replay: the sandbox it created",
                Body::Json("Sandbox"),
            ),
            (201, "the running sandbox", Body::Json("Sandbox")),
        ],
        errors: SANDBOX_ERRORS,
    },
    Operation {
        method: "get",
        path: "/api/sandboxes",
        id: "listSandboxes",
        tag: "sandboxes",
        summary: "List the org's sandboxes",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the sandboxes ([] when none)", Body::List("Sandbox"))],
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/api/sandboxes/from-checkpoint/{checkpoint}",
        id: "forkSandbox",
        tag: "sandboxes",
        summary:
            "Fork a checkpoint into a new sandbox with fresh sealed tokens; honours Idempotency-Key",
        access: Access::ApiKey,
        request: Some(("ForkSandbox", false)),
        success: &[
            (200, "an Idempotency-Key replay", Body::Json("Sandbox")),
            (201, "the fork", Body::Json("Sandbox")),
        ],
        errors: SANDBOX_ERRORS,
    },
    Operation {
        method: "get",
        path: "/api/sandboxes/{id}",
        id: "getSandbox",
        tag: "sandboxes",
        summary: "Get a sandbox",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the sandbox", Body::Json("Sandbox"))],
        errors: &[400, 404],
    },
    Operation {
        method: "delete",
        path: "/api/sandboxes/{id}",
        id: "deleteSandbox",
        tag: "sandboxes",
        summary: "Destroy a sandbox (idempotent)",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the destroyed sandbox", Body::Json("Sandbox"))],
        errors: &[400, 404, 409, 500, 503],
    },
    Operation {
        method: "get",
        path: "/api/sandboxes/{id}/allowed-hosts",
        id: "getAllowedHosts",
        tag: "sandboxes",
        summary: "Where the sandbox may connect and where each secret may be sent",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the hosts", Body::Json("AllowedHosts"))],
        errors: &[400, 404],
    },
    Operation {
        method: "post",
        path: "/api/sandboxes/{id}/exec",
        id: "execInSandbox",
        tag: "sandboxes",
        summary: "Run a command in a running sandbox",
        access: Access::ApiKey,
        request: Some(("ExecRequest", true)),
        success: &[(200, "what the command did", Body::Json("ExecResult"))],
        errors: &[400, 404, 409, 413, 422, 500, 503],
    },
    Operation {
        method: "post",
        path: "/api/sandboxes/{id}/exec/stream",
        id: "execInSandboxStreaming",
        tag: "sandboxes",
        summary: "Run a command and stream its output as it happens: one JSON object per line, {\"stdout\": base64} / {\"stderr\": base64}, then {\"exitCode\", \"timedOut\"} (or {\"error\", \"code\"} if the worker went away)",
        access: Access::ApiKey,
        request: Some(("ExecRequest", true)),
        success: &[(
            200,
            "newline-delimited JSON chunks",
            Body::Text("application/x-ndjson", "exec chunks"),
        )],
        errors: &[400, 404, 409, 413, 422, 500, 503],
    },
    Operation {
        method: "post",
        path: "/api/sandboxes/{id}/checkpoints",
        id: "createCheckpoint",
        tag: "checkpoints",
        summary: "Checkpoint a running sandbox (409 when it would take the org past its checkpoint-bytes quota)",
        access: Access::ApiKey,
        request: None,
        success: &[(201, "the checkpoint", Body::Json("Checkpoint"))],
        errors: &[400, 404, 409, 500, 503],
    },
    Operation {
        method: "get",
        path: "/api/sandboxes/{id}/checkpoints",
        id: "listCheckpoints",
        tag: "checkpoints",
        summary: "List a sandbox's checkpoints, newest first",
        access: Access::ApiKey,
        request: None,
        success: &[(
            200,
            "the checkpoints ([] when none)",
            Body::List("Checkpoint"),
        )],
        errors: &[400, 404],
    },
    Operation {
        method: "delete",
        path: "/api/sandboxes/{id}/checkpoints/{checkpoint}",
        id: "deleteCheckpoint",
        tag: "checkpoints",
        summary: "Delete a checkpoint and its files on the worker (409 while a golden snapshot or a running restore/fork uses it)",
        access: Access::ApiKey,
        request: None,
        success: &[(204, "deleted", Body::Empty)],
        errors: &[400, 404, 409, 503],
    },
    Operation {
        method: "post",
        path: "/api/sandboxes/{id}/restore",
        id: "restoreSandbox",
        tag: "checkpoints",
        summary:
            "Restore a sandbox in place from one of its checkpoints (same tokens, current values)",
        access: Access::ApiKey,
        request: Some(("RestoreRequest", true)),
        success: &[(200, "the restored sandbox", Body::Json("Sandbox"))],
        errors: &[400, 404, 409, 413, 422, 500, 503],
    },
    Operation {
        method: "post",
        path: "/api/snapshots",
        id: "createSnapshot",
        tag: "snapshots",
        summary: "Register a golden snapshot of a running sandbox (409 when it would take the org past its checkpoint-bytes quota)",
        access: Access::ApiKey,
        request: Some(("CreateSnapshot", true)),
        success: &[(201, "the snapshot", Body::Json("Snapshot"))],
        errors: &[400, 404, 409, 413, 500, 503],
    },
    Operation {
        method: "get",
        path: "/api/snapshots",
        id: "listSnapshots",
        tag: "snapshots",
        summary: "List the org's golden snapshots, by name",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the snapshots ([] when none)", Body::List("Snapshot"))],
        errors: &[],
    },
    Operation {
        method: "delete",
        path: "/api/snapshots/{snapshot}",
        id: "deleteSnapshot",
        tag: "snapshots",
        summary: "Delete a golden snapshot and the checkpoint behind it (409 while a sandbox boots from it)",
        access: Access::ApiKey,
        request: None,
        success: &[(204, "deleted", Body::Empty)],
        errors: &[400, 404, 409, 503],
    },
    Operation {
        method: "get",
        path: "/api/events",
        id: "streamEvents",
        tag: "events",
        summary:
            "Server-sent events of the caller's org (`event: <subject>`, `data: <envelope JSON>`)",
        access: Access::ApiKey,
        request: None,
        success: &[(
            200,
            "an endless event stream; `: ping` every 15 s",
            Body::Text("text/event-stream", "SSE frames"),
        )],
        errors: &[400, 503],
    },
    Operation {
        method: "get",
        path: "/api/openapi.json",
        id: "getOpenApi",
        tag: "meta",
        summary: "This document",
        access: Access::Public,
        request: None,
        success: &[(
            200,
            "the OpenAPI 3.1 document",
            Body::Text("application/json", "OpenAPI document"),
        )],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/healthz",
        id: "healthz",
        tag: "meta",
        summary: "The process answers",
        access: Access::Public,
        request: None,
        success: &[(200, "alive", Body::Json("Health"))],
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/readyz",
        id: "readyz",
        tag: "meta",
        summary: "The process and its database answer and the secret vault is not locked (503 says why)",
        access: Access::Public,
        request: None,
        success: &[(200, "ready", Body::Json("Ready"))],
        errors: &[503],
    },
    Operation {
        method: "get",
        path: "/metrics",
        id: "metrics",
        tag: "meta",
        summary: "Prometheus metrics (counts only: no org, secret or host; store figures cached for 15 s); when the operator sets OPENSANDBOX_METRICS_KEY, 401 without `Authorization: Bearer <that key>`",
        access: Access::Public,
        request: None,
        success: &[(
            200,
            "Prometheus text format 0.0.4",
            Body::Text("text/plain", "Prometheus exposition"),
        )],
        errors: &[503],
    },
];

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "invalid input: malformed JSON, a wrong type, an unknown field, a malformed id or a value out of range (the sentence names the field)",
        401 => "no API key (`missing_api_key`), or a revoked or expired one (`revoked_api_key`, `expired_api_key`)",
        403 => "the API key is unknown (`invalid_api_key`) or its scope does not cover the route (`insufficient_scope`)",
        404 => "not found, or owned by another org (`not_found`)",
        409 => "conflict: a duplicate name, a busy object, or an Idempotency-Key reused with another body",
        413 => "a body or value beyond its bound (`payload_too_large`)",
        422 => "well-formed but not acceptable, e.g. a reserved environment name (`unprocessable`)",
        429 => "too many requests with this API key (`rate_limited`); the `Retry-After` header says when to retry",
        500 => "the operation failed inside the platform (`internal`)",
        _ => "a dependency is down, or this gateway runs without a control plane (`unavailable`)",
    }
}

fn media(body: Body) -> Option<Value> {
    match body {
        Body::Json(name) => Some(json!({ "application/json": { "schema": schema_ref(name) } })),
        Body::List(name) => Some(json!({
            "application/json": { "schema": { "type": "array", "items": schema_ref(name) } }
        })),
        Body::Empty => None,
        Body::Text(media_type, description) => Some(json!({
            media_type: { "schema": { "type": "string", "description": description } }
        })),
    }
}

fn parameters(operation: &Operation) -> Vec<Value> {
    let mut parameters: Vec<Value> = operation
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let description = match name {
                "project" => "project id (`prj_…`) or name",
                "name" => "secret name (an environment variable name)",
                "checkpoint" => "checkpoint id (`chk_…`)",
                "snapshot" => "golden snapshot name",
                "asset" => "a file name of the dashboard (e.g. `app.js`)",
                "key" => "API key id (the `keyID` of GET /api/keys)",
                _ => "sandbox id (`sbx_…`)",
            };
            let mut parameter = json!({ "name": name, "in": "path", "required": true,
                    "description": description, "schema": { "type": "string" } });
            if name == "asset" {
                parameter["example"] = json!("app.js");
            }
            parameter
        })
        .collect();
    if operation.id == "createSandbox" || operation.id == "forkSandbox" {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1-255 visible ASCII characters; a retry with the same key and body returns the same sandbox (200), another body is 409",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255 },
        }));
    }
    if lists(operation) {
        parameters.extend(page_parameters());
    }
    if operation.id == "streamEvents" {
        parameters.push(json!({
            "name": "subject", "in": "query", "required": false,
            "description": "a subject pattern under osb.sandbox., osb.project. or osb.saga. (e.g. osb.sandbox.*.created); anything else is 400",
            "schema": { "type": "string" },
        }));
        parameters.extend(super::ops_paths::replay_parameters());
    }
    parameters
}

fn operation_value(operation: &Operation) -> Value {
    let mut responses = Map::new();
    for (status, description, body) in operation.success {
        let mut response = json!({ "description": description });
        if let Some(content) = media(*body) {
            response["content"] = content;
        }
        if matches!(body, Body::List(_)) {
            response["headers"] = page_headers();
        }
        responses.insert(status.to_string(), response);
    }
    let mut errors: Vec<u16> = operation.errors.to_vec();
    if operation.access == Access::ApiKey {
        // Every keyed route is rate limited per key (ADR 0027).
        errors.extend([401, 403, 429]);
    }
    if lists(operation) {
        errors.push(400);
    }
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({ "$ref": format!("#/components/responses/E{status}") }),
        );
    }
    let mut value = json!({
        "operationId": operation.id,
        "tags": [operation.tag],
        "summary": operation.summary,
        "parameters": parameters(operation),
        "responses": responses,
    });
    if operation.access == Access::Public {
        value["security"] = json!([]);
    }
    if let Some((schema, required)) = operation.request {
        value["requestBody"] = json!({
            "required": required,
            "content": { "application/json": { "schema": schema_ref(schema) } },
        });
    }
    value
}

/// `paths`: every operation, grouped by path.
pub fn paths() -> Value {
    let mut paths = Map::new();
    let tables = OPERATIONS
        .iter()
        .chain(super::ops_paths::OPS_OPERATIONS)
        .chain(super::key_paths::KEY_OPERATIONS);
    for operation in tables {
        let entry = paths
            .entry(operation.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[operation.method] = operation_value(operation);
    }
    Value::Object(paths)
}

/// `components.responses`: one shared error response per status.
pub fn error_responses() -> Value {
    let mut responses = Map::new();
    for status in [400, 401, 403, 404, 409, 413, 422, 429, 500, 503] {
        responses.insert(
            format!("E{status}"),
            json!({
                "description": error_description(status),
                "content": { "application/json": { "schema": schema_ref("Error") } },
            }),
        );
    }
    Value::Object(responses)
}
