// The SDK against the real `osbd up` sdks/test.sh started (netns sandboxes, the sealing
// proxy): the 8-step flow — project with an allowlist, two secrets (one host-restricted),
// list (names, no values), a sandbox, only sealed tokens inside, a request from inside reaching
// a local TLS origin with the real value while the echo comes back scrubbed, an update used by
// the next request, delete — plus typed errors, pagination, streaming exec, checkpoints, fork,
// snapshots and their deletion, and events. Every exchange is checked against the served
// OpenAPI document in the last test.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import * as osb from "../dist/index.js";
import { checkExchange, recordingFetch, resolve } from "./openapi.mjs";
import { startOrigin } from "./origin.mjs";

const LLM = "ts-llm.sdk.test";
const OTHER = "ts-other.sdk.test";
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the live tests through sdks/test.sh`);
  return value;
};
const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;
const exchanges = [];
let client;
let origin;

before(async () => {
  // Only the config file osbd up wrote names the server and the key: the SDK finds them there.
  client = new osb.OpenSandbox({ env: { OPENSANDBOX_CONFIG: env("OPENSANDBOX_CONFIG") }, fetch: recordingFetch(exchanges) });
  origin = await startOrigin(env("OSB_SDK_TS_ORIGIN_IP"), env("OSB_SDK_ORIGIN_CERT"), env("OSB_SDK_ORIGIN_KEY"));
});

after(async () => {
  await origin?.close();
});

async function curl(sandbox, host, variable) {
  const script = `curl -sS -m 20 -H "x-api-key: $${variable}" https://${host}/echo; echo " status=$?"`;
  return (await sandbox.exec(["sh", "-c", script], { timeoutSec: 60 })).stdout;
}

test("the eight-step flow", async () => {
  const [value, rotated, otherValue] = ["live", "rotated", "other"].map((kind) => `sk-${kind}-${randomUUID()}`);
  // 1. A project with an allowlist.
  const project = await osb.Project.create({ name: unique("flow"), egressAllowlist: [LLM, OTHER], client });
  assert.deepEqual(project.egressAllowlist, [LLM, OTHER]);
  // 2. Two secrets, one host-restricted.
  assert.equal((await project.setSecret("LLM_KEY", value, { allowedHosts: [LLM] })).version, 1);
  assert.equal((await project.setSecret("OTHER_KEY", otherValue)).status, "set");
  // 3. Listed by name, never with a value.
  const listed = await project.listSecrets();
  assert.deepEqual(listed.map((s) => [s.name, s.allowedHosts, s.inheritsProjectAllowlist]),
    [["LLM_KEY", [LLM], false], ["OTHER_KEY", [], true]]);
  assert.ok(!JSON.stringify(listed).includes(value));
  // 4. A sandbox of the project.
  const sandbox = await osb.Sandbox.create({ project, metadata: { suite: "typescript" }, client });
  try {
    assert.deepEqual([sandbox.status, sandbox.metadata, sandbox.projectID, sandbox.warning], ["running", { suite: "typescript" }, project.id, null]);
    // 5. Only sealed tokens inside.
    const envText = (await sandbox.exec("env")).stdout;
    const tokens = Object.fromEntries(envText.split("\n").filter((line) => /^(LLM_KEY|OTHER_KEY)=/.test(line)).map((line) => line.split("=")));
    assert.ok(Object.values(tokens).every((token) => token.startsWith("osb_sealed_") && token.length === 43), envText);
    assert.ok(!envText.includes(value) && !envText.includes(otherValue));
    // 6. The origin gets the real value; the echo comes back as the token.
    let echoed = await curl(sandbox, LLM, "LLM_KEY");
    assert.equal(origin.keysFor(LLM).at(-1), value);
    assert.ok(echoed.includes(tokens.LLM_KEY) && !echoed.includes(value), echoed);
    // The restricted secret is refused toward the other host; the other secret goes there.
    const refused = await curl(sandbox, OTHER, "LLM_KEY");
    assert.ok(refused.includes("LLM_KEY") && !refused.includes(value), refused);
    assert.ok(!origin.keysFor(OTHER).includes(value));
    await curl(sandbox, OTHER, "OTHER_KEY");
    assert.equal(origin.keysFor(OTHER).at(-1), otherValue);
    // 7. An update reaches the running sandbox: the next request uses the new value.
    const updated = await project.setSecret("LLM_KEY", rotated, { allowedHosts: [LLM] });
    assert.deepEqual([updated.version, updated.refreshed], [2, 1]);
    echoed = await curl(sandbox, LLM, "LLM_KEY");
    assert.equal(origin.keysFor(LLM).at(-1), rotated);
    assert.ok(!echoed.includes(rotated) && echoed.includes(tokens.LLM_KEY));
    // 8. Delete the secret, then the project.
    await project.deleteSecret("LLM_KEY");
    assert.deepEqual((await project.listSecrets()).map((s) => s.name), ["OTHER_KEY"]);
  } finally {
    await sandbox.kill();
  }
  assert.equal(sandbox.status, "destroyed");
  await project.delete();
  await assert.rejects(client.projects.get(project.name), osb.NotFound);
});

test("errors are typed with their codes", async () => {
  const url = client.apiUrl;
  const codes = [];
  const expectError = async (promise, Class) => {
    const error = await promise.then(() => undefined, (caught) => caught);
    assert.ok(error instanceof Class, `${error}`);
    codes.push([error.status, error.code]);
    return error;
  };
  await expectError(new osb.OpenSandbox({ apiUrl: url, env: {} }).projects.listPage(), osb.Unauthorized);
  await expectError(new osb.OpenSandbox({ apiUrl: url, apiKey: "osk_" + "0".repeat(40), env: {} }).projects.listPage(), osb.Forbidden);
  await expectError(client.sandboxes.get("sbx_" + "0".repeat(32)), osb.NotFound);
  const name = unique("dup");
  const project = await client.projects.create({ name });
  await expectError(client.projects.create({ name }), osb.Conflict);
  await expectError(client.projects.create({ name: "Not A Name" }), osb.InvalidInput);
  await expectError(project.setSecret("PATH", "x"), osb.Unprocessable);
  const limit = await expectError(client.projects.listPage({ limit: 0 }), osb.InvalidInput);
  assert.ok(limit.message.includes("limit"));
  await project.delete();
  assert.deepEqual(codes, [[401, "missing_api_key"], [403, "invalid_api_key"], [404, "not_found"], [409, "conflict"],
    [400, "invalid_input"], [422, "unprocessable"], [400, "invalid_input"]]);
});

test("update merges and replace resets", async () => {
  const project = await client.projects.create({ name: unique("edit"), cpuCount: 2, egressAllowlist: [LLM] });
  try {
    await project.update({ memoryMB: 1024 });
    assert.deepEqual([project.cpuCount, project.memoryMB, project.egressAllowlist], [2, 1024, [LLM]]);
    await project.replace({ timeoutSec: 600 });
    assert.deepEqual([project.cpuCount, project.memoryMB, project.timeoutSec, project.egressAllowlist], [1, 512, 600, []]);
    assert.equal((await project.refresh()).timeoutSec, 600);
  } finally {
    await project.delete();
  }
});

test("lists follow the cursor", async () => {
  const prefix = unique("page");
  const created = [];
  for (let index = 0; index < 7; index++) created.push((await client.projects.create({ name: `${prefix}-${index}` })).name);
  try {
    const first = await client.projects.listPage({ limit: 3 });
    assert.equal(first.items.length, 3);
    assert.ok(first.nextCursor);
    const walked = [];
    for (let cursor; ;) {
      const page = await client.projects.listPage({ limit: 3, cursor });
      walked.push(...page.items.map((p) => p.name));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    assert.deepEqual(walked.filter((name) => name.startsWith(prefix)), [...created].sort());
    assert.equal(new Set(walked).size, walked.length, "no item twice");
    const all = [];
    for await (const project of client.projects.list({ limit: 2 })) if (project.name.startsWith(prefix)) all.push(project.name);
    assert.deepEqual(all, [...created].sort());
  } finally {
    for (const name of created) await client.projects.delete(name);
  }
});

test("streaming exec, checkpoints, forks, snapshots and their deletion", async () => {
  const dataDir = env("OSB_SDK_DATA_DIR");
  const project = await client.projects.create({ name: unique("ops") });
  const sandbox = await client.sandboxes.create({ project, envs: { GREETING: "hi" } });
  let fork;
  try {
    const stream = sandbox.execStream(["sh", "-c", "echo one; echo two >&2; sleep 0.2; echo three; exit 3"]);
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = (which) => Buffer.concat(chunks.filter((c) => c.stream === which).map((c) => c.data)).toString();
    assert.deepEqual([text("stdout"), text("stderr"), stream.exitCode, stream.timedOut], ["one\nthree\n", "two\n", 3, false]);
    const buffered = await sandbox.exec("echo $GREETING; exit 2");
    assert.deepEqual([buffered.stdout, buffered.exitCode], ["hi\n", 2]);
    await sandbox.exec("echo before > /tmp/mark");
    const checkpoint = await sandbox.checkpoint();
    const layer = join(dataDir, "worker", "sandboxes", "checkpoints", checkpoint.id);
    assert.ok(existsSync(layer));
    await sandbox.exec("echo after > /tmp/mark");
    await sandbox.restore(checkpoint);
    assert.equal((await sandbox.exec("cat /tmp/mark")).stdout, "before\n");
    fork = await checkpoint.fork({ metadata: { role: "fork" } });
    assert.notEqual(fork.id, sandbox.id);
    assert.deepEqual(fork.metadata, { role: "fork" });
    assert.equal((await fork.exec("cat /tmp/mark")).stdout, "before\n");
    const listed = [];
    for await (const each of sandbox.checkpoints()) listed.push(each.id);
    assert.deepEqual(listed, [checkpoint.id]);
    const snapshot = await sandbox.snapshot(unique("golden"));
    assert.equal(snapshot.sandboxID, sandbox.id);
    await assert.rejects(sandbox.deleteCheckpoint(snapshot.checkpointID), osb.Conflict);
    const booted = await client.sandboxes.create({ project, snapshot: snapshot.name });
    assert.equal((await booted.exec("cat /tmp/mark")).stdout, "before\n");
    await booted.kill();
    await checkpoint.delete();
    assert.ok(!existsSync(layer), "the worker's files went with the checkpoint");
    const snapshotLayer = join(dataDir, "worker", "sandboxes", "checkpoints", snapshot.checkpointID);
    await snapshot.delete();
    assert.ok(!existsSync(snapshotLayer));
    await assert.rejects(client.snapshots.delete(snapshot.name), osb.NotFound);
  } finally {
    await fork?.kill();
    await sandbox.kill();
    await project.delete();
  }
});

test("events stream the org's sandbox events", async () => {
  const controller = new AbortController();
  let opened;
  const open = new Promise((resolve) => { opened = resolve; });
  const first = (async () => {
    for await (const event of client.events({ subject: "osb.sandbox.*.created", signal: controller.signal, onOpen: opened })) {
      return event;
    }
  })();
  await open;
  const sandbox = await client.sandboxes.create({});
  try {
    const event = await first;
    assert.equal(event.subject, `osb.sandbox.${sandbox.id}.created`);
    assert.equal(typeof event.data, "object");
  } finally {
    controller.abort();
    await sandbox.kill();
  }
});

test("every exchange matches the served OpenAPI document", async () => {
  const document = await (await fetch(`${client.apiUrl}/api/openapi.json`)).json();
  assert.ok(exchanges.length > 40, `${exchanges.length} exchanges`);
  const problems = exchanges.flatMap((exchange) => checkExchange(document, exchange));
  assert.deepEqual(problems, []);
  const schemas = document.components.schemas;
  for (const [schema, wire] of Object.entries(osb.WIRE)) {
    const properties = resolve(document, schemas[schema]).properties;
    for (const [field, name] of Object.entries(wire)) {
      assert.ok(name in properties, `${schema}.${field} reads ${name}, which the document does not have`);
      assert.ok(!properties[name].deprecated, `${schema}.${field} reads the deprecated ${name}`);
    }
  }
});
