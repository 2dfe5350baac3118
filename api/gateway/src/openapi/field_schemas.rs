//! Schema pieces for fields with more than one name or shape: a deprecated spelling still
//! accepted or sent, a body that needs one of two names of the same field, and sandbox
//! `metadata` with its bounds (read from the same constants the gateway enforces).

use serde_json::{json, Value};

/// Marks a field deprecated (still accepted or still sent, with the same meaning).
pub(super) fn deprecated(mut schema: Value) -> Value {
    schema["deprecated"] = json!(true);
    schema
}

/// Requires one of two names of the same field.
pub(super) fn one_of_names(mut schema: Value, canonical: &str, alias: &str) -> Value {
    schema["anyOf"] = json!([{ "required": [canonical] }, { "required": [alias] }]);
    schema
}

/// Sandbox metadata as a request field.
pub(super) fn metadata_map() -> Value {
    use crate::aliases::{MAX_METADATA_KEY, MAX_METADATA_KEYS, MAX_METADATA_VALUE};
    json!({
        "type": ["object", "null"],
        "additionalProperties": { "type": "string", "maxLength": MAX_METADATA_VALUE },
        "propertyNames": { "minLength": 1, "maxLength": MAX_METADATA_KEY },
        "maxProperties": MAX_METADATA_KEYS,
        "description": "labels stored and returned with the sandbox: at most 64 keys of 1-64 characters, values of at most 512 characters",
    })
}

/// Adds the nullable `runtime` field of a create; an unknown name is 400 listing the valid
/// names (ADR 0025).
pub(super) fn add_runtime(fields: &mut serde_json::Map<String, Value>, description: &str) {
    fields.insert("runtime".into(), runtime_choice(description));
}

fn runtime_choice(description: &str) -> Value {
    json!({
        "type": ["string", "null"],
        "enum": [osb_proto::RuntimeName::Netns.as_str(), osb_proto::RuntimeName::Microvm.as_str(), null],
        "description": description,
    })
}

/// A runtime name as answers show it.
pub(super) fn runtime_name(description: &str) -> Value {
    json!({
        "type": "string",
        "enum": osb_proto::RUNTIME_NAMES.map(osb_proto::RuntimeName::as_str),
        "description": description,
    })
}

pub(super) const PROJECT_RUNTIME: &str =
    "default runtime of the project's sandboxes (netns or microvm); absent: netns";
pub(super) const SANDBOX_RUNTIME: &str = "the sandbox runtime (netns or microvm); default: the project's, else netns. A snapshot boots on the runtime it was taken on; no live worker offering it is 503";

/// Every code the gateway answers with (the `Error` schema's enum).
pub const GATEWAY_ERROR_CODES: [&str; 13] = [
    "invalid_input",
    "missing_api_key",
    "invalid_api_key",
    "revoked_api_key",
    "expired_api_key",
    "insufficient_scope",
    "not_found",
    "conflict",
    "payload_too_large",
    "unprocessable",
    "rate_limited",
    "unavailable",
    "internal",
];
