/**
 * `OpenSandbox` (connection, retries, typed errors, events) and its resources: projects,
 * sandboxes, snapshots, returning bound objects (`Project`, `Sandbox`, `Checkpoint`,
 * `Snapshot`) whose methods act on the API. Lists follow the cursor (`list()`, an async
 * iterable) or go a page at a time (`listPage()`); exec streams and events are async iterables.
 *
 * A secret value passes through `Project.setSecret` into one request body and nowhere else.
 */
import { Call, Page, Transport } from "./http.js";
import { CheckpointData, ExecChunk, ExecResult, ProjectData, SandboxData, SecretInfo, SecretSet, SnapshotData } from "./models.js";
import { OsbEvent } from "./sse.js";
export interface ClientOptions {
    /** Default: `OPENSANDBOX_API_URL`, else the `oc` config file, else http://127.0.0.1:8080. */
    apiUrl?: string;
    /** Default: `OPENSANDBOX_API_KEY`, else the `oc` config file. */
    apiKey?: string;
    /** Retries of a call that may be retried (default 3). */
    maxRetries?: number;
    /** A `fetch` to use instead of the global one (tests, proxies). */
    fetch?: typeof fetch;
    /** The environment to read configuration from (default `process.env`). */
    env?: Record<string, string | undefined>;
}
export interface ProjectFields {
    template?: string | null;
    cpuCount?: number;
    memoryMB?: number;
    timeoutSec?: number;
    egressAllowlist?: string[];
}
export interface SandboxFields {
    /** A project name, id or `Project`. */
    project?: string | {
        id: string;
    };
    template?: string;
    /** Boot from this golden snapshot. */
    snapshot?: string;
    envs?: Record<string, string>;
    cpuCount?: number;
    memoryMB?: number;
    timeoutSec?: number;
    metadata?: Record<string, string>;
}
export interface ForkFields {
    project?: string | {
        id: string;
    };
    envs?: Record<string, string>;
    metadata?: Record<string, string>;
}
export interface ExecOptions {
    env?: Record<string, string>;
    cwd?: string;
    timeoutSec?: number;
}
export interface EventOptions {
    /** A subject pattern under osb.sandbox. or osb.project. (e.g. `osb.sandbox.*.created`). */
    subject?: string;
    /** Resume after this event id (sent as `Last-Event-ID`). */
    lastEventId?: string;
    /** Reopen a dropped stream (default true). */
    reconnect?: boolean;
    /** Stops the stream. */
    signal?: AbortSignal;
    /** Called each time the stream is (re)opened: from then on no event is missed. */
    onOpen?: () => void;
}
/** A connection to the API. */
export declare class OpenSandbox {
    #private;
    readonly transport: Transport;
    readonly projects: Projects;
    readonly sandboxes: Sandboxes;
    readonly snapshots: Snapshots;
    constructor(options?: ClientOptions);
    /** A shared client configured from the environment (used by `Project.create` & co). */
    static default(): OpenSandbox;
    get apiUrl(): string;
    /**
     * Your org's events as they happen. A dropped stream is reopened with backoff, sending
     * `Last-Event-ID` when the server gave event ids; refusals (400, 401, 403) are thrown.
     */
    events(options?: EventOptions): AsyncGenerator<OsbEvent>;
}
/** A project bound to a client. */
export declare class Project implements ProjectData {
    #private;
    id: string;
    orgID: string;
    name: string;
    template: string | null;
    cpuCount: number;
    memoryMB: number;
    timeoutSec: number;
    egressAllowlist: string[];
    createdAt: string;
    updatedAt: string;
    constructor(client: OpenSandbox, data: unknown);
    static create(fields: ProjectFields & {
        name: string;
        client?: OpenSandbox;
    }): Promise<Project>;
    static get(reference: string, client?: OpenSandbox): Promise<Project>;
    static list(options?: {
        limit?: number;
        client?: OpenSandbox;
    }): AsyncGenerator<Project>;
    /** PATCH: fields given change, the rest stay (`egressAllowlist: []` clears it). */
    update(fields: ProjectFields & {
        name?: string;
    }): Promise<this>;
    /** PUT: the whole record; fields left out take their defaults (the name stays). */
    replace(fields: ProjectFields & {
        name?: string;
    }): Promise<this>;
    refresh(): Promise<this>;
    delete(): Promise<void>;
    /** Sets (creates or replaces) a secret: the value goes into this one request and nowhere else. */
    setSecret(name: string, value: string, options?: {
        allowedHosts?: string[];
    }): Promise<SecretSet>;
    /** Every secret's name, hosts and version (never values). */
    listSecrets(): Promise<SecretInfo[]>;
    deleteSecret(name: string): Promise<void>;
}
export declare class Projects {
    #private;
    constructor(client: OpenSandbox);
    create(fields: ProjectFields & {
        name: string;
    }): Promise<Project>;
    get(reference: string): Promise<Project>;
    list(options?: {
        limit?: number;
    }): AsyncGenerator<Project>;
    listPage(options?: {
        limit?: number;
        cursor?: string;
    }): Promise<Page<Project>>;
    update(reference: string, fields: ProjectFields & {
        name?: string;
    }): Promise<Project>;
    replace(reference: string, fields: ProjectFields & {
        name?: string;
    }): Promise<Project>;
    delete(reference: string): Promise<void>;
}
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
