/**
 * The API's objects as plain data, read from the documented wire names. Each reader lists the
 * wire names it reads (`WIRE`) so a test can check every one against the served OpenAPI
 * document. No model ever holds a secret value.
 */
export interface ProjectData {
    id: string;
    orgID: string;
    name: string;
    template: string | null;
    cpuCount: number;
    memoryMB: number;
    timeoutSec: number;
    egressAllowlist: string[];
    runtime: string;
    createdAt: string;
    updatedAt: string;
}
/** A secret's metadata: there is no value (the API never returns one). */
export interface SecretInfo {
    name: string;
    allowedHosts: string[];
    inheritsProjectAllowlist: boolean;
    version: number;
    createdAt: string;
    updatedAt: string;
}
/** The answer to setting a secret. */
export interface SecretSet {
    name: string;
    status: "set";
    version: number;
    /** Running sandboxes of the project that now use the new value. */
    refreshed: number;
}
export interface SandboxData {
    /** `sandboxID` on the wire. */
    id: string;
    status: "creating" | "running" | "stopped" | "failed" | "destroyed";
    workerID: string | null;
    project: string | null;
    projectID: string | null;
    template: string;
    cpuCount: number;
    memoryMB: number;
    timeoutSec: number;
    runtime: string | null;
    egress: string | null;
    /** Set when egress control is only cooperative (development runtime). */
    warning: string | null;
    failureReason: string | null;
    metadata: Record<string, string>;
    createdAt: string;
    updatedAt: string;
}
export interface CheckpointData {
    /** `checkpointID` on the wire. */
    id: string;
    sandboxID: string | null;
    workerID: string;
    createdAt: string;
}
export interface SnapshotData {
    name: string;
    checkpointID: string | null;
    sandboxID: string | null;
    workerID: string | null;
    createdAt: string;
}
/** What a command did; output is bounded per stream (`…Truncated` say when it was cut). */
export interface ExecResult {
    exitCode: number;
    stdout: string;
    stderr: string;
    stdoutTruncated: boolean;
    stderrTruncated: boolean;
    timedOut: boolean;
}
/** Bytes a streaming command wrote. */
export interface ExecChunk {
    stream: "stdout" | "stderr";
    data: Uint8Array;
}
/** Model field → wire name, per OpenAPI schema. */
export declare const WIRE: {
    readonly Project: {
        readonly id: "id";
        readonly orgID: "orgID";
        readonly name: "name";
        readonly template: "template";
        readonly cpuCount: "cpuCount";
        readonly memoryMB: "memoryMB";
        readonly timeoutSec: "timeoutSec";
        readonly egressAllowlist: "egressAllowlist";
        readonly runtime: "runtime";
        readonly createdAt: "createdAt";
        readonly updatedAt: "updatedAt";
    };
    readonly Secret: {
        readonly name: "name";
        readonly allowedHosts: "allowedHosts";
        readonly inheritsProjectAllowlist: "inheritsProjectAllowlist";
        readonly version: "version";
        readonly createdAt: "createdAt";
        readonly updatedAt: "updatedAt";
    };
    readonly SecretSet: {
        readonly name: "name";
        readonly status: "status";
        readonly version: "version";
        readonly refreshed: "refreshed";
    };
    readonly Sandbox: {
        readonly id: "sandboxID";
        readonly status: "status";
        readonly workerID: "workerID";
        readonly project: "project";
        readonly projectID: "projectID";
        readonly template: "template";
        readonly cpuCount: "cpuCount";
        readonly memoryMB: "memoryMB";
        readonly timeoutSec: "timeoutSec";
        readonly runtime: "runtime";
        readonly egress: "egress";
        readonly warning: "warning";
        readonly failureReason: "failureReason";
        readonly metadata: "metadata";
        readonly createdAt: "createdAt";
        readonly updatedAt: "updatedAt";
    };
    readonly Checkpoint: {
        readonly id: "checkpointID";
        readonly sandboxID: "sandboxID";
        readonly workerID: "workerID";
        readonly createdAt: "createdAt";
    };
    readonly Snapshot: {
        readonly name: "name";
        readonly checkpointID: "checkpointID";
        readonly sandboxID: "sandboxID";
        readonly workerID: "workerID";
        readonly createdAt: "createdAt";
    };
    readonly ExecResult: {
        readonly exitCode: "exitCode";
        readonly stdout: "stdout";
        readonly stderr: "stderr";
        readonly stdoutTruncated: "stdoutTruncated";
        readonly stderrTruncated: "stderrTruncated";
        readonly timedOut: "timedOut";
    };
};
/** Reads `data` into a model with the given wire map. */
export declare function read<T>(wire: Record<string, string>, data: any): T;
