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
import { Call, LONG_TIMEOUT_MS, Page, Transport, raiseFor } from "./http.js";
import {
  CheckpointData, ExecChunk, ExecResult, ProjectData, SandboxData, SecretInfo, SecretSet,
  SnapshotData, WIRE, read,
} from "./models.js";
import { OsbEvent, SseParser, lines } from "./sse.js";

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
  project?: string | { id: string };
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
  project?: string | { id: string };
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

const q = encodeURIComponent;
const idOf = (value: string | { id: string } | undefined) => (typeof value === "object" ? value.id : value);
const defined = (body: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));

function execBody(cmd: string | string[], options: ExecOptions = {}) {
  return defined({
    cmd: typeof cmd === "string" ? ["sh", "-c", cmd] : cmd,
    env: options.env,
    cwd: options.cwd,
    timeoutSec: options.timeoutSec,
  });
}

const execTimeout = (options: ExecOptions = {}) => ((options.timeoutSec ?? 60) + 30) * 1000;

function createCall(path: string, body: unknown): Call {
  // A fresh Idempotency-Key per create: a retried create returns the first sandbox.
  return {
    method: "POST", path, body, timeoutMs: LONG_TIMEOUT_MS, idempotent: true,
    headers: { "idempotency-key": `ts-${randomUUID()}` },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connection to the API. */
export class OpenSandbox {
  static #default: OpenSandbox | undefined;
  readonly transport: Transport;
  readonly projects: Projects;
  readonly sandboxes: Sandboxes;
  readonly snapshots: Snapshots;

  constructor(options: ClientOptions = {}) {
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
  static default(): OpenSandbox {
    OpenSandbox.#default ??= new OpenSandbox();
    return OpenSandbox.#default;
  }

  get apiUrl(): string {
    return this.transport.apiUrl;
  }

  /**
   * Your org's events as they happen. A dropped stream is reopened with backoff, sending
   * `Last-Event-ID` when the server gave event ids; refusals (400, 401, 403) are thrown.
   */
  async *events(options: EventOptions = {}): AsyncGenerator<OsbEvent> {
    const parser = new SseParser();
    parser.lastEventId = options.lastEventId;
    const reconnect = options.reconnect ?? true;
    for (let attempt = 0; ; ) {
      const headers: Record<string, string> = {};
      if (parser.lastEventId !== undefined) headers["last-event-id"] = parser.lastEventId;
      const call: Call = { method: "GET", path: "/events", query: { subject: options.subject }, headers };
      let response: Response | undefined;
      try {
        response = await this.transport.open(call, "text/event-stream", options.signal);
        if (response.status >= 400 && (response.status < 500 || !reconnect)) await raiseFor(response);
        if (response.ok && response.body) {
          attempt = 0;
          options.onOpen?.();
          for await (const line of lines(response.body)) {
            const event = parser.line(line);
            if (event) yield event;
          }
        } else {
          await response.body?.cancel().catch(() => undefined);
        }
      } catch (error) {
        if (error instanceof APIError || options.signal?.aborted) throw error;
        if (!reconnect) throw this.transport.transportError(call, error);
      }
      if (!reconnect || options.signal?.aborted) return;
      await sleep(Math.max(this.transport.delay(attempt), parser.retryMs ?? 0));
      attempt = Math.min(attempt + 1, 6);
    }
  }
}

const clientOf = (client?: OpenSandbox) => client ?? OpenSandbox.default();

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

/** A running command's output as it happens; afterwards `exitCode` and `timedOut` are set. */
export class ExecStream implements AsyncIterable<ExecChunk> {
  exitCode: number | undefined;
  timedOut: boolean | undefined;
  readonly #client: OpenSandbox;
  readonly #call: Call;

  constructor(client: OpenSandbox, call: Call) {
    this.#client = client;
    this.#call = call;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ExecChunk> {
    const response = await this.#client.transport.open(this.#call, "application/x-ndjson");
    await raiseFor(response);
    for await (const line of lines(response.body!)) {
      if (!line.trim()) continue;
      const item = JSON.parse(line) as Record<string, unknown>;
      if (typeof item.stdout === "string") yield { stream: "stdout", data: Buffer.from(item.stdout, "base64") };
      else if (typeof item.stderr === "string") yield { stream: "stderr", data: Buffer.from(item.stderr, "base64") };
      else if (typeof item.exitCode === "number") {
        this.exitCode = item.exitCode;
        this.timedOut = Boolean(item.timedOut);
      } else if (typeof item.error === "string") {
        throw new Unavailable(item.error, 503, String(item.code ?? "unavailable"));
      }
    }
    if (this.exitCode === undefined) throw new Unavailable("the output stream ended without an exit code", 503, "unavailable");
  }

  /** Drains the stream; returns how the command ended. */
  async wait(): Promise<{ exitCode: number; timedOut: boolean }> {
    for await (const _ of this) void _;
    return { exitCode: this.exitCode!, timedOut: this.timedOut! };
  }
}

/** A sandbox bound to a client. */
export class Sandbox implements SandboxData {
  id!: string;
  status!: SandboxData["status"];
  workerID!: string | null;
  project!: string | null;
  projectID!: string | null;
  template!: string;
  cpuCount!: number;
  memoryMB!: number;
  timeoutSec!: number;
  runtime!: string | null;
  egress!: string | null;
  warning!: string | null;
  failureReason!: string | null;
  metadata!: Record<string, string>;
  createdAt!: string;
  updatedAt!: string;
  readonly #client: OpenSandbox;

  constructor(client: OpenSandbox, data: unknown) {
    this.#client = client;
    Object.assign(this, read<SandboxData>(WIRE.Sandbox, data));
  }

  /** Creates a sandbox (with an Idempotency-Key, so a retried create is safe). */
  static create(fields: SandboxFields & { client?: OpenSandbox } = {}): Promise<Sandbox> {
    const { client, ...rest } = fields;
    return clientOf(client).sandboxes.create(rest);
  }

  static get(id: string, client?: OpenSandbox): Promise<Sandbox> {
    return clientOf(client).sandboxes.get(id);
  }

  static list(options: { limit?: number; client?: OpenSandbox } = {}): AsyncGenerator<Sandbox> {
    return clientOf(options.client).sandboxes.list(options);
  }

  /** A new sandbox from a checkpoint, with fresh sealed tokens. */
  static fork(checkpoint: string | { id: string }, fields: ForkFields & { client?: OpenSandbox } = {}): Promise<Sandbox> {
    const { client, ...rest } = fields;
    return clientOf(client).sandboxes.fork(checkpoint, rest);
  }

  #path(tail = ""): string {
    return `/sandboxes/${q(this.id)}${tail}`;
  }

  #update(data: unknown): this {
    return Object.assign(this, read<SandboxData>(WIRE.Sandbox, data));
  }

  async refresh(): Promise<this> {
    return this.#update(await this.#client.transport.json({ method: "GET", path: this.#path(), idempotent: true }));
  }

  /** Runs a command to its end (a string runs under `sh -c`); output is bounded. */
  async exec(cmd: string | string[], options: ExecOptions = {}): Promise<ExecResult> {
    const call: Call = { method: "POST", path: this.#path("/exec"), body: execBody(cmd, options), timeoutMs: execTimeout(options) };
    return read<ExecResult>(WIRE.ExecResult, await this.#client.transport.json(call));
  }

  /** Runs a command and yields its output as it is written (unbounded). */
  execStream(cmd: string | string[], options: ExecOptions = {}): ExecStream {
    const call: Call = { method: "POST", path: this.#path("/exec/stream"), body: execBody(cmd, options), timeoutMs: execTimeout(options) };
    return new ExecStream(this.#client, call);
  }

  async checkpoint(): Promise<Checkpoint> {
    const data = await this.#client.transport.json({ method: "POST", path: this.#path("/checkpoints"), timeoutMs: LONG_TIMEOUT_MS });
    return new Checkpoint(this.#client, data);
  }

  /** This sandbox's checkpoints, newest first. */
  checkpoints(options: { limit?: number } = {}): AsyncGenerator<Checkpoint> {
    return this.#client.transport.pages(this.#path("/checkpoints"), (data) => new Checkpoint(this.#client, data), options.limit);
  }

  /** Back to a checkpoint of this sandbox, in place: same tokens, current secret values. */
  async restore(checkpoint: string | { id: string }): Promise<this> {
    const call: Call = { method: "POST", path: this.#path("/restore"), body: { checkpointID: idOf(checkpoint) }, timeoutMs: LONG_TIMEOUT_MS };
    return this.#update(await this.#client.transport.json(call));
  }

  async deleteCheckpoint(checkpoint: string | { id: string }): Promise<void> {
    const path = this.#path(`/checkpoints/${q(idOf(checkpoint)!)}`);
    await this.#client.transport.json({ method: "DELETE", path, timeoutMs: LONG_TIMEOUT_MS, idempotent: true });
  }

  /** Registers this sandbox's current state as a golden snapshot. */
  snapshot(name: string): Promise<Snapshot> {
    return this.#client.snapshots.create(name, this);
  }

  /** Destroys the sandbox (idempotent). */
  async kill(): Promise<this> {
    return this.#update(await this.#client.transport.json({ method: "DELETE", path: this.#path(), timeoutMs: LONG_TIMEOUT_MS, idempotent: true }));
  }
}

export class Sandboxes {
  readonly #client: OpenSandbox;

  constructor(client: OpenSandbox) {
    this.#client = client;
  }

  #sandbox = (data: unknown) => new Sandbox(this.#client, data);

  async create(fields: SandboxFields = {}): Promise<Sandbox> {
    const body = defined({ ...fields, project: idOf(fields.project) });
    return this.#sandbox(await this.#client.transport.json(createCall("/sandboxes", body)));
  }

  async fork(checkpoint: string | { id: string }, fields: ForkFields = {}): Promise<Sandbox> {
    const body = defined({ ...fields, project: idOf(fields.project) });
    return this.#sandbox(await this.#client.transport.json(createCall(`/sandboxes/from-checkpoint/${q(idOf(checkpoint)!)}`, body)));
  }

  async get(id: string): Promise<Sandbox> {
    return this.#sandbox(await this.#client.transport.json({ method: "GET", path: `/sandboxes/${q(id)}`, idempotent: true }));
  }

  /** Your sandboxes, newest first, every page. */
  list(options: { limit?: number } = {}): AsyncGenerator<Sandbox> {
    return this.#client.transport.pages("/sandboxes", this.#sandbox, options.limit);
  }

  listPage(options: { limit?: number; cursor?: string } = {}): Promise<Page<Sandbox>> {
    return this.#client.transport.page("/sandboxes", this.#sandbox, options.limit, options.cursor);
  }
}

/** A checkpoint bound to a client. */
export class Checkpoint implements CheckpointData {
  id!: string;
  sandboxID!: string | null;
  workerID!: string;
  createdAt!: string;
  readonly #client: OpenSandbox;

  constructor(client: OpenSandbox, data: unknown) {
    this.#client = client;
    Object.assign(this, read<CheckpointData>(WIRE.Checkpoint, data));
  }

  fork(fields: ForkFields = {}): Promise<Sandbox> {
    return this.#client.sandboxes.fork(this, fields);
  }

  async delete(): Promise<void> {
    if (!this.sandboxID) throw new Error("this checkpoint's sandbox is unknown; delete it through its snapshot");
    const path = `/sandboxes/${q(this.sandboxID)}/checkpoints/${q(this.id)}`;
    await this.#client.transport.json({ method: "DELETE", path, timeoutMs: LONG_TIMEOUT_MS, idempotent: true });
  }
}

/** A golden snapshot bound to a client. */
export class Snapshot implements SnapshotData {
  name!: string;
  checkpointID!: string | null;
  sandboxID!: string | null;
  workerID!: string | null;
  createdAt!: string;
  readonly #client: OpenSandbox;

  constructor(client: OpenSandbox, data: unknown) {
    this.#client = client;
    Object.assign(this, read<SnapshotData>(WIRE.Snapshot, data));
  }

  /** Deletes the snapshot and the checkpoint behind it. */
  delete(): Promise<void> {
    return this.#client.snapshots.delete(this.name);
  }
}

export class Snapshots {
  readonly #client: OpenSandbox;

  constructor(client: OpenSandbox) {
    this.#client = client;
  }

  #snapshot = (data: unknown) => new Snapshot(this.#client, data);

  async create(name: string, sandbox: string | { id: string }): Promise<Snapshot> {
    const call: Call = { method: "POST", path: "/snapshots", body: { name, sandboxID: idOf(sandbox) }, timeoutMs: LONG_TIMEOUT_MS };
    return this.#snapshot(await this.#client.transport.json(call));
  }

  list(options: { limit?: number } = {}): AsyncGenerator<Snapshot> {
    return this.#client.transport.pages("/snapshots", this.#snapshot, options.limit);
  }

  listPage(options: { limit?: number; cursor?: string } = {}): Promise<Page<Snapshot>> {
    return this.#client.transport.page("/snapshots", this.#snapshot, options.limit, options.cursor);
  }

  async delete(name: string): Promise<void> {
    await this.#client.transport.json({ method: "DELETE", path: `/snapshots/${q(name)}`, timeoutMs: LONG_TIMEOUT_MS, idempotent: true });
  }
}
