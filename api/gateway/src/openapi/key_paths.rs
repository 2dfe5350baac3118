//! The operations of `/api/keys` (ADR 0026), in the same table shape as `paths`, and their
//! schemas. Every one needs an admin-scoped key.
//!
//! It must never describe a field that carries a key except `apiKey` of the answers that
//! create one (shown once).

use serde_json::{json, Map, Value};

use super::paths::{Access, Body, Operation};
use super::schemas::{nullable_string, object, string, timestamp};

/// The key lifecycle routes.
pub const KEY_OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/keys",
        id: "listKeys",
        tag: "keys",
        summary: "The org's API keys (never the keys: names, prefixes, scopes, status, expiry, last use); admin scope",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the keys, oldest first ([] when none)", Body::List("ApiKey"))],
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/api/keys",
        id: "createKey",
        tag: "keys",
        summary: "Create a key with a name, a scope (admin, sandboxes, read) and an optional expiry; the key is in this answer only",
        access: Access::ApiKey,
        request: Some(("CreateKey", true)),
        success: &[(201, "the new key, shown once", Body::Json("CreatedKey"))],
        errors: &[400],
    },
    Operation {
        method: "delete",
        path: "/api/keys/{key}",
        id: "revokeKey",
        tag: "keys",
        summary: "Revoke a key: it is refused with 401 revoked_api_key from now on",
        access: Access::ApiKey,
        request: None,
        success: &[(200, "the revoked key", Body::Json("ApiKey"))],
        errors: &[400, 404],
    },
    Operation {
        method: "post",
        path: "/api/keys/{key}/rotate",
        id: "rotateKey",
        tag: "keys",
        summary: "Replace a live key: a new key with the same name, scope and expiry, the old one revoked in the same transaction",
        access: Access::ApiKey,
        request: None,
        success: &[(201, "the replacement, shown once", Body::Json("CreatedKey"))],
        errors: &[400, 404, 409],
    },
];

fn key_properties() -> Map<String, Value> {
    let properties = json!({
        "keyID": { "type": "string", "format": "uuid", "description": "key id" },
        "name": string("the key's label"),
        "prefix": string("`osk_` and the first hex characters: recognises a key, cannot use it"),
        "scope": { "type": "string", "enum": ["admin", "sandboxes", "read"] },
        "status": { "type": "string", "enum": ["active", "revoked", "expired"] },
        "createdAt": timestamp("creation time"),
        "expiresAt": { "type": ["string", "null"], "format": "date-time", "description": "expiry (null: none)" },
        "lastUsedAt": { "type": ["string", "null"], "format": "date-time", "description": "last use, written in batches (may lag)" },
        "revokedAt": { "type": ["string", "null"], "format": "date-time", "description": "revocation time" },
    });
    match properties {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

const KEY_FIELDS: [&str; 9] = [
    "keyID",
    "name",
    "prefix",
    "scope",
    "status",
    "createdAt",
    "expiresAt",
    "lastUsedAt",
    "revokedAt",
];

/// Inserts the key schemas.
pub fn key_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "ApiKey".into(),
        object(
            "an API key's metadata",
            &KEY_FIELDS,
            Value::Object(key_properties()),
        ),
    );
    let mut created = key_properties();
    created.insert(
        "apiKey".into(),
        string("the key (`osk_…`): store it now, it is never shown again"),
    );
    let mut required = KEY_FIELDS.to_vec();
    required.push("apiKey");
    schemas.insert(
        "CreatedKey".into(),
        object(
            "a new key and its metadata",
            &required,
            Value::Object(created),
        ),
    );
    schemas.insert(
        "CreateKey".into(),
        object(
            "a new key",
            &["name", "scope"],
            json!({
                "name": string("1-64 characters without control characters"),
                "scope": { "type": "string", "enum": ["admin", "sandboxes", "read"],
                           "description": "admin: everything; sandboxes: sandboxes, checkpoints, snapshots, exec and reading events, workers, sagas; read: every GET except /api/keys" },
                "expiresAt": nullable_string("RFC 3339 time in the future, at most ten years away; absent: no expiry"),
            }),
        ),
    );
}
