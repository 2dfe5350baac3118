/**
 * `OpenSandbox` (connection, retries, typed errors, events) and its resources: projects,
 * sandboxes, snapshots, returning bound objects (`Project`, `Sandbox`, `Checkpoint`,
 * `Snapshot`) whose methods act on the API. Lists follow the cursor (`list()`, an async
 * iterable) or go a page at a time (`listPage()`); exec streams and events are async iterables.
 *
 * A secret value passes through `Project.setSecret` into one request body and nowhere else.
 */
import { resolveConnection } from "./config.js";
import { APIError } from "./errors.js";
import { Transport, raiseFor } from "./http.js";
import { Projects } from "./projects.js";
import { Sandboxes, Snapshots } from "./sandboxes.js";
import { SseParser, lines } from "./sse.js";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A connection to the API. */
export class OpenSandbox {
    static #default;
    transport;
    projects;
    sandboxes;
    snapshots;
    constructor(options = {}) {
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
    static default() {
        OpenSandbox.#default ??= new OpenSandbox();
        return OpenSandbox.#default;
    }
    get apiUrl() {
        return this.transport.apiUrl;
    }
    /**
     * Your org's events as they happen. A dropped stream is reopened with backoff, sending
     * `Last-Event-ID` when the server gave event ids; refusals (400, 401, 403) are thrown.
     */
    async *events(options = {}) {
        const parser = new SseParser();
        parser.lastEventId = options.lastEventId;
        const reconnect = options.reconnect ?? true;
        for (let attempt = 0;;) {
            const headers = {};
            if (parser.lastEventId !== undefined)
                headers["last-event-id"] = parser.lastEventId;
            const call = { method: "GET", path: "/events", query: { subject: options.subject }, headers };
            let response;
            try {
                response = await this.transport.open(call, "text/event-stream", options.signal);
                if (response.status >= 400 && (response.status < 500 || !reconnect))
                    await raiseFor(response);
                if (response.ok && response.body) {
                    attempt = 0;
                    options.onOpen?.();
                    for await (const line of lines(response.body)) {
                        const event = parser.line(line);
                        if (event)
                            yield event;
                    }
                }
                else {
                    await response.body?.cancel().catch(() => undefined);
                }
            }
            catch (error) {
                if (error instanceof APIError || options.signal?.aborted)
                    throw error;
                if (!reconnect)
                    throw this.transport.transportError(call, error);
            }
            if (!reconnect || options.signal?.aborted)
                return;
            await sleep(Math.max(this.transport.delay(attempt), parser.retryMs ?? 0));
            attempt = Math.min(attempt + 1, 6);
        }
    }
}
/** The shared default client unless one is given. */
export const clientOf = (client) => client ?? OpenSandbox.default();
