// At a glance: counts from the loaded views, charts of requests that used a secret and of
// refusals per minute over the last hour (from the event stream), and what needs attention.

import { barChart } from './chart.js';
import { fill, h } from './dom.js';
import { ago } from './format.js';

const MINUTES = 60;

function tile(label, value, tone = '') {
  return h('div', { class: `tile ${tone}` }, h('span', { class: 'tile-value' }, String(value)), h('span', { class: 'tile-label' }, label));
}

export function createOverviewView({ state, model }, container) {
  const results = h('div', { class: 'results' });
  fill(container, results);

  function render() {
    const now = new Date();
    const sandboxes = [...state.sandboxes.values()];
    const running = sandboxes.filter((sandbox) => sandbox.status === 'running').length;
    const stuck = state.sagas.filter((saga) => saga.status === 'stuck');
    const lost = state.workers.filter((worker) => worker.status === 'lost');
    const minutes = model.perMinute(MINUTES, now);
    const requests = minutes.reduce((sum, minute) => sum + minute.requests, 0);
    const refusals = minutes.reduce((sum, minute) => sum + minute.refusals, 0);
    const failed = sandboxes.filter((sandbox) => sandbox.status === 'failed')
      .sort((a, b) => String(b.updatedAt).localeCompare(String(a.updatedAt))).slice(0, 3);
    const attention = [
      ...stuck.map((saga) => `Saga ${saga.kind} is stuck at ${saga.currentStep ?? 'a step'}.`),
      ...lost.map((worker) => `Worker ${worker.workerID} stopped sending heartbeats (${ago(new Date(worker.lastHeartbeatAt), now)}).`),
      ...failed.map((sandbox) => `Sandbox ${sandbox.sandboxID} failed${sandbox.failureReason ? ': ' + sandbox.failureReason : ''}.`),
    ];
    fill(results,
      h('div', { class: 'tiles' },
        tile('running sandboxes', running),
        tile('projects', state.projects.size),
        tile('sagas in flight', state.sagas.length, stuck.length ? 'warn' : ''),
        tile('live workers', state.workers.filter((worker) => worker.status === 'live').length, lost.length ? 'warn' : ''),
        tile('requests with secrets, last hour', requests),
        tile('refusals, last hour', refusals, refusals ? 'warn' : '')),
      h('div', { class: 'charts' },
        barChart({ title: 'Requests with secrets per minute', points: minutes.map((m) => ({ minute: m.minute, value: m.requests })), tone: 'requests', unit: 'requests' }),
        barChart({ title: 'Refusals per minute', points: minutes.map((m) => ({ minute: m.minute, value: m.refusals })), tone: 'refusals', unit: 'refusals' })),
      h('h3', {}, 'Needs attention'),
      attention.length === 0
        ? h('p', { class: 'empty' }, 'Nothing: no stuck saga, no lost worker, no failed sandbox.')
        : h('ul', { class: 'attention' }, attention.map((line) => h('li', {}, line))));
  }

  return { render };
}
