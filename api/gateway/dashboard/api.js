// Calls to this gateway's REST API with the tab's key in the X-API-Key header. Lists follow
// `X-Next-Cursor` when the server pages them (and work as one page when it does not). Errors
// become ApiError with the server's sentence and code; a refused key ends the session.

import { apiKey } from './session.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

/** Registers what to do when the server refuses the key (401, or 403 invalid_api_key). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** The headers every call carries. */
export function authHeaders(extra = {}) {
  return { 'X-API-Key': apiKey() ?? '', ...extra };
}

/** One request; returns `{ body, headers }` or throws ApiError. */
export async function call(method, path, body) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch (error) {
    throw new ApiError(0, 'unreachable', `the gateway did not answer (${error.message})`);
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const code = parsed?.code ?? 'http_' + response.status;
    const message = parsed?.error ?? `the gateway answered ${response.status}`;
    const error = new ApiError(response.status, code, message);
    if (response.status === 401 || code === 'invalid_api_key') unauthorized(error);
    throw error;
  }
  return { body: parsed, headers: response.headers };
}

export async function get(path) {
  return (await call('GET', path)).body;
}

export async function patch(path, body) {
  return (await call('PATCH', path, body)).body;
}

/** A path with one query parameter set. */
export function withQuery(path, name, value) {
  const url = new URL(path, location.origin);
  url.searchParams.set(name, value);
  return url.pathname + url.search;
}

/** Every item of a list endpoint, following `X-Next-Cursor` page by page. */
export async function list(path, { maxPages = 100 } = {}) {
  const items = [];
  let next = withQuery(path, 'limit', '500');
  for (let page = 0; page < maxPages; page++) {
    const { body, headers } = await call('GET', next);
    if (!Array.isArray(body)) throw new ApiError(200, 'unexpected', `${path} did not answer a list`);
    items.push(...body);
    const cursor = headers.get('X-Next-Cursor');
    if (!cursor) return items;
    next = withQuery(next, 'cursor', cursor);
  }
  return items;
}

/** A path segment, escaped. */
export function segment(text) {
  return encodeURIComponent(text);
}
