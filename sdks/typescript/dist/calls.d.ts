/**
 * Request-building helpers the resources share: path escaping, optional fields, exec bodies
 * and timeouts, and the create call with its fresh Idempotency-Key.
 */
import { Call } from "./http.js";
import type { ExecOptions } from "./client.js";
export declare const q: typeof encodeURIComponent;
export declare const idOf: (value: string | {
    id: string;
} | undefined) => string | undefined;
export declare const defined: (body: Record<string, unknown>) => {
    [k: string]: unknown;
};
export declare function execBody(cmd: string | string[], options?: ExecOptions): {
    [k: string]: unknown;
};
export declare const execTimeout: (options?: ExecOptions) => number;
export declare function createCall(path: string, body: unknown): Call;
