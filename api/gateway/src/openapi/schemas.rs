//! The `components.schemas` of the OpenAPI document: every request body and every view the
//! handlers serialise, with the exact camelCase field names on the wire (`sandboxID`,
//! `workerID`, `checkpointID`, `memoryMB`, …). Objects are closed (`additionalProperties:
//! false`): request bodies because the handlers refuse unknown fields, views so that the test
//! comparing real answers with this document catches a field added to a view but not here.
//!
//! It must never describe a secret value as readable: `value` exists only in the write-only
//! `PutSecret` body.

use serde_json::{json, Map, Value};

pub use super::field_schemas::GATEWAY_ERROR_CODES;
use super::field_schemas::{self as fields, deprecated, metadata_map, one_of_names};
use crate::validate::{CPU_RANGE, MEMORY_MB_RANGE, TIMEOUT_SEC_RANGE};

/// The error codes a gateway answer can carry.
pub(super) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub(super) fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

pub(super) fn nullable_string(description: &str) -> Value {
    json!({ "type": ["string", "null"], "description": description })
}

pub(super) fn id(prefix: &str, description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": format!("^{prefix}_[0-9a-f]{{32}}$"),
        "description": description,
    })
}

fn nullable_id(prefix: &str, description: &str) -> Value {
    let mut schema = id(prefix, description);
    schema["type"] = json!(["string", "null"]);
    schema
}

fn bounded(range: (u32, u32), description: &str) -> Value {
    json!({ "type": "integer", "minimum": range.0, "maximum": range.1, "description": description })
}

fn nullable_bounded(range: (u32, u32), description: &str) -> Value {
    let mut schema = bounded(range, description);
    schema["type"] = json!(["integer", "null"]);
    schema
}

pub(super) fn counter(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 0, "description": description })
}

fn size_bytes(description: &str) -> Value {
    json!({ "type": ["integer", "null"], "minimum": 0, "description": description })
}

fn flag(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

pub(super) fn timestamp(description: &str) -> Value {
    json!({ "type": "string", "format": "date-time", "description": description })
}

fn strings(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

fn nullable_strings(description: &str) -> Value {
    json!({ "type": ["array", "null"], "items": { "type": "string" }, "description": description })
}

fn env_map(description: &str) -> Value {
    json!({
        "type": ["object", "null"],
        "additionalProperties": { "type": "string" },
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "maxProperties": crate::validate::MAX_ENVS,
        "description": description,
    })
}

/// A closed object: `required` names the fields always present.
pub(super) fn object(description: &str, required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

fn project_sizes(properties: &mut Map<String, Value>) {
    properties.insert(
        "cpuCount".into(),
        nullable_bounded(CPU_RANGE, "CPUs per sandbox (default 1)"),
    );
    properties.insert(
        "memoryMB".into(),
        nullable_bounded(MEMORY_MB_RANGE, "memory per sandbox in MiB (default 512)"),
    );
    properties.insert(
        "timeoutSec".into(),
        nullable_bounded(
            TIMEOUT_SEC_RANGE,
            "sandbox lifetime in seconds (default 300)",
        ),
    );
}

fn project_schemas(schemas: &mut Map<String, Value>) {
    let mut create = Map::new();
    create.insert(
        "name".into(),
        json!({ "type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
                "description": "unique in the org; lowercase letters, digits and '-'" }),
    );
    create.insert(
        "template".into(),
        nullable_string("default template of the project's sandboxes"),
    );
    project_sizes(&mut create);
    create.insert(
        "egressAllowlist".into(),
        nullable_strings(
            "host patterns (`host`, `*.suffix`, optional `:port`); empty means no egress",
        ),
    );
    fields::add_runtime(&mut create, fields::PROJECT_RUNTIME);
    let mut replace = create.clone();
    replace.insert(
        "name".into(),
        nullable_string("new name; absent or null keeps the current one"),
    );
    let mut update = create.clone();
    update.insert(
        "name".into(),
        nullable_string("new name; absent or null keeps the current one"),
    );
    schemas.insert(
        "CreateProject".into(),
        object("a new project", &["name"], Value::Object(create)),
    );
    schemas.insert(
        "UpdateProject".into(),
        object(
            "a partial update: an absent or null field keeps its value; `egressAllowlist: []` clears the allowlist",
            &[],
            Value::Object(update),
        ),
    );
    schemas.insert(
        "ReplaceProject".into(),
        object(
            "the whole mutable record: an absent or null field takes its default (template none, cpuCount 1, memoryMB 512, timeoutSec 300, egressAllowlist [] = no egress, runtime netns); an absent name keeps the current one",
            &[],
            Value::Object(replace),
        ),
    );
    schemas.insert(
        "Project".into(),
        object(
            "a project",
            &[
                "id",
                "orgID",
                "orgId",
                "name",
                "template",
                "cpuCount",
                "memoryMB",
                "timeoutSec",
                "egressAllowlist",
                "runtime",
                "createdAt",
                "updatedAt",
            ],
            json!({
                "id": id("prj", "project id"),
                "orgID": id("org", "owning org"),
                "orgId": deprecated(id("org", "deprecated spelling of orgID (the same value)")),
                "name": string("project name"),
                "template": nullable_string("default template"),
                "cpuCount": bounded(CPU_RANGE, "CPUs per sandbox"),
                "memoryMB": bounded(MEMORY_MB_RANGE, "memory per sandbox in MiB"),
                "timeoutSec": bounded(TIMEOUT_SEC_RANGE, "sandbox lifetime in seconds"),
                "egressAllowlist": strings("normalised host patterns"),
                "runtime": fields::runtime_name(fields::PROJECT_RUNTIME),
                "createdAt": timestamp("creation time"),
                "updatedAt": timestamp("last change"),
            }),
        ),
    );
}

fn secret_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "PutSecret".into(),
        object(
            "a secret value (write-only: never returned) and where it may be sent",
            &["value"],
            json!({
                "value": { "type": "string", "minLength": 1, "writeOnly": true,
                           "description": "the real value, at most 64 KiB; never returned" },
                "allowedHosts": nullable_strings("hosts this secret may reach; absent uses the project's allowlist; [] is refused"),
            }),
        ),
    );
    schemas.insert(
        "SecretSet".into(),
        object(
            "the result of setting a secret",
            &["name", "status", "version", "refreshed"],
            json!({
                "name": string("secret name"),
                "status": { "type": "string", "enum": ["set"] },
                "version": counter("version, 1 for a new secret"),
                "refreshed": counter("running sandboxes whose proxy now uses the new value"),
            }),
        ),
    );
    schemas.insert(
        "Secret".into(),
        object(
            "a secret's metadata (never its value)",
            &["name", "allowedHosts", "inheritsProjectAllowlist", "version", "createdAt", "updatedAt"],
            json!({
                "name": string("secret name (an environment variable name)"),
                "allowedHosts": strings("the secret's own host patterns; [] when it inherits the project's"),
                "inheritsProjectAllowlist": flag("true when the secret has no list of its own"),
                "version": counter("current version"),
                "createdAt": timestamp("creation time"),
                "updatedAt": timestamp("last change"),
            }),
        ),
    );
}

fn sandbox_request_schemas(schemas: &mut Map<String, Value>) {
    let mut create = Map::new();
    create.insert(
        "project".into(),
        nullable_string("project id or name whose secrets are sealed into the sandbox"),
    );
    create.insert(
        "template".into(),
        nullable_string("template; default: the project's, else host-system"),
    );
    create.insert(
        "snapshot".into(),
        nullable_string("golden snapshot name to boot from"),
    );
    create.insert(
        "envs".into(),
        env_map("plain environment variables; they win over sealed secrets on a name clash"),
    );
    project_sizes(&mut create);
    create.insert(
        "templateID".into(),
        nullable_string(
            "alias of template (the reference system's name); both with different values is 400",
        ),
    );
    create.insert(
        "timeout".into(),
        nullable_bounded(
            TIMEOUT_SEC_RANGE,
            "alias of timeoutSec (the reference system's name); both with different values is 400",
        ),
    );
    create.insert("metadata".into(), metadata_map());
    fields::add_runtime(&mut create, fields::SANDBOX_RUNTIME);
    schemas.insert(
        "CreateSandbox".into(),
        object("a new sandbox", &[], Value::Object(create)),
    );
    schemas.insert(
        "ForkSandbox".into(),
        object(
            "a fork of a checkpoint (the body is optional)",
            &[],
            json!({
                "project": nullable_string("project id or name; default: the checkpoint's project"),
                "envs": env_map("plain environment variables"),
                "metadata": metadata_map(),
            }),
        ),
    );
    schemas.insert(
        "ExecRequest".into(),
        object(
            "a command to run in the sandbox",
            &["cmd"],
            json!({
                "cmd": { "type": "array", "items": { "type": "string" }, "minItems": 1,
                         "maxItems": crate::sandbox_ops::MAX_EXEC_ARGS,
                         "description": "program and arguments (no shell unless you run one)" },
                "env": env_map("extra environment variables"),
                "cwd": nullable_string("absolute working directory"),
                "timeoutSec": nullable_bounded(crate::sandbox_ops::EXEC_TIMEOUT_RANGE, "time limit in seconds"),
            }),
        ),
    );
    schemas.insert(
        "RestoreRequest".into(),
        one_of_names(
            object(
                "the checkpoint to restore in place (checkpointID, or the deprecated checkpointId)",
                &[],
                json!({
                    "checkpointID": id("chk", "a checkpoint of this same sandbox"),
                    "checkpointId": deprecated(id("chk", "deprecated spelling of checkpointID; both with different values is 400")),
                }),
            ),
            "checkpointID",
            "checkpointId",
        ),
    );
    schemas.insert(
        "CreateSnapshot".into(),
        one_of_names(
            object(
                "a golden snapshot of a running sandbox (sandboxID, or the deprecated sandboxId)",
                &["name"],
                json!({
                    "name": { "type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$",
                              "description": "unique in the org" },
                    "sandboxID": id("sbx", "the running sandbox to snapshot"),
                    "sandboxId": deprecated(id("sbx", "deprecated spelling of sandboxID; both with different values is 400")),
                }),
            ),
            "sandboxID",
            "sandboxId",
        ),
    );
}

fn sandbox_view_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "Sandbox".into(),
        object(
            "a sandbox",
            &["sandboxID", "status", "workerID", "project", "projectId", "template", "cpuCount", "memoryMB", "timeoutSec", "runtime", "egress", "warning", "failureReason", "metadata", "projectID", "createdAt", "updatedAt"],
            json!({
                "sandboxID": id("sbx", "sandbox id"),
                "status": { "type": "string", "enum": ["creating", "running", "stopped", "failed", "destroyed"] },
                "workerID": nullable_string("the worker running it"),
                "project": nullable_string("project name"),
                "projectID": nullable_id("prj", "project id"),
                "projectId": deprecated(nullable_id("prj", "deprecated spelling of projectID (the same value)")),
                "template": string("template"),
                "cpuCount": counter("CPUs"),
                "memoryMB": counter("memory in MiB"),
                "timeoutSec": counter("lifetime in seconds"),
                "runtime": nullable_string("runtime on the worker (netns, dev, …)"),
                "egress": { "type": ["string", "null"], "description": "`enforced` (network layer) or `cooperative` (proxy variables only)" },
                "warning": nullable_string("set on development runtimes: egress control is cooperative"),
                "failureReason": nullable_string("why creation failed"),
                "metadata": {
                    "type": "object", "additionalProperties": { "type": "string" },
                    "description": "the caller's labels ({} when none)",
                },
                "createdAt": timestamp("creation time"),
                "updatedAt": timestamp("last change"),
            }),
        ),
    );
    schemas.insert(
        "ExecResult".into(),
        object(
            "what the command did (output as lossy UTF-8, bounded)",
            &[
                "exitCode",
                "stdout",
                "stderr",
                "stdoutTruncated",
                "stderrTruncated",
                "timedOut",
            ],
            json!({
                "exitCode": { "type": "integer", "description": "exit status (-1 when killed)" },
                "stdout": string("standard output"),
                "stderr": string("standard error"),
                "stdoutTruncated": flag("stdout exceeded its bound"),
                "stderrTruncated": flag("stderr exceeded its bound"),
                "timedOut": flag("the command was killed at its time limit"),
            }),
        ),
    );
    schemas.insert(
        "Checkpoint".into(),
        object(
            "a checkpoint of a sandbox's writable layer",
            &["checkpointID", "sandboxID", "workerID", "createdAt", "sizeBytes"],
            json!({
                "checkpointID": id("chk", "checkpoint id"),
                "sandboxID": nullable_id("sbx", "the sandbox it was taken from"),
                "workerID": string("the worker holding the layer"),
                "createdAt": timestamp("creation time"),
                "sizeBytes": size_bytes("bytes the layer and its metadata take on the worker's disk, counted by the org's checkpoint quota; null for checkpoints taken before sizes were recorded"),
            }),
        ),
    );
    schemas.insert(
        "Snapshot".into(),
        object(
            "a golden snapshot",
            &["name", "checkpointID", "sandboxID", "workerID", "createdAt", "sizeBytes"],
            json!({
                "name": string("snapshot name"),
                "checkpointID": nullable_id("chk", "the checkpoint behind it"),
                "sandboxID": nullable_string("the sandbox it was taken from"),
                "workerID": nullable_string("the worker holding the layer"),
                "createdAt": timestamp("creation time"),
                "sizeBytes": size_bytes("its checkpoint's bytes on the worker's disk (counted once, as the checkpoint's, by the org's checkpoint quota); null when not recorded"),
            }),
        ),
    );
    schemas.insert(
        "AllowedHosts".into(),
        object(
            "where the sandbox may connect, and where each secret may be sent",
            &["sandboxID", "egressAllowlist", "secrets"],
            json!({
                "sandboxID": id("sbx", "sandbox id"),
                "egressAllowlist": strings("the project's allowlist"),
                "secrets": { "type": "array", "items": object(
                    "one secret's effective hosts",
                    &["name", "allowedHosts"],
                    json!({
                        "name": string("secret name"),
                        "allowedHosts": strings("effective host patterns (its own, else the project's)"),
                    }),
                ) },
            }),
        ),
    );
}

fn common_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "Error".into(),
        object(
            "every refusal: a sentence saying what was wrong and what to do, and a stable code",
            &["error", "code"],
            json!({
                "error": string("human sentence"),
                "code": { "type": "string", "enum": GATEWAY_ERROR_CODES },
            }),
        ),
    );
    schemas.insert(
        "Health".into(),
        object(
            "the process answers",
            &["status"],
            json!({ "status": { "type": "string", "enum": ["ok"] } }),
        ),
    );
    schemas.insert(
        "Ready".into(),
        object(
            "the process, its database and the secret vault answer; `vault: degraded` with a `reason` when some stored secrets cannot be opened (their key is not configured)",
            &["status", "database", "vault"],
            json!({
                "status": { "type": "string", "enum": ["ready"] },
                "database": { "type": "string", "enum": ["ok"] },
                "vault": { "type": "string", "enum": ["ok", "degraded"] },
                "reason": { "type": "string" },
            }),
        ),
    );
}

/// All schemas, by name.
pub fn schemas() -> Value {
    let mut schemas = Map::new();
    common_schemas(&mut schemas);
    project_schemas(&mut schemas);
    secret_schemas(&mut schemas);
    sandbox_request_schemas(&mut schemas);
    sandbox_view_schemas(&mut schemas);
    super::ops_schemas::ops_schemas(&mut schemas);
    super::key_paths::key_schemas(&mut schemas);
    Value::Object(schemas)
}

/// `{"$ref": …}` to a schema of this module.
pub fn schema_ref(name: &str) -> Value {
    reference(name)
}
