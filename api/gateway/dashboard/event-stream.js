// Following GET /api/events. EventSource cannot send headers, so this reads the server-sent
// events with fetch() and a streaming body reader, with the key in the X-API-Key header (never
// in the URL). The first connection replays from `since` (a time); every reconnect resumes
// with Last-Event-ID after the last event seen, so nothing is missed or repeated.

import { authHeaders } from './api.js';

/** Parses `text/event-stream` text fed in arbitrary pieces into frames. */
export class SseParser {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.id = null;
    this.event = '';
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    // The last piece may be an incomplete line (a lone \r at the end too: wait for more).
    this.buffer = lines.pop();
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0 || this.event) {
        this.onFrame({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') this.id = value;
    else if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}

/**
 * Follows the stream until `signal` aborts. Callbacks: onFrame({id, event, data}),
 * onStatus(state, detail) with state 'connecting' | 'live' | 'reconnecting' | 'stopped'.
 * Returns nothing; errors become status updates and reconnects with backoff.
 */
export async function followEvents({ since, onFrame, onStatus, onRefused, signal }) {
  let lastEventId = null;
  let delay = 1000;
  while (!signal.aborted) {
    onStatus(lastEventId ? 'reconnecting' : 'connecting');
    const headers = authHeaders({ Accept: 'text/event-stream' });
    let path = '/api/events';
    if (lastEventId) headers['Last-Event-ID'] = lastEventId;
    else if (since) path += '?since=' + encodeURIComponent(since);
    try {
      const response = await fetch(path, {
        headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal,
      });
      if (response.status === 401 || response.status === 403) {
        onRefused(response.status);
        return;
      }
      if (response.status === 400 && lastEventId) {
        // Our id means nothing to this server any more: follow live from now.
        lastEventId = null;
        since = new Date().toISOString();
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`the event stream answered ${response.status}`);
      onStatus('live');
      delay = 1000;
      const parser = new SseParser((frame) => {
        if (frame.id) lastEventId = frame.id;
        onFrame(frame);
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch (error) {
      if (signal.aborted) break;
      onStatus('reconnecting', error.message);
    }
    if (signal.aborted) break;
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 15000);
  }
  onStatus('stopped');
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
