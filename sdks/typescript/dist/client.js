/**
 * `OpenSandbox` (connection, retries, typed errors, events) and its resources: projects,
 * sandboxes, snapshots, returning bound objects (`Project`, `Sandbox`, `Checkpoint`,
 * `Snapshot`) whose methods act on the API. Lists follow the cursor (`list()`, an async
 * iterable) or go a page at a time (`listPage()`); exec streams and events are async iterables.
 *
 * A secret value passes through `Project.setSecret` into one request body and nowhere else.
 */
import { randomUUID } from "node:crypto";
import { resolveConnection } from "./config.js";
import { APIError, Unavailable } from "./errors.js";
import { LONG_TIMEOUT_MS, Transport, raiseFor } from "./http.js";
import { WIRE, read, } from "./models.js";
import { SseParser, lines } from "./sse.js";
const q = encodeURIComponent;
const idOf = (value) => (typeof value === "object" ? value.id : value);
const defined = (body) => Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
function execBody(cmd, options = {}) {
    return defined({
        cmd: typeof cmd === "string" ? ["sh", "-c", cmd] : cmd,
        env: options.env,
        cwd: options.cwd,
        timeoutSec: options.timeoutSec,
    });
}
const execTimeout = (options = {}) => ((options.timeoutSec ?? 60) + 30) * 1000;
function createCall(path, body) {
    // A fresh Idempotency-Key per create: a retried create returns the first sandbox.
    return {
        method: "POST", path, body, timeoutMs: LONG_TIMEOUT_MS, idempotent: true,
        headers: { "idempotency-key": `ts-${randomUUID()}` },
    };
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A connection to the API. */
export class OpenSandbox {
    static #default;
    transport;
    projects;
    sandboxes;
    snapshots;
    constructor(options = {}) {
        const connection = resolveConnection(options.apiUrl, options.apiKey, options.env ?? process.env);
        this.transport = new Transport({
            apiUrl: connection.apiUrl,
            apiKey: connection.apiKey,
            maxRetries: options.maxRetries ?? 3,
            fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
        });
        this.projects = new Projects(this);
        this.sandboxes = new Sandboxes(this);
        this.snapshots = new Snapshots(this);
    }
    /** A shared client configured from the environment (used by `Project.create` & co). */
    static default() {
        OpenSandbox.#default ??= new OpenSandbox();
        return OpenSandbox.#default;
    }
    get apiUrl() {
        return this.transport.apiUrl;
    }
    /**
     * Your org's events as they happen. A dropped stream is reopened with backoff, sending
     * `Last-Event-ID` when the server gave event ids; refusals (400, 401, 403) are thrown.
     */
    async *events(options = {}) {
        const parser = new SseParser();
        parser.lastEventId = options.lastEventId;
        const reconnect = options.reconnect ?? true;
        for (let attempt = 0;;) {
            const headers = {};
            if (parser.lastEventId !== undefined)
                headers["last-event-id"] = parser.lastEventId;
            const call = { method: "GET", path: "/events", query: { subject: options.subject }, headers };
            let response;
            try {
                response = await this.transport.open(call, "text/event-stream", options.signal);
                if (response.status >= 400 && (response.status < 500 || !reconnect))
                    await raiseFor(response);
                if (response.ok && response.body) {
                    attempt = 0;
                    options.onOpen?.();
                    for await (const line of lines(response.body)) {
                        const event = parser.line(line);
                        if (event)
                            yield event;
                    }
                }
                else {
                    await response.body?.cancel().catch(() => undefined);
                }
            }
            catch (error) {
                if (error instanceof APIError || options.signal?.aborted)
                    throw error;
                if (!reconnect)
                    throw this.transport.transportError(call, error);
            }
            if (!reconnect || options.signal?.aborted)
                return;
            await sleep(Math.max(this.transport.delay(attempt), parser.retryMs ?? 0));
            attempt = Math.min(attempt + 1, 6);
        }
    }
}
const clientOf = (client) => client ?? OpenSandbox.default();
/** A project bound to a client. */
export class Project {
    id;
    orgID;
    name;
    template;
    cpuCount;
    memoryMB;
    timeoutSec;
    egressAllowlist;
    createdAt;
    updatedAt;
    #client;
    constructor(client, data) {
        this.#client = client;
        Object.assign(this, read(WIRE.Project, data));
    }
    static create(fields) {
        const { client, ...rest } = fields;
        return clientOf(client).projects.create(rest);
    }
    static get(reference, client) {
        return clientOf(client).projects.get(reference);
    }
    static list(options = {}) {
        return clientOf(options.client).projects.list(options);
    }
    #path(tail = "") {
        return `/projects/${q(this.id)}${tail}`;
    }
    /** PATCH: fields given change, the rest stay (`egressAllowlist: []` clears it). */
    async update(fields) {
        return Object.assign(this, await this.#client.projects.update(this.id, fields));
    }
    /** PUT: the whole record; fields left out take their defaults (the name stays). */
    async replace(fields) {
        return Object.assign(this, await this.#client.projects.replace(this.id, fields));
    }
    async refresh() {
        return Object.assign(this, await this.#client.projects.get(this.id));
    }
    delete() {
        return this.#client.projects.delete(this.id);
    }
    /** Sets (creates or replaces) a secret: the value goes into this one request and nowhere else. */
    async setSecret(name, value, options = {}) {
        const body = defined({ value, allowedHosts: options.allowedHosts });
        const call = { method: "PUT", path: this.#path(`/secrets/${q(name)}`), body, idempotent: true, secret: true };
        return read(WIRE.SecretSet, await this.#client.transport.json(call));
    }
    /** Every secret's name, hosts and version (never values). */
    async listSecrets() {
        const out = [];
        for await (const secret of this.#client.transport.pages(this.#path("/secrets"), (data) => read(WIRE.Secret, data))) {
            out.push(secret);
        }
        return out;
    }
    async deleteSecret(name) {
        await this.#client.transport.json({ method: "DELETE", path: this.#path(`/secrets/${q(name)}`), idempotent: true });
    }
}
export class Projects {
    #client;
    constructor(client) {
        this.#client = client;
    }
    #project = (data) => new Project(this.#client, data);
    async create(fields) {
        return this.#project(await this.#client.transport.json({ method: "POST", path: "/projects", body: defined({ ...fields }) }));
    }
    async get(reference) {
        return this.#project(await this.#client.transport.json({ method: "GET", path: `/projects/${q(reference)}`, idempotent: true }));
    }
    list(options = {}) {
        return this.#client.transport.pages("/projects", this.#project, options.limit);
    }
    listPage(options = {}) {
        return this.#client.transport.page("/projects", this.#project, options.limit, options.cursor);
    }
    async update(reference, fields) {
        const call = { method: "PATCH", path: `/projects/${q(reference)}`, body: defined({ ...fields }), idempotent: true };
        return this.#project(await this.#client.transport.json(call));
    }
    async replace(reference, fields) {
        const call = { method: "PUT", path: `/projects/${q(reference)}`, body: defined({ ...fields }), idempotent: true };
        return this.#project(await this.#client.transport.json(call));
    }
    async delete(reference) {
        await this.#client.transport.json({ method: "DELETE", path: `/projects/${q(reference)}`, idempotent: true });
    }
}
/** A running command's output as it happens; afterwards `exitCode` and `timedOut` are set. */
export class ExecStream {
    exitCode;
    timedOut;
    #client;
    #call;
    constructor(client, call) {
        this.#client = client;
        this.#call = call;
    }
    async *[Symbol.asyncIterator]() {
        const response = await this.#client.transport.open(this.#call, "application/x-ndjson");
        await raiseFor(response);
        for await (const line of lines(response.body)) {
            if (!line.trim())
                continue;
            const item = JSON.parse(line);
            if (typeof item.stdout === "string")
                yield { stream: "stdout", data: Buffer.from(item.stdout, "base64") };
            else if (typeof item.stderr === "string")
                yield { stream: "stderr", data: Buffer.from(item.stderr, "base64") };
            else if (typeof item.exitCode === "number") {
                this.exitCode = item.exitCode;
                this.timedOut = Boolean(item.timedOut);
            }
            else if (typeof item.error === "string") {
                throw new Unavailable(item.error, 503, String(item.code ?? "unavailable"));
            }
        }
        if (this.exitCode === undefined)
            throw new Unavailable("the output stream ended without an exit code", 503, "unavailable");
    }
    /** Drains the stream; returns how the command ended. */
    async wait() {
        for await (const _ of this)
            void _;
        return { exitCode: this.exitCode, timedOut: this.timedOut };
    }
}
/** A sandbox bound to a client. */
export class Sandbox {
    id;
    status;
    workerID;
    project;
    projectID;
    template;
    cpuCount;
    memoryMB;
    timeoutSec;
    runtime;
    egress;
    warning;
    failureReason;
    metadata;
    createdAt;
    updatedAt;
    #client;
    constructor(client, data) {
        this.#client = client;
        Object.assign(this, read(WIRE.Sandbox, data));
    }
    /** Creates a sandbox (with an Idempotency-Key, so a retried create is safe). */
    static create(fields = {}) {
        const { client, ...rest } = fields;
        return clientOf(client).sandboxes.create(rest);
    }
    static get(id, client) {
        return clientOf(client).sandboxes.get(id);
    }
    static list(options = {}) {
        return clientOf(options.client).sandboxes.list(options);
    }
    /** A new sandbox from a checkpoint, with fresh sealed tokens. */
    static fork(checkpoint, fields = {}) {
        const { client, ...rest } = fields;
        return clientOf(client).sandboxes.fork(checkpoint, rest);
    }
    #path(tail = "") {
        return `/sandboxes/${q(this.id)}${tail}`;
    }
    #update(data) {
        return Object.assign(this, read(WIRE.Sandbox, data));
    }
    async refresh() {
        return this.#update(await this.#client.transport.json({ method: "GET", path: this.#path(), idempotent: true }));
    }
    /** Runs a command to its end (a string runs under `sh -c`); output is bounded. */
    async exec(cmd, options = {}) {
        const call = { method: "POST", path: this.#path("/exec"), body: execBody(cmd, options), timeoutMs: execTimeout(options) };
        return read(WIRE.ExecResult, await this.#client.transport.json(call));
    }
    /** Runs a command and yields its output as it is written (unbounded). */
    execStream(cmd, options = {}) {
        const call = { method: "POST", path: this.#path("/exec/stream"), body: execBody(cmd, options), timeoutMs: execTimeout(options) };
        return new ExecStream(this.#client, call);
    }
    async checkpoint() {
        const data = await this.#client.transport.json({ method: "POST", path: this.#path("/checkpoints"), timeoutMs: LONG_TIMEOUT_MS });
        return new Checkpoint(this.#client, data);
    }
    /** This sandbox's checkpoints, newest first. */
    checkpoints(options = {}) {
        return this.#client.transport.pages(this.#path("/checkpoints"), (data) => new Checkpoint(this.#client, data), options.limit);
    }
    /** Back to a checkpoint of this sandbox, in place: same tokens, current secret values. */
    async restore(checkpoint) {
        const call = { method: "POST", path: this.#path("/restore"), body: { checkpointID: idOf(checkpoint) }, timeoutMs: LONG_TIMEOUT_MS };
        return this.#update(await this.#client.transport.json(call));
    }
    async deleteCheckpoint(checkpoint) {
        const path = this.#path(`/checkpoints/${q(idOf(checkpoint))}`);
        await this.#client.transport.json({ method: "DELETE", path, timeoutMs: LONG_TIMEOUT_MS, idempotent: true });
    }
    /** Registers this sandbox's current state as a golden snapshot. */
    snapshot(name) {
        return this.#client.snapshots.create(name, this);
    }
    /** Destroys the sandbox (idempotent). */
    async kill() {
        return this.#update(await this.#client.transport.json({ method: "DELETE", path: this.#path(), timeoutMs: LONG_TIMEOUT_MS, idempotent: true }));
    }
}
export class Sandboxes {
    #client;
    constructor(client) {
        this.#client = client;
    }
    #sandbox = (data) => new Sandbox(this.#client, data);
    async create(fields = {}) {
        const body = defined({ ...fields, project: idOf(fields.project) });
        return this.#sandbox(await this.#client.transport.json(createCall("/sandboxes", body)));
    }
    async fork(checkpoint, fields = {}) {
        const body = defined({ ...fields, project: idOf(fields.project) });
        return this.#sandbox(await this.#client.transport.json(createCall(`/sandboxes/from-checkpoint/${q(idOf(checkpoint))}`, body)));
    }
    async get(id) {
        return this.#sandbox(await this.#client.transport.json({ method: "GET", path: `/sandboxes/${q(id)}`, idempotent: true }));
    }
    /** Your sandboxes, newest first, every page. */
    list(options = {}) {
        return this.#client.transport.pages("/sandboxes", this.#sandbox, options.limit);
    }
    listPage(options = {}) {
        return this.#client.transport.page("/sandboxes", this.#sandbox, options.limit, options.cursor);
    }
}
/** A checkpoint bound to a client. */
export class Checkpoint {
    id;
    sandboxID;
    workerID;
    createdAt;
    #client;
    constructor(client, data) {
        this.#client = client;
        Object.assign(this, read(WIRE.Checkpoint, data));
    }
    fork(fields = {}) {
        return this.#client.sandboxes.fork(this, fields);
    }
    async delete() {
        if (!this.sandboxID)
            throw new Error("this checkpoint's sandbox is unknown; delete it through its snapshot");
        const path = `/sandboxes/${q(this.sandboxID)}/checkpoints/${q(this.id)}`;
        await this.#client.transport.json({ method: "DELETE", path, timeoutMs: LONG_TIMEOUT_MS, idempotent: true });
    }
}
/** A golden snapshot bound to a client. */
export class Snapshot {
    name;
    checkpointID;
    sandboxID;
    workerID;
    createdAt;
    #client;
    constructor(client, data) {
        this.#client = client;
        Object.assign(this, read(WIRE.Snapshot, data));
    }
    /** Deletes the snapshot and the checkpoint behind it. */
    delete() {
        return this.#client.snapshots.delete(this.name);
    }
}
export class Snapshots {
    #client;
    constructor(client) {
        this.#client = client;
    }
    #snapshot = (data) => new Snapshot(this.#client, data);
    async create(name, sandbox) {
        const call = { method: "POST", path: "/snapshots", body: { name, sandboxID: idOf(sandbox) }, timeoutMs: LONG_TIMEOUT_MS };
        return this.#snapshot(await this.#client.transport.json(call));
    }
    list(options = {}) {
        return this.#client.transport.pages("/snapshots", this.#snapshot, options.limit);
    }
    listPage(options = {}) {
        return this.#client.transport.page("/snapshots", this.#snapshot, options.limit, options.cursor);
    }
    async delete(name) {
        await this.#client.transport.json({ method: "DELETE", path: `/snapshots/${q(name)}`, timeoutMs: LONG_TIMEOUT_MS, idempotent: true });
    }
}
