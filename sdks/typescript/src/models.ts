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
export const WIRE = {
  Project: {
    id: "id", orgID: "orgID", name: "name", template: "template", cpuCount: "cpuCount",
    memoryMB: "memoryMB", timeoutSec: "timeoutSec", egressAllowlist: "egressAllowlist", runtime: "runtime",
    createdAt: "createdAt", updatedAt: "updatedAt",
  },
  Secret: {
    name: "name", allowedHosts: "allowedHosts", inheritsProjectAllowlist: "inheritsProjectAllowlist",
    version: "version", createdAt: "createdAt", updatedAt: "updatedAt",
  },
  SecretSet: { name: "name", status: "status", version: "version", refreshed: "refreshed" },
  Sandbox: {
    id: "sandboxID", status: "status", workerID: "workerID", project: "project", projectID: "projectID",
    template: "template", cpuCount: "cpuCount", memoryMB: "memoryMB", timeoutSec: "timeoutSec",
    runtime: "runtime", egress: "egress", warning: "warning", failureReason: "failureReason",
    metadata: "metadata", createdAt: "createdAt", updatedAt: "updatedAt",
  },
  Checkpoint: { id: "checkpointID", sandboxID: "sandboxID", workerID: "workerID", createdAt: "createdAt" },
  Snapshot: {
    name: "name", checkpointID: "checkpointID", sandboxID: "sandboxID", workerID: "workerID",
    createdAt: "createdAt",
  },
  ExecResult: {
    exitCode: "exitCode", stdout: "stdout", stderr: "stderr", stdoutTruncated: "stdoutTruncated",
    stderrTruncated: "stderrTruncated", timedOut: "timedOut",
  },
} as const;

/** Reads `data` into a model with the given wire map. */
export function read<T>(wire: Record<string, string>, data: any): T {
  const out: Record<string, unknown> = {};
  for (const [field, name] of Object.entries(wire)) out[field] = data?.[name] ?? null;
  return out as T;
}
