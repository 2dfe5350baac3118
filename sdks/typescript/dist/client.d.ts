/**
 * `OpenSandbox` (connection, retries, typed errors, events) and its resources: projects,
 * sandboxes, snapshots, returning bound objects (`Project`, `Sandbox`, `Checkpoint`,
 * `Snapshot`) whose methods act on the API. Lists follow the cursor (`list()`, an async
 * iterable) or go a page at a time (`listPage()`); exec streams and events are async iterables.
 *
 * A secret value passes through `Project.setSecret` into one request body and nowhere else.
 */
import { Transport } from "./http.js";
import { Projects } from "./projects.js";
import { Sandboxes, Snapshots } from "./sandboxes.js";
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
    /** Default runtime of the project's sandboxes (ADR 0025). */
    runtime?: "netns" | "microvm";
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
    /** `netns` or `microvm`; default: the project's runtime, else netns. */
    runtime?: "netns" | "microvm";
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
/** The shared default client unless one is given. */
export declare const clientOf: (client?: OpenSandbox) => OpenSandbox;
