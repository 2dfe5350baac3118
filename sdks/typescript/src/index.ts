/**
 * OpenSandbox for TypeScript: run untrusted code in sandboxes that use API keys without seeing
 * them. Zero runtime dependencies (Node ≥ 18 `fetch`).
 *
 * ```ts
 * import { Project, Sandbox } from "opensandbox";
 * const project = await Project.create({ name: "demo", egressAllowlist: ["api.anthropic.com"] });
 * await project.setSecret("ANTHROPIC_API_KEY", key, { allowedHosts: ["api.anthropic.com"] });
 * const sandbox = await Sandbox.create({ project });
 * console.log((await sandbox.exec("echo $ANTHROPIC_API_KEY")).stdout); // osb_sealed_…
 * ```
 */

export { OpenSandbox } from "./client.js";
export { Project, Projects } from "./projects.js";
export { Checkpoint, ExecStream, Sandbox, Sandboxes, Snapshot, Snapshots } from "./sandboxes.js";
export type { ClientOptions, EventOptions, ExecOptions, ForkFields, ProjectFields, SandboxFields } from "./client.js";
export { configPath, parseConfig, resolveConnection } from "./config.js";
export type { Connection } from "./config.js";
export {
  APIConnectionError, APIError, APITimeoutError, ConfigError, Conflict, Forbidden, InternalError,
  InvalidInput, NotFound, OpenSandboxError, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
} from "./errors.js";
export { VERSION } from "./http.js";
export type { Page } from "./http.js";
export { WIRE } from "./models.js";
export type {
  CheckpointData, ExecChunk, ExecResult, ProjectData, SandboxData, SecretInfo, SecretSet, SnapshotData,
} from "./models.js";
export { SseParser } from "./sse.js";
export type { OsbEvent } from "./sse.js";
