// The ops dashboard in a real browser against a real `osbd up` (started by run.sh): sign in
// with the keyboard, see a sandbox appear live, see a refused request in the feed within a
// second, allow the host from the page and see the next request pass, and prove that no secret
// value or sealed token reaches the DOM, the network or page storage, that the API key never
// reaches a URL, and that attacker-chosen host names render as text. Screenshots at 1280
// and 390 pixels go to the artefacts directory.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import { apiClient, env, launchChromium, recordNetwork, screenshot, sleep, startOrigin } from './support.mjs';

const base = env('OSB_DASH_URL');
const key = env('OSB_DASH_KEY');
const originHost = env('OSB_DASH_ORIGIN_HOST');
const artefacts = env('OSB_DASH_ARTEFACTS');
const api = apiClient(base, key);
const canary = 'osbdash-canary-' + crypto.randomBytes(12).toString('hex');
// Names a sandbox can ask its resolver for: DNS labels may hold any bytes, and the refusal
// event carries the name as asked.
const xssNames = ['<img src=x onerror=window.__xss=1>', '"><script>window.__xss=2</script>'];

let browser;
let page;
let network;
let origin;
let sandboxId;
const tokens = [];
const problems = [];

async function exec(cmd) {
  const { status, body } = await api('POST', `/api/sandboxes/${sandboxId}/exec`, { cmd, timeoutSec: 30 });
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

async function show(view) {
  await page.evaluate((name) => { location.hash = name; }, view);
  await page.waitForFunction((name) => !document.getElementById(`view-${name}`).hidden, {}, view);
}

/** Presses Tab until `predicate(activeElement)` holds; returns how many presses it took. */
async function tabUntil(predicate, max = 40, ...args) {
  for (let presses = 1; presses <= max; presses++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(predicate, ...args)) return presses;
  }
  throw new Error('focus never reached the control with Tab');
}

before(async () => {
  origin = await startOrigin({
    ip: env('OSB_DASH_ORIGIN_IP'), cert: env('OSB_DASH_ORIGIN_CERT'), key: env('OSB_DASH_ORIGIN_KEY'), realKey: canary,
  });
  browser = await launchChromium({ executablePath: env('OSB_CHROMIUM'), profile: env('OSB_DASH_PROFILE') });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  network = await recordNetwork(page);
  // The project the test works in: no egress at first, one secret (the canary) for the origin.
  let answer = await api('POST', '/api/projects', { name: 'demo', egressAllowlist: [] });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  answer = await api('PUT', '/api/projects/demo/secrets/ANTHROPIC_API_KEY', { value: canary, allowedHosts: [originHost] });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
});

after(async () => {
  await browser?.close();
  await origin?.close();
});

test('the page sends strict security headers', async () => {
  const response = await fetch(base + '/dashboard');
  const policy = response.headers.get('content-security-policy');
  assert.match(policy, /default-src 'self'/);
  assert.match(policy, /frame-ancestors 'none'/);
  assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval/);
  assert.equal(response.headers.get('x-frame-options'), 'DENY');
  assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
});

test('sign in with the keyboard; the key goes to session storage only', async () => {
  await page.goto(base + '/dashboard', { waitUntil: 'networkidle0' });
  await page.evaluate(() => document.addEventListener('securitypolicyviolation', (event) => {
    window.__cspViolations = (window.__cspViolations ?? 0) + 1;
    console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
  }));
  await screenshot(page, artefacts, 'sign-in', 1280);
  // The key field has focus on arrival; the skip link comes before it, the button after it.
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'api-key');
  await page.keyboard.down('Shift');
  await page.keyboard.press('Tab');
  await page.keyboard.up('Shift');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  await tabUntil(() => document.activeElement?.id === 'api-key', 1);
  const label = await page.$eval('label[for="api-key"]', (element) => element.textContent.trim());
  assert.equal(label, 'API key');
  await page.keyboard.type(key);
  await tabUntil(() => document.activeElement?.textContent === 'Sign in', 2);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('connection').dataset.state === 'live', { timeout: 15000 });
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('opensandbox.apiKey'),
    local: window['local' + 'Storage'].length,
    cookies: document.cookie,
    field: document.getElementById('api-key').value,
    url: location.href,
  }));
  assert.equal(stored.session, key);
  assert.equal(stored.local, 0);
  assert.equal(stored.cookies, '');
  assert.equal(stored.field, '', 'the key leaves the field once signed in');
  assert.ok(!stored.url.includes(key));
});

test('every control is labelled and the views are reachable with the keyboard', async () => {
  const unnamed = await page.evaluate(() => {
    const visible = (element) => element.offsetParent !== null || element.getClientRects().length > 0;
    const named = (element) => {
      if (element.getAttribute('aria-label')) return true;
      if (element.id && document.querySelector(`label[for="${CSS.escape(element.id)}"]`)) return true;
      return element.textContent.trim().length > 0 || Boolean(element.getAttribute('title'));
    };
    return [...document.querySelectorAll('a, button, input, select, textarea')]
      .filter(visible).filter((element) => !named(element)).map((element) => element.outerHTML.slice(0, 80));
  });
  assert.deepEqual(unnamed, []);
  for (const view of ['sandboxes', 'projects', 'events', 'refusals', 'sagas', 'workers', 'overview']) {
    await tabUntil((name) => document.activeElement?.dataset?.view === name, 40, view);
    await page.keyboard.press('Enter');
    await page.waitForFunction((name) => document.activeElement?.id === `h-${name}`, {}, view);
  }
});

test('a sandbox created through the API appears live', async () => {
  await show('sandboxes');
  const { status, body } = await api('POST', '/api/sandboxes', { project: 'demo' });
  assert.equal(status, 201, JSON.stringify(body));
  sandboxId = body.sandboxID;
  await page.waitForFunction((id) => {
    const row = document.querySelector(`[data-sandbox="${id}"]`)?.closest('tr');
    return row && /running/.test(row.textContent) && /demo/.test(row.textContent);
  }, { timeout: 10000 }, sandboxId);
  const env = await exec(['sh', '-c', 'printenv ANTHROPIC_API_KEY']);
  tokens.push(env.stdout.trim());
  assert.match(tokens[0], /^osb_sealed_[0-9a-f]{32}$/);
});

test('a refused request appears in the feed within a second', async () => {
  await show('events');
  const curl = ['sh', '-c', `curl -sS -m 15 -o /dev/null -w '%{http_code}' -H "x-api-key: $ANTHROPIC_API_KEY" https://${originHost}/v1/check`];
  const refused = await exec(curl);
  const returned = Date.now();
  assert.notEqual(refused.stdout, '200', 'the host is not allowed yet');
  await page.waitForFunction((host) => [...document.querySelectorAll('#events-body tr')]
    .some((row) => row.textContent.includes('egress blocked') && row.textContent.includes(host)), { timeout: 5000 }, originHost);
  const latency = Date.now() - returned;
  console.log(`refusal shown ${latency} ms after the refused request returned`);
  assert.ok(latency < 1000, `the refusal took ${latency} ms to appear`);
  assert.equal(origin.seen.length, 0, 'nothing reached the origin');
});

test('allowing the host from the page lets the next request through', async () => {
  await show('refusals');
  const allow = `button[aria-label="Allow ${originHost} for project demo"]`;
  await page.waitForSelector(allow, { timeout: 5000 });
  await page.focus(allow);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.textContent === 'Confirm allow', { timeout: 5000 });
  await screenshot(page, artefacts, 'refusals-confirm', 1280);
  let project = await api('GET', '/api/projects/demo');
  assert.deepEqual(project.body.egressAllowlist, [], 'nothing changes before the confirmation');
  await page.keyboard.press('Enter');
  await page.waitForFunction((host) => document.querySelector('.action-status')?.textContent.startsWith(`Allowed ${host}`), { timeout: 5000 }, originHost);
  project = await api('GET', '/api/projects/demo');
  assert.deepEqual(project.body.egressAllowlist, [originHost]);
  const passed = await exec(['sh', '-c', `curl -sS -m 15 -o /dev/null -w '%{http_code}' -H "x-api-key: $ANTHROPIC_API_KEY" https://${originHost}/v1/check`]);
  assert.equal(passed.stdout, '200', JSON.stringify(passed));
  assert.ok(origin.seen.some((request) => request.keyMatched), 'the proxy put the real key on the wire');
  await show('events');
  await page.waitForFunction((host) => [...document.querySelectorAll('#events-body tr')]
    .some((row) => row.textContent.includes('secret used') && row.textContent.includes(host)), { timeout: 5000 }, originHost);
});

test('attacker-chosen host names render as text', async () => {
  // DNS queries whose names are markup, straight to the sandbox's resolver. (The proxy refuses
  // markup in a URL or Host before any event: hyper rejects such a request line.)
  const query = (label) => [
    'import re,socket,struct',
    "ns=re.search(r'^nameserver\\s+(\\S+)',open('/etc/resolv.conf').read(),re.M).group(1)",
    `label=${JSON.stringify(label)}.encode()`,
    "q=struct.pack('>HHHHHH',0x1234,0x0100,1,0,0,0)+bytes([len(label)])+label+b'\\x04test\\x00'+struct.pack('>HH',1,1)",
    's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);s.sendto(q,(ns,53))',
    'try:\n  s.recv(512)\nexcept Exception:\n  pass',
  ].join('\n');
  for (const name of xssNames) await exec(['python3', '-c', query(name)]);
  const hosts = xssNames.map((name) => `${name}.test`);
  await show('events');
  await page.waitForFunction((needles) => needles.every((needle) => document.getElementById('events-body').textContent.includes(needle)),
    { timeout: 10000 }, hosts);
  await show('refusals');
  await page.waitForFunction((needles) => needles.every((needle) => document.getElementById('refusals-body').textContent.includes(needle)),
    { timeout: 5000 }, hosts);
  const injected = await page.evaluate(() => ({
    xss: window.__xss ?? null,
    images: document.querySelectorAll('main img').length,
    scripts: [...document.querySelectorAll('script')].filter((script) => !script.src).length,
    csp: window.__cspViolations ?? 0,
    allowOffered: document.getElementById('refusals-body').textContent.includes('not a host name'),
  }));
  assert.deepEqual(injected, { xss: null, images: 0, scripts: 0, csp: 0, allowOffered: true });
});

test('saga progress, sagas and workers are shown', async () => {
  await show('events');
  await page.select('#feed-kind', 'saga');
  await page.waitForFunction(() => document.getElementById('events-body').textContent.includes('mark_running'), { timeout: 5000 });
  await page.select('#feed-kind', '');
  await show('workers');
  await page.waitForFunction(() => /live/.test(document.getElementById('workers-body').textContent), { timeout: 10000 });
  await show('sagas');
  await page.waitForFunction(() => document.getElementById('sagas-body').textContent.includes('Latest saga progress'));
});

test('screenshots at 1280 and 390 pixels wide', async () => {
  for (const width of [1280, 390]) {
    for (const view of ['overview', 'sandboxes', 'events', 'refusals', 'projects', 'sagas', 'workers']) {
      await show(view);
      await screenshot(page, artefacts, view, width);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `${view} at ${width}px scrolls sideways by ${overflow}px`);
    }
  }
  await page.setViewport({ width: 1280, height: 900 });
});

test('no secret value or sealed token in the DOM, the network or page storage', async () => {
  await show('projects');
  await page.waitForFunction(() => document.getElementById('projects-body').textContent.includes('ANTHROPIC_API_KEY'));
  await sleep(500);
  await network.settle();
  const page_ = await page.evaluate(() => ({
    dom: document.documentElement.outerHTML,
    storage: JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...window['local' + 'Storage'] }),
    cookies: document.cookie,
  }));
  const seen = network.text();
  assert.ok(seen.includes('egress_blocked'), 'the recorder saw the event stream');
  assert.ok(seen.includes(sandboxId), 'the recorder saw API answers');
  for (const secret of [canary, ...tokens]) {
    assert.ok(!page_.dom.includes(secret), 'a secret or token in the DOM');
    assert.ok(!page_.storage.includes(secret), 'a secret or token in page storage');
    assert.ok(!page_.cookies.includes(secret), 'a secret or token in cookies');
    assert.ok(!seen.includes(secret), 'a secret or token on the network');
  }
  for (const request of network.requests) {
    assert.ok(!request.url.includes(key), `the API key in a URL: ${request.url.split('?')[0]}`);
  }
  assert.ok(!page_.dom.includes(key), 'the API key in the DOM');
  assert.deepEqual(problems, []);
});
