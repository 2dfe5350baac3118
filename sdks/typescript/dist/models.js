/**
 * The API's objects as plain data, read from the documented wire names. Each reader lists the
 * wire names it reads (`WIRE`) so a test can check every one against the served OpenAPI
 * document. No model ever holds a secret value.
 */
/** Model field → wire name, per OpenAPI schema. */
export const WIRE = {
    Project: {
        id: "id", orgID: "orgID", name: "name", template: "template", cpuCount: "cpuCount",
        memoryMB: "memoryMB", timeoutSec: "timeoutSec", egressAllowlist: "egressAllowlist", runtime: "runtime",
        createdAt: "createdAt", updatedAt: "updatedAt",
    },
    Secret: {
        name: "name", allowedHosts: "allowedHosts", inheritsProjectAllowlist: "inheritsProjectAllowlist",
        version: "version", createdAt: "createdAt", updatedAt: "updatedAt",
    },
    SecretSet: { name: "name", status: "status", version: "version", refreshed: "refreshed" },
    Sandbox: {
        id: "sandboxID", status: "status", workerID: "workerID", project: "project", projectID: "projectID",
        template: "template", cpuCount: "cpuCount", memoryMB: "memoryMB", timeoutSec: "timeoutSec",
        runtime: "runtime", egress: "egress", warning: "warning", failureReason: "failureReason",
        metadata: "metadata", createdAt: "createdAt", updatedAt: "updatedAt",
    },
    Checkpoint: { id: "checkpointID", sandboxID: "sandboxID", workerID: "workerID", createdAt: "createdAt" },
    Snapshot: {
        name: "name", checkpointID: "checkpointID", sandboxID: "sandboxID", workerID: "workerID",
        createdAt: "createdAt",
    },
    ExecResult: {
        exitCode: "exitCode", stdout: "stdout", stderr: "stderr", stdoutTruncated: "stdoutTruncated",
        stderrTruncated: "stderrTruncated", timedOut: "timedOut",
    },
};
/** Reads `data` into a model with the given wire map. */
export function read(wire, data) {
    const out = {};
    for (const [field, name] of Object.entries(wire))
        out[field] = data?.[name] ?? null;
    return out;
}
