/**
 * Sandboxes and what they hold: the `Sandboxes` and `Snapshots` resources and the bound
 * `Sandbox` (exec, streaming exec, checkpoints, restore, snapshot, kill), `Checkpoint`,
 * `Snapshot` and `ExecStream`.
 */
import type { ExecOptions, ForkFields, OpenSandbox, SandboxFields } from "./client.js";
import { Call, Page } from "./http.js";
import { CheckpointData, ExecChunk, ExecResult, SandboxData, SnapshotData } from "./models.js";
/** A running command's output as it happens; afterwards `exitCode` and `timedOut` are set. */
export declare class ExecStream implements AsyncIterable<ExecChunk> {
    #private;
    exitCode: number | undefined;
    timedOut: boolean | undefined;
    constructor(client: OpenSandbox, call: Call);
    [Symbol.asyncIterator](): AsyncGenerator<ExecChunk>;
    /** Drains the stream; returns how the command ended. */
    wait(): Promise<{
        exitCode: number;
        timedOut: boolean;
    }>;
}
/** A sandbox bound to a client. */
export declare class Sandbox implements SandboxData {
    #private;
    id: string;
    status: SandboxData["status"];
    workerID: string | null;
    project: string | null;
    projectID: string | null;
    template: string;
    cpuCount: number;
    memoryMB: number;
    timeoutSec: number;
    runtime: string | null;
    egress: string | null;
    warning: string | null;
    failureReason: string | null;
    metadata: Record<string, string>;
    createdAt: string;
    updatedAt: string;
    constructor(client: OpenSandbox, data: unknown);
    /** Creates a sandbox (with an Idempotency-Key, so a retried create is safe). */
    static create(fields?: SandboxFields & {
        client?: OpenSandbox;
    }): Promise<Sandbox>;
    static get(id: string, client?: OpenSandbox): Promise<Sandbox>;
    static list(options?: {
        limit?: number;
        client?: OpenSandbox;
    }): AsyncGenerator<Sandbox>;
    /** A new sandbox from a checkpoint, with fresh sealed tokens. */
    static fork(checkpoint: string | {
        id: string;
    }, fields?: ForkFields & {
        client?: OpenSandbox;
    }): Promise<Sandbox>;
    refresh(): Promise<this>;
    /** Runs a command to its end (a string runs under `sh -c`); output is bounded. */
    exec(cmd: string | string[], options?: ExecOptions): Promise<ExecResult>;
    /** Runs a command and yields its output as it is written (unbounded). */
    execStream(cmd: string | string[], options?: ExecOptions): ExecStream;
    checkpoint(): Promise<Checkpoint>;
    /** This sandbox's checkpoints, newest first. */
    checkpoints(options?: {
        limit?: number;
    }): AsyncGenerator<Checkpoint>;
    /** Back to a checkpoint of this sandbox, in place: same tokens, current secret values. */
    restore(checkpoint: string | {
        id: string;
    }): Promise<this>;
    deleteCheckpoint(checkpoint: string | {
        id: string;
    }): Promise<void>;
    /** Registers this sandbox's current state as a golden snapshot. */
    snapshot(name: string): Promise<Snapshot>;
    /** Destroys the sandbox (idempotent). */
    kill(): Promise<this>;
}
export declare class Sandboxes {
    #private;
    constructor(client: OpenSandbox);
    create(fields?: SandboxFields): Promise<Sandbox>;
    fork(checkpoint: string | {
        id: string;
    }, fields?: ForkFields): Promise<Sandbox>;
    get(id: string): Promise<Sandbox>;
    /** Your sandboxes, newest first, every page. */
    list(options?: {
        limit?: number;
    }): AsyncGenerator<Sandbox>;
    listPage(options?: {
        limit?: number;
        cursor?: string;
    }): Promise<Page<Sandbox>>;
}
/** A checkpoint bound to a client. */
export declare class Checkpoint implements CheckpointData {
    #private;
    id: string;
    sandboxID: string | null;
    workerID: string;
    createdAt: string;
    constructor(client: OpenSandbox, data: unknown);
    fork(fields?: ForkFields): Promise<Sandbox>;
    delete(): Promise<void>;
}
/** A golden snapshot bound to a client. */
export declare class Snapshot implements SnapshotData {
    #private;
    name: string;
    checkpointID: string | null;
    sandboxID: string | null;
    workerID: string | null;
    createdAt: string;
    constructor(client: OpenSandbox, data: unknown);
    /** Deletes the snapshot and the checkpoint behind it. */
    delete(): Promise<void>;
}
export declare class Snapshots {
    #private;
    constructor(client: OpenSandbox);
    create(name: string, sandbox: string | {
        id: string;
    }): Promise<Snapshot>;
    list(options?: {
        limit?: number;
    }): AsyncGenerator<Snapshot>;
    listPage(options?: {
        limit?: number;
        cursor?: string;
    }): Promise<Page<Snapshot>>;
    delete(name: string): Promise<void>;
}
