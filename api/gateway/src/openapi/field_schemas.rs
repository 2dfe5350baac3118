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
