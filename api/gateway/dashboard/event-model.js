// What the dashboard knows from the event stream: recent events (bounded), per-minute counts of
// requests that used a secret and of refusals, when each sandbox last used each secret, and
// refusals grouped by host. Events come from GET /api/events (names, ids, hosts — never a
// value or a token); their text fields are attacker-influenced and are only ever rendered as
// text.

const KEEP_EVENTS = 1000;
const KEEP_MINUTES = 24 * 60;
const LIFECYCLE = new Set(['created', 'destroyed', 'failed', 'worker_lost', 'checkpointed',
  'restored', 'snapshotted', 'started', 'stopped']);

/** The dashboard's filter category of an event. */
export function categoryOf(event) {
  if (event.family === 'saga') return 'saga';
  if (event.family === 'project') return 'project';
  if (event.what === 'secret_used') return 'secret_used';
  if (event.what === 'egress_blocked') return 'egress_blocked';
  if (LIFECYCLE.has(event.what)) return 'lifecycle';
  return 'other';
}

/** One SSE frame as a dashboard event, or null when it is not an event of ours. */
export function parseFrame(frame) {
  let envelope;
  try {
    envelope = JSON.parse(frame.data);
  } catch {
    return null;
  }
  const tokens = frame.event.split('.');
  if (tokens[0] !== 'osb' || tokens.length < 4) return null;
  const payload = envelope?.payload ?? {};
  const at = new Date(envelope?.occurredAt ?? Date.now());
  const event = {
    id: frame.id,
    subject: frame.event,
    family: tokens[1],
    what: tokens[tokens.length - 1],
    kind: String(envelope?.kind ?? ''),
    at: Number.isNaN(at.getTime()) ? new Date() : at,
    payload,
    sandboxId: null,
    projectId: null,
    sagaId: null,
    step: null,
  };
  if (event.family === 'sandbox') event.sandboxId = tokens[2];
  if (event.family === 'project') event.projectId = tokens[2];
  if (event.family === 'saga') {
    event.sagaId = tokens[2];
    event.step = tokens[3];
    event.sandboxId = typeof payload.sandboxID === 'string' ? payload.sandboxID : null;
  }
  event.category = categoryOf(event);
  return event;
}

/** Whether a refusal is about the project allowlist (so allowing the host would help). */
export function isAllowlistRefusal(event) {
  if (event.kind === 'resolver.egress_blocked') return true;
  return event.payload?.code === 'host_not_allowed';
}

/** A host name the allowlist could take (letters, digits, dots, dashes). */
export function plausibleHost(host) {
  return typeof host === 'string' && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)
    && host.length <= 253;
}

export class EventModel {
  constructor() {
    this.events = [];
    this.total = 0;
    this.minutes = new Map();
    this.lastUsed = new Map();
    this.refusals = new Map();
    this.notices = [];
    this.listeners = new Set();
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(event) {
    for (const listener of this.listeners) listener(event);
  }

  /** A truncation notice from the server: some history is gone. */
  notice(detail) {
    this.notices.push({ at: new Date(), detail: String(detail ?? '') });
    if (this.notices.length > 10) this.notices.shift();
    this.notify(null);
  }

  add(event) {
    this.total += 1;
    this.events.push(event);
    if (this.events.length > KEEP_EVENTS) this.events.shift();
    if (event.category === 'secret_used' || event.category === 'egress_blocked') {
      const minute = Math.floor(event.at.getTime() / 60000);
      const bucket = this.minutes.get(minute) ?? { requests: 0, refusals: 0 };
      if (event.category === 'secret_used') bucket.requests += 1;
      else bucket.refusals += 1;
      this.minutes.set(minute, bucket);
      const oldest = minute - KEEP_MINUTES;
      for (const key of this.minutes.keys()) if (key < oldest) this.minutes.delete(key);
    }
    if (event.category === 'secret_used') this.recordUse(event);
    if (event.category === 'egress_blocked') this.recordRefusal(event);
    this.notify(event);
  }

  recordUse(event) {
    const names = Array.isArray(event.payload.secret_names) ? event.payload.secret_names : [];
    const uses = this.lastUsed.get(event.sandboxId) ?? new Map();
    for (const name of names) {
      const known = uses.get(String(name));
      if (!known || known < event.at) uses.set(String(name), event.at);
    }
    this.lastUsed.set(event.sandboxId, uses);
  }

  recordRefusal(event) {
    const host = typeof event.payload.host === 'string' ? event.payload.host : '(no host)';
    const group = this.refusals.get(host) ?? {
      host, count: 0, first: event.at, last: event.at, sandboxes: new Set(),
      codes: new Set(), reasons: [], paths: [], allowable: false,
    };
    group.count += 1;
    if (event.at > group.last) group.last = event.at;
    if (event.at < group.first) group.first = event.at;
    group.sandboxes.add(event.sandboxId);
    const via = event.payload.via ? `resolver (${event.payload.via})` : 'refused';
    group.codes.add(String(event.payload.code ?? via));
    group.allowable = group.allowable || isAllowlistRefusal(event);
    remember(group.reasons, event.payload.reason, 3);
    const method = event.payload.method ? String(event.payload.method) + ' ' : '';
    if (event.payload.path) remember(group.paths, method + String(event.payload.path), 5);
    this.refusals.set(host, group);
  }

  /** Per-minute `{requests, refusals}` for the last `minutes` minutes, oldest first. */
  perMinute(minutes, now = new Date()) {
    const current = Math.floor(now.getTime() / 60000);
    const out = [];
    for (let minute = current - minutes + 1; minute <= current; minute++) {
      const bucket = this.minutes.get(minute) ?? { requests: 0, refusals: 0 };
      out.push({ minute: new Date(minute * 60000), ...bucket });
    }
    return out;
  }

  /** When any sandbox in `sandboxIds` last used secret `name`. */
  lastUsedOf(name, sandboxIds) {
    let last = null;
    for (const id of sandboxIds) {
      const at = this.lastUsed.get(id)?.get(name);
      if (at && (!last || at > last)) last = at;
    }
    return last;
  }
}

function remember(list, value, limit) {
  if (value === undefined || value === null) return;
  const text = String(value);
  if (list.includes(text)) return;
  list.push(text);
  if (list.length > limit) list.shift();
}
