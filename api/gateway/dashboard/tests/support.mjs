// Helpers of the dashboard's browser tests: the REST client the test itself uses (never the
// page's), the local TLS origin the sandbox reaches through the proxy, Chromium with the
// flags a root CI machine needs, and a recorder of every byte the page receives over the
// network (response bodies, including the event stream as it streams).

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through run.sh`);
  return value;
};

/** The REST API, as the test drives it (creating sandboxes, exec). */
export function apiClient(base, key) {
  return async function call(method, route, body) {
    const response = await fetch(base + route, {
      method,
      headers: { 'X-API-Key': key, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: response.status, body: json };
  };
}

/** An HTTPS origin on ip:443 accepting only `realKey` in x-api-key; records what it saw. */
export async function startOrigin({ ip, cert, key, realKey }) {
  const seen = [];
  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (request, response) => {
    const presented = request.headers['x-api-key'] ?? '';
    seen.push({ path: request.url, keyMatched: presented === realKey });
    const ok = presented === realKey;
    response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ ok }));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(443, ip, resolve);
  });
  return { seen, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Headless Chromium from Debian with a fresh profile (never a downloaded browser). */
export async function launchChromium({ executablePath, profile }) {
  fs.rmSync(profile, { recursive: true, force: true });
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
  });
}

/** Records every request URL and header and every response body the page gets. */
export async function recordNetwork(page) {
  const client = await page.createCDPSession();
  const record = { requests: [], bodies: [], streamed: [] };
  const pending = new Set();
  await client.send('Network.enable', { maxTotalBufferSize: 50_000_000, maxResourceBufferSize: 10_000_000 });
  client.on('Network.requestWillBeSent', ({ request }) => {
    record.requests.push({ url: request.url, headers: request.headers, body: request.postData ?? '' });
  });
  client.on('Network.responseReceived', ({ requestId, response }) => {
    if (String(response.mimeType).includes('event-stream')) {
      // Streamed bodies are read as they arrive (getResponseBody only works once finished).
      client.send('Network.streamResourceContent', { requestId })
        .then(({ bufferedData }) => record.streamed.push(Buffer.from(bufferedData, 'base64').toString('utf8')))
        .catch(() => {});
    }
  });
  client.on('Network.dataReceived', ({ data }) => {
    if (data) record.streamed.push(Buffer.from(data, 'base64').toString('utf8'));
  });
  client.on('Network.loadingFinished', ({ requestId }) => {
    const read = client.send('Network.getResponseBody', { requestId })
      .then(({ body, base64Encoded }) => record.bodies.push(base64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body))
      .catch(() => {})
      .finally(() => pending.delete(read));
    pending.add(read);
  });
  record.settle = () => Promise.all([...pending]);
  record.text = () => [
    ...record.requests.map((request) => `${request.url}\n${JSON.stringify(request.headers)}\n${request.body}`),
    ...record.bodies,
    ...record.streamed,
  ].join('\n');
  return record;
}

export async function screenshot(page, artefacts, name, width) {
  await page.setViewport({ width, height: width < 600 ? 844 : 900 });
  await new Promise((resolve) => setTimeout(resolve, 350));
  const file = path.join(artefacts, `${name}-${width}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
