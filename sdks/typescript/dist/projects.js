/**
 * Projects: the `Projects` resource and the bound `Project` (update, replace, delete, and its
 * secrets). A secret value goes into one `setSecret` request body and nowhere else.
 */
import { clientOf } from "./client.js";
import { defined, q } from "./calls.js";
import { WIRE, read } from "./models.js";
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
    runtime;
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
