// The SDK without a platform: configuration precedence (option > env > the `oc` file), the SSE
// parser, typed errors, retries that reuse one Idempotency-Key, a secret value kept out of
// every error and printout, and event-stream reconnects that send Last-Event-ID only when the
// server gave ids.

import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { test } from "node:test";

import * as osb from "../dist/index.js";
import { fakeServer } from "./fake-server.mjs";

const JSON_TYPE = { "content-type": "application/json" };

test("configuration: option, then environment, then the oc config file", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "osbsdk-ts-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "config.toml");
  writeFileSync(path, '# written by osbd up\napi_url = "http://file:1"\napi_key = "osk_file"\n', { mode: 0o600 });
  const env = { OPENSANDBOX_CONFIG: path };
  let connection = osb.resolveConnection(undefined, undefined, env);
  assert.deepEqual([connection.apiUrl, connection.apiKey], ["http://file:1", "osk_file"]);
  connection = osb.resolveConnection(undefined, undefined, { ...env, OPENSANDBOX_API_URL: "http://env:2", OPENSANDBOX_API_KEY: "osk_env" });
  assert.deepEqual([connection.apiUrl, connection.apiKey], ["http://env:2", "osk_env"]);
  connection = osb.resolveConnection("http://arg:3/", "osk_arg", env);
  assert.deepEqual([connection.apiUrl, connection.apiKey], ["http://arg:3", "osk_arg"]);
  assert.ok(!inspect(connection).includes("osk_arg") && !JSON.stringify(connection).includes("osk_arg"));
  mkdirSync(join(dir, "xdg", "opensandbox"), { recursive: true });
  writeFileSync(join(dir, "xdg", "opensandbox", "config.toml"), 'api_key = "osk_xdg"\n');
  assert.equal(osb.resolveConnection(undefined, undefined, { XDG_CONFIG_HOME: join(dir, "xdg"), HOME: "/nowhere" }).apiKey, "osk_xdg");
  assert.equal(osb.resolveConnection(undefined, undefined, { XDG_CONFIG_HOME: "rel", HOME: "/nowhere" }).apiKey, undefined);
  assert.equal(osb.resolveConnection(undefined, undefined, {}).apiUrl, "http://127.0.0.1:8080");
  writeFileSync(path, "api_key = osk_unquoted_secret\n");
  assert.throws(() => osb.resolveConnection(undefined, undefined, env), (error) =>
    error instanceof osb.ConfigError && error.message.includes(`${path}:1`) && !error.message.includes("osk_unquoted_secret"));
  writeFileSync(path, 'api-url = "http://x"\n');
  assert.throws(() => osb.resolveConnection(undefined, undefined, env), /unknown key/);
});

test("the SSE parser handles comments, ids and multi-line data", () => {
  const parser = new osb.SseParser();
  const events = [": ping", "", "id: 7", "event: osb.sandbox.sbx_1.created", 'data: {"a":', "data: 1}", "",
    "event: x", "data: plain", "", "retry: 2500", "event: lonely", ""].map((line) => parser.line(line)).filter(Boolean);
  assert.deepEqual(events, [
    { subject: "osb.sandbox.sbx_1.created", data: { a: 1 }, id: "7" },
    { subject: "x", data: "plain", id: "7" },
  ]);
  assert.deepEqual([parser.lastEventId, parser.retryMs], ["7", 2500]);
});

test("refusals are typed with code and status", async () => {
  const server = await fakeServer(() => [409, JSON_TYPE, '{"error":"project \\"web\\" already exists","code":"conflict"}']);
  try {
    const client = new osb.OpenSandbox({ apiUrl: server.url, apiKey: "osk_test", env: {} });
    await assert.rejects(client.projects.create({ name: "web" }), (error) =>
      error instanceof osb.Conflict && error instanceof osb.APIError && error.status === 409 && error.code === "conflict");
  } finally {
    await server.close();
  }
});

test("retries back off and reuse the Idempotency-Key; exec is not retried", async () => {
  const sandbox = { sandboxID: "sbx_" + "0".repeat(32), status: "running", metadata: {} };
  const server = await fakeServer((request, n) => n < 3
    ? [503, { ...JSON_TYPE, "retry-after": "0" }, '{"error":"busy","code":"unavailable"}']
    : [201, JSON_TYPE, JSON.stringify(sandbox)]);
  try {
    const client = new osb.OpenSandbox({ apiUrl: server.url, apiKey: "osk_test", env: {} });
    const created = await client.sandboxes.create({ project: "web" });
    assert.equal(created.id, sandbox.sandboxID);
    assert.equal(server.requests.length, 3);
    assert.equal(new Set(server.requests.map((request) => request["headers"]["idempotency-key"])).size, 1);
  } finally {
    await server.close();
  }
  const busy = await fakeServer(() => [503, JSON_TYPE, '{"error":"busy","code":"unavailable"}']);
  try {
    const client = new osb.OpenSandbox({ apiUrl: busy.url, apiKey: "osk_test", env: {} });
    const bound = new osb.Sandbox(client, sandbox);
    await assert.rejects(bound.exec(["true"]), osb.Unavailable);
    assert.equal(busy.requests.length, 1);
  } finally {
    await busy.close();
  }
});

test("a secret value appears in no error, printout or client", async () => {
  const canary = `canary-${Math.random().toString(16).slice(2)}`;
  const server = await fakeServer(() => [422, JSON_TYPE, '{"error":"secret name PATH is reserved","code":"unprocessable"}']);
  try {
    const client = new osb.OpenSandbox({ apiUrl: server.url, apiKey: "osk_key_canary", env: {} });
    const project = new osb.Project(client, { id: "prj_1", name: "web", egressAllowlist: [] });
    const error = await project.setSecret("PATH", canary).catch((caught) => caught);
    assert.ok(error instanceof osb.Unprocessable);
    assert.ok(server.requests[0].body.includes(canary), "sent once, in the body");
    for (const text of [String(error), inspect(error), inspect(project), inspect(client), JSON.stringify(project)]) {
      assert.ok(!text.includes(canary), text);
      assert.ok(!text.includes("osk_key_canary"), text);
    }
  } finally {
    await server.close();
  }
  const dead = new osb.OpenSandbox({ apiUrl: "http://127.0.0.1:9", apiKey: "osk_test", maxRetries: 1, env: {} });
  const error = await new osb.Project(dead, { id: "prj_1" }).setSecret("API_KEY", canary).catch((caught) => caught);
  assert.ok(error instanceof osb.APIConnectionError);
  assert.equal(error.cause, undefined, "no reference to the request");
  assert.ok(!inspect(error).includes(canary));
});

async function streamServer(withIds) {
  return fakeServer((request, n) => {
    if (n > 3) return [503, JSON_TYPE, '{"error":"gone","code":"unavailable"}'];
    const id = withIds ? `id: ${n}\n` : "";
    return [200, { "content-type": "text/event-stream" }, `: ping\n\n${id}event: osb.sandbox.sbx_${n}.created\ndata: {"n": ${n}}\n\n`];
  });
}

for (const withIds of [true, false]) {
  test(`events reconnect ${withIds ? "with" : "without"} Last-Event-ID`, async () => {
    const server = await streamServer(withIds);
    try {
      const client = new osb.OpenSandbox({ apiUrl: server.url, apiKey: "osk_test", env: {} });
      client.transport.baseDelayMs = 10;
      const seen = [];
      for await (const event of client.events()) {
        seen.push(event.data.n);
        if (seen.length === 3) break;
      }
      assert.deepEqual(seen, [1, 2, 3]);
      const sent = server.requests.slice(0, 3).map((request) => request.headers["last-event-id"]);
      assert.deepEqual(sent, withIds ? [undefined, "1", "2"] : [undefined, undefined, undefined]);
    } finally {
      await server.close();
    }
  });
}

test("an events refusal is thrown, not retried", async () => {
  const server = await fakeServer(() => [400, JSON_TYPE, '{"error":"subject must start with osb.sandbox.","code":"invalid_input"}']);
  try {
    const client = new osb.OpenSandbox({ apiUrl: server.url, apiKey: "osk_test", env: {} });
    await assert.rejects(client.events({ subject: "osb.cmd.>" }).next(), osb.InvalidInput);
    assert.equal(server.requests.length, 1);
  } finally {
    await server.close();
  }
});
