/**
 * Request-building helpers the resources share: path escaping, optional fields, exec bodies
 * and timeouts, and the create call with its fresh Idempotency-Key.
 */
import { randomUUID } from "node:crypto";
import { LONG_TIMEOUT_MS } from "./http.js";
export const q = encodeURIComponent;
export const idOf = (value) => (typeof value === "object" ? value.id : value);
export const defined = (body) => Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
export function execBody(cmd, options = {}) {
    return defined({
        cmd: typeof cmd === "string" ? ["sh", "-c", cmd] : cmd,
        env: options.env,
        cwd: options.cwd,
        timeoutSec: options.timeoutSec,
    });
}
export const execTimeout = (options = {}) => ((options.timeoutSec ?? 60) + 30) * 1000;
export function createCall(path, body) {
    // A fresh Idempotency-Key per create: a retried create returns the first sandbox.
    return {
        method: "POST", path, body, timeoutMs: LONG_TIMEOUT_MS, idempotent: true,
        headers: { "idempotency-key": `ts-${randomUUID()}` },
    };
}
