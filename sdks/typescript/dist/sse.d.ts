/**
 * A server-sent events parser (the WHATWG `text/event-stream` rules, like `oc`'s): lines in,
 * complete events out, no I/O. It never loses an event split across reads nor invents one from
 * `: ping` comments, and remembers the last `id:` the server gave (sent back as
 * `Last-Event-ID` on reconnect).
 */
/** One server-sent event: its subject, its JSON envelope (names, ids — never a value), its id. */
export interface OsbEvent {
    subject: string;
    data: unknown;
    id?: string;
}
export declare class SseParser {
    lastEventId: string | undefined;
    retryMs: number | undefined;
    private event;
    private data;
    private id;
    line(raw: string): OsbEvent | undefined;
    private dispatch;
}
/** Splits a byte stream into lines (`\n`, `\r\n`), decoding UTF-8 across chunk boundaries. */
export declare function lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string>;
