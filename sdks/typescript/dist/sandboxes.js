/**
 * Sandboxes and what they hold: the `Sandboxes` and `Snapshots` resources and the bound
 * `Sandbox` (exec, streaming exec, checkpoints, restore, snapshot, kill), `Checkpoint`,
 * `Snapshot` and `ExecStream`.
 */
import { clientOf } from "./client.js";
import { createCall, defined, execBody, execTimeout, idOf, q } from "./calls.js";
import { Unavailable } from "./errors.js";
import { LONG_TIMEOUT_MS, raiseFor } from "./http.js";
import { WIRE, read } from "./models.js";
import { lines } from "./sse.js";
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
