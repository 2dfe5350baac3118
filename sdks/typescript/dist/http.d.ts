/**
 * The transport every resource uses: one `fetch` per try, retries with exponential backoff and
 * jitter, typed errors, cursor pages. A call that never reached the server is always retried;
 * an idempotent one (GET, PUT, DELETE, a create carrying an Idempotency-Key) also after a
 * dropped connection, a timeout or a 429/502/503/504 (`Retry-After` honoured). A call carrying
 * a secret value is retried only when it never left: the value is sent once.
 */
export declare const VERSION = "0.1.0";
/** Milliseconds a quick call (get, list, delete, secrets) may take. */
export declare const QUICK_TIMEOUT_MS = 30000;
/** Milliseconds a call that boots, restores, snapshots or destroys a sandbox may take. */
export declare const LONG_TIMEOUT_MS = 300000;
/** One API call. */
export interface Call {
    method: string;
    /** The path under `/api`. */
    path: string;
    body?: unknown;
    query?: Record<string, string | number | undefined>;
    timeoutMs?: number;
    idempotent?: boolean;
    /** The body holds a secret value: retry only when nothing was sent; keep no `cause`. */
    secret?: boolean;
    headers?: Record<string, string>;
}
/** A page of a list: `items` and, when more follow, `nextCursor`. */
export interface Page<T> {
    items: T[];
    nextCursor: string | undefined;
}
export interface TransportOptions {
    apiUrl: string;
    apiKey: string | undefined;
    maxRetries: number;
    fetch: typeof fetch;
}
export declare class Transport {
    #private;
    readonly apiUrl: string;
    readonly maxRetries: number;
    baseDelayMs: number;
    maxDelayMs: number;
    constructor(options: TransportOptions);
    /** Backoff before try `attempt + 1`. */
    delay(attempt: number, retryAfter?: string | null): number;
    url(path: string, query?: Call["query"]): string;
    /** Sends one try; the caller owns the response (and its body). */
    open(call: Call, accept?: string, signal?: AbortSignal): Promise<Response>;
    /** Sends `call` with its retries; returns a successful response or throws a typed error. */
    send(call: Call): Promise<Response>;
    /** The JSON body of a successful call (undefined for 204). */
    json<T>(call: Call): Promise<T>;
    page<T>(path: string, parse: (data: any) => T, limit?: number, cursor?: string): Promise<Page<T>>;
    /** Every item of a list, following `X-Next-Cursor`. */
    pages<T>(path: string, parse: (data: any) => T, limit?: number): AsyncGenerator<T>;
    transportError(call: Call, error: unknown): Error;
}
/** Throws the typed error of a refusal. */
export declare function raiseFor(response: Response): Promise<void>;
