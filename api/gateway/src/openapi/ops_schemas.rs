//! The `components.schemas` of the ops views (`Saga`, `SagaStep`, `Worker`,
//! `WorkerCapacity`), closed objects like every other view.
//!
//! It must never describe a saga's parameters or step outputs, nor another org's usage of a
//! worker: the views do not carry them.

use serde_json::{json, Map, Value};

use super::schemas::{counter, id, nullable_string, object, reference, string, timestamp};

/// Inserts the ops schemas.
pub fn ops_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "SagaStep".into(),
        object(
            "one logged step action",
            &["step", "action", "status", "error"],
            json!({
                "step": string("step name (resolve_project, place_on_worker, seal_secrets, boot_sandbox, …)"),
                "action": { "type": "string", "enum": ["do", "undo"] },
                "status": { "type": "string", "enum": ["started", "completed", "failed"] },
                "error": nullable_string("a failed action's message (sealed tokens redacted)"),
            }),
        ),
    );
    schemas.insert(
        "Saga".into(),
        object(
            "a saga not yet over: its kind, where it stands and its steps (never parameters or outputs)",
            &["sagaID", "kind", "status", "sandboxID", "currentStep", "steps", "createdAt", "updatedAt", "claimedAt"],
            json!({
                "sagaID": id("saga", "saga id"),
                "kind": string("create_sandbox, destroy_sandbox, checkpoint_sandbox, snapshot_sandbox, restore_sandbox"),
                "status": { "type": "string", "enum": ["running", "unwinding", "stuck"],
                            "description": "stuck: an undo kept failing; every control plane retries it on start" },
                "sandboxID": { "type": ["string", "null"], "description": "the sandbox it acts on" },
                "currentStep": nullable_string("the step logged last"),
                "steps": { "type": "array", "items": reference("SagaStep") },
                "createdAt": timestamp("when it started"),
                "updatedAt": timestamp("its last status change"),
                "claimedAt": { "type": ["string", "null"], "format": "date-time",
                               "description": "when a control plane last renewed its claim (lease 30 s)" },
            }),
        ),
    );
    schemas.insert(
        "WorkerCapacity".into(),
        object(
            "what a worker can hold in total (not what is free)",
            &["sandboxes", "cpuCount", "memoryMB"],
            json!({
                "sandboxes": counter("sandboxes"),
                "cpuCount": counter("CPUs (oversubscribed)"),
                "memoryMB": counter("memory in MiB"),
            }),
        ),
    );
    schemas.insert(
        "Worker".into(),
        object(
            "a shared worker as an org sees it: no other org's usage, no address",
            &[
                "workerID",
                "status",
                "isolation",
                "lastHeartbeatAt",
                "capacity",
                "yourSandboxes",
            ],
            json!({
                "workerID": string("the worker's name, as sandboxes show it in workerID"),
                "status": { "type": "string", "enum": ["live", "lost"] },
                "isolation": string("netns (egress enforced) or development (cooperative)"),
                "lastHeartbeatAt": timestamp("its last heartbeat"),
                "capacity": reference("WorkerCapacity"),
                "yourSandboxes": counter("the caller's sandboxes active there"),
            }),
        ),
    );
}
