// Formatting for people: relative ages, clock times, short ids.

export function ago(date, now = new Date()) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return '—';
  const seconds = Math.max(0, Math.round((now - date) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours}h ago`;
  return `${Math.round(hours / 24)}d ago`;
}

export function age(date, now = new Date()) {
  const text = ago(date, now);
  return text.endsWith(' ago') ? text.slice(0, -4) : text;
}

export function clock(date) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return '—';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

/** `sbx_1a2b3c4d…` — enough to tell ids apart; the full id goes in a title. */
export function shortId(id) {
  if (typeof id !== 'string') return '—';
  const cut = id.indexOf('_') + 9;
  return id.length > cut + 1 ? id.slice(0, cut) + '…' : id;
}

export function date(text) {
  const parsed = new Date(text);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}

export function plural(count, one, many = one + 's') {
  return `${count} ${count === 1 ? one : many}`;
}
