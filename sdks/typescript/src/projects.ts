/**
 * Projects: the `Projects` resource and the bound `Project` (update, replace, delete, and its
 * secrets). A secret value goes into one `setSecret` request body and nowhere else.
 */

import type { OpenSandbox, ProjectFields } from "./client.js";
import { clientOf } from "./client.js";
import { defined, q } from "./calls.js";
import { Call, Page } from "./http.js";
import { ProjectData, SecretInfo, SecretSet, WIRE, read } from "./models.js";

/** A project bound to a client. */
export class Project implements ProjectData {
  id!: string;
  orgID!: string;
  name!: string;
  template!: string | null;
  cpuCount!: number;
  memoryMB!: number;
  timeoutSec!: number;
  egressAllowlist!: string[];
  runtime!: string;
  createdAt!: string;
  updatedAt!: string;
  readonly #client: OpenSandbox;

  constructor(client: OpenSandbox, data: unknown) {
    this.#client = client;
    Object.assign(this, read<ProjectData>(WIRE.Project, data));
  }

  static create(fields: ProjectFields & { name: string; client?: OpenSandbox }): Promise<Project> {
    const { client, ...rest } = fields;
    return clientOf(client).projects.create(rest);
  }

  static get(reference: string, client?: OpenSandbox): Promise<Project> {
    return clientOf(client).projects.get(reference);
  }

  static list(options: { limit?: number; client?: OpenSandbox } = {}): AsyncGenerator<Project> {
    return clientOf(options.client).projects.list(options);
  }

  #path(tail = ""): string {
    return `/projects/${q(this.id)}${tail}`;
  }

  /** PATCH: fields given change, the rest stay (`egressAllowlist: []` clears it). */
  async update(fields: ProjectFields & { name?: string }): Promise<this> {
    return Object.assign(this, await this.#client.projects.update(this.id, fields));
  }

  /** PUT: the whole record; fields left out take their defaults (the name stays). */
  async replace(fields: ProjectFields & { name?: string }): Promise<this> {
    return Object.assign(this, await this.#client.projects.replace(this.id, fields));
  }

  async refresh(): Promise<this> {
    return Object.assign(this, await this.#client.projects.get(this.id));
  }

  delete(): Promise<void> {
    return this.#client.projects.delete(this.id);
  }

  /** Sets (creates or replaces) a secret: the value goes into this one request and nowhere else. */
  async setSecret(name: string, value: string, options: { allowedHosts?: string[] } = {}): Promise<SecretSet> {
    const body = defined({ value, allowedHosts: options.allowedHosts });
    const call: Call = { method: "PUT", path: this.#path(`/secrets/${q(name)}`), body, idempotent: true, secret: true };
    return read<SecretSet>(WIRE.SecretSet, await this.#client.transport.json(call));
  }

  /** Every secret's name, hosts and version (never values). */
  async listSecrets(): Promise<SecretInfo[]> {
    const out: SecretInfo[] = [];
    for await (const secret of this.#client.transport.pages(this.#path("/secrets"), (data) => read<SecretInfo>(WIRE.Secret, data))) {
      out.push(secret);
    }
    return out;
  }

  async deleteSecret(name: string): Promise<void> {
    await this.#client.transport.json({ method: "DELETE", path: this.#path(`/secrets/${q(name)}`), idempotent: true });
  }
}

export class Projects {
  readonly #client: OpenSandbox;

  constructor(client: OpenSandbox) {
    this.#client = client;
  }

  #project = (data: unknown) => new Project(this.#client, data);

  async create(fields: ProjectFields & { name: string }): Promise<Project> {
    return this.#project(await this.#client.transport.json({ method: "POST", path: "/projects", body: defined({ ...fields }) }));
  }

  async get(reference: string): Promise<Project> {
    return this.#project(await this.#client.transport.json({ method: "GET", path: `/projects/${q(reference)}`, idempotent: true }));
  }

  list(options: { limit?: number } = {}): AsyncGenerator<Project> {
    return this.#client.transport.pages("/projects", this.#project, options.limit);
  }

  listPage(options: { limit?: number; cursor?: string } = {}): Promise<Page<Project>> {
    return this.#client.transport.page("/projects", this.#project, options.limit, options.cursor);
  }

  async update(reference: string, fields: ProjectFields & { name?: string }): Promise<Project> {
    const call: Call = { method: "PATCH", path: `/projects/${q(reference)}`, body: defined({ ...fields }), idempotent: true };
    return this.#project(await this.#client.transport.json(call));
  }

  async replace(reference: string, fields: ProjectFields & { name?: string }): Promise<Project> {
    const call: Call = { method: "PUT", path: `/projects/${q(reference)}`, body: defined({ ...fields }), idempotent: true };
    return this.#project(await this.#client.transport.json(call));
  }

  async delete(reference: string): Promise<void> {
    await this.#client.transport.json({ method: "DELETE", path: `/projects/${q(reference)}`, idempotent: true });
  }
}

