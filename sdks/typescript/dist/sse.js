/**
 * A server-sent events parser (the WHATWG `text/event-stream` rules, like `oc`'s): lines in,
 * complete events out, no I/O. It never loses an event split across reads nor invents one from
 * `: ping` comments, and remembers the last `id:` the server gave (sent back as
 * `Last-Event-ID` on reconnect).
 */
export class SseParser {
    lastEventId;
    retryMs;
    event = "";
    data = [];
    id;
    line(raw) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line === "")
            return this.dispatch();
        if (line.startsWith(":"))
            return undefined;
        const colon = line.indexOf(":");
        const name = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" "))
            value = value.slice(1);
        if (name === "event")
            this.event = value;
        else if (name === "data")
            this.data.push(value);
        else if (name === "id" && !value.includes("\0"))
            this.id = value;
        else if (name === "retry" && /^\d+$/.test(value))
            this.retryMs = Number(value);
        return undefined;
    }
    dispatch() {
        if (this.id !== undefined)
            this.lastEventId = this.id;
        this.id = undefined;
        const subject = this.event || "message";
        this.event = "";
        if (this.data.length === 0)
            return undefined;
        const text = this.data.join("\n");
        this.data = [];
        let data = text;
        try {
            data = JSON.parse(text);
        }
        catch {
            // Not JSON: keep the text.
        }
        const event = { subject, data };
        if (this.lastEventId !== undefined)
            event.id = this.lastEventId;
        return event;
    }
}
/** Splits a byte stream into lines (`\n`, `\r\n`), decoding UTF-8 across chunk boundaries. */
export async function* lines(body) {
    const decoder = new TextDecoder();
    const reader = body.getReader();
    let buffer = "";
    try {
        for (;;) {
            const { value, done } = await reader.read();
            if (done)
                break;
            buffer += decoder.decode(value, { stream: true });
            let newline = buffer.indexOf("\n");
            while (newline !== -1) {
                yield buffer.slice(0, newline);
                buffer = buffer.slice(newline + 1);
                newline = buffer.indexOf("\n");
            }
        }
        buffer += decoder.decode();
        if (buffer)
            yield buffer;
    }
    finally {
        await reader.cancel().catch(() => undefined);
    }
}
