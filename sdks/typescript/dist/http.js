/**
 * The transport every resource uses: one `fetch` per try, retries with exponential backoff and
 * jitter, typed errors, cursor pages. A call that never reached the server is always retried;
 * an idempotent one (GET, PUT, DELETE, a create carrying an Idempotency-Key) also after a
 * dropped connection, a timeout or a 429/502/503/504 (`Retry-After` honoured). A call carrying
 * a secret value is retried only when it never left: the value is sent once.
 */
import { APIConnectionError, APITimeoutError, errorFor } from "./errors.js";
export const VERSION = "0.1.0";
/** Milliseconds a quick call (get, list, delete, secrets) may take. */
export const QUICK_TIMEOUT_MS = 30_000;
/** Milliseconds a call that boots, restores, snapshots or destroys a sandbox may take. */
export const LONG_TIMEOUT_MS = 300_000;
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
/** The request never reached the server (connection refused, DNS, connect timeout). */
function neverSent(error) {
    const code = error?.cause?.code;
    return ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT", "ECONNRESET_BEFORE_SEND"].includes(code ?? "");
}
/** A signal aborted when either one is (`AbortSignal.any` is not in Node 18). */
function either(one, other) {
    if (!one || !other)
        return one ?? other;
    const controller = new AbortController();
    for (const signal of [one, other]) {
        if (signal.aborted)
            controller.abort(signal.reason);
        else
            signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
    }
    return controller.signal;
}
function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
export class Transport {
    apiUrl;
    maxRetries;
    baseDelayMs = 250;
    maxDelayMs = 8_000;
    #fetch;
    // A private field: never shown by console.log / util.inspect of the client.
    #apiKey;
    constructor(options) {
        this.apiUrl = options.apiUrl;
        this.maxRetries = options.maxRetries;
        this.#fetch = options.fetch;
        this.#apiKey = options.apiKey;
    }
    /** Backoff before try `attempt + 1`. */
    delay(attempt, retryAfter) {
        const seconds = retryAfter ? Number(retryAfter) : NaN;
        if (Number.isFinite(seconds))
            return Math.min(this.maxDelayMs, Math.max(0, seconds * 1000));
        const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
        return ceiling / 2 + (Math.random() * ceiling) / 2;
    }
    url(path, query) {
        const url = new URL(this.apiUrl + "/api" + path);
        for (const [name, value] of Object.entries(query ?? {})) {
            if (value !== undefined)
                url.searchParams.set(name, String(value));
        }
        return url.toString();
    }
    /** Sends one try; the caller owns the response (and its body). */
    async open(call, accept, signal) {
        const headers = {
            "user-agent": `opensandbox-typescript/${VERSION}`,
            accept: "application/json",
            ...call.headers,
        };
        if (this.#apiKey)
            headers["x-api-key"] = this.#apiKey;
        if (accept)
            headers.accept = accept;
        let body;
        if (call.body !== undefined) {
            headers["content-type"] = "application/json";
            body = JSON.stringify(call.body);
        }
        // Streams (an `accept` of their own) run until the caller stops them; calls time out.
        const timeout = accept ? undefined : AbortSignal.timeout(call.timeoutMs ?? QUICK_TIMEOUT_MS);
        return this.#fetch(this.url(call.path, call.query), {
            method: call.method,
            headers,
            body,
            signal: either(timeout, signal),
        });
    }
    /** Sends `call` with its retries; returns a successful response or throws a typed error. */
    async send(call) {
        for (let attempt = 0;; attempt++) {
            let response;
            let failure;
            try {
                response = await this.open(call);
            }
            catch (error) {
                failure = error;
            }
            const retry = attempt < this.maxRetries &&
                (failure !== undefined
                    ? neverSent(failure) || (Boolean(call.idempotent) && !call.secret)
                    : Boolean(call.idempotent) && !call.secret && RETRY_STATUSES.has(response.status));
            if (retry) {
                const retryAfter = response?.headers.get("retry-after");
                await response?.body?.cancel().catch(() => undefined);
                await sleep(this.delay(attempt, retryAfter));
                continue;
            }
            if (failure !== undefined)
                throw this.transportError(call, failure);
            await raiseFor(response);
            return response;
        }
    }
    /** The JSON body of a successful call (undefined for 204). */
    async json(call) {
        const response = await this.send(call);
        const text = await response.text();
        return (text ? JSON.parse(text) : undefined);
    }
    async page(path, parse, limit, cursor) {
        const response = await this.send({ method: "GET", path, query: { limit, cursor }, idempotent: true });
        const items = (await response.json()).map(parse);
        return { items, nextCursor: response.headers.get("x-next-cursor") ?? undefined };
    }
    /** Every item of a list, following `X-Next-Cursor`. */
    async *pages(path, parse, limit) {
        let cursor;
        do {
            const page = await this.page(path, parse, limit, cursor);
            yield* page.items;
            cursor = page.nextCursor;
        } while (cursor !== undefined);
    }
    transportError(call, error) {
        const what = `${call.method} ${call.path}`;
        const name = error?.name;
        if (name === "TimeoutError" || name === "AbortError") {
            return new APITimeoutError(`the API at ${this.apiUrl} did not answer ${what} in time; it may still complete on the server`);
        }
        const code = error?.cause?.code ?? name ?? "error";
        const wrapped = new APIConnectionError(`cannot reach the API at ${this.apiUrl} for ${what}: ${code}`);
        if (!call.secret)
            wrapped.cause = error;
        return wrapped;
    }
}
/** Throws the typed error of a refusal. */
export async function raiseFor(response) {
    if (response.status < 400)
        return;
    let body = {};
    try {
        body = (await response.json());
    }
    catch {
        // Not JSON: the status says enough.
    }
    throw errorFor(response.status, body.code, body.error ?? `the API answered HTTP ${response.status}`);
}
