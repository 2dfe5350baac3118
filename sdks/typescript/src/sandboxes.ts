/**
 * Sandboxes and what they hold: the `Sandboxes` and `Snapshots` resources and the bound
 * `Sandbox` (exec, streaming exec, checkpoints, restore, snapshot, kill), `Checkpoint`,
 * `Snapshot` and `ExecStream`.
 */

import type { ExecOptions, ForkFields, OpenSandbox, SandboxFields } from "./client.js";
import { clientOf } from "./client.js";
import { createCall, defined, execBody, execTimeout, idOf, q } from "./calls.js";
import { Unavailable } from "./errors.js";
import { Call, LONG_TIMEOUT_MS, Page, raiseFor } from "./http.js";
import { CheckpointData, ExecChunk, ExecResult, SandboxData, SnapshotData, WIRE, read } from "./models.js";
import { lines } from "./sse.js";

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
