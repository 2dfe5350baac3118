// Sagas in flight and stuck, from GET /api/sagas (polled), with each saga's logged steps; a
// running saga whose claim is older than the 30 s lease is marked stalled (waiting for a
// control plane to take it over). Below, the latest saga progress events.

import { badge, fill, h, table } from './dom.js';
import { age, ago, clock, shortId } from './format.js';

const LEASE_MS = 30000;

function stepsOf(saga) {
  return saga.steps.map((step) => h('span', { class: `step step-${step.status}` },
    (step.action === 'undo' ? '↩ ' : '') + step.step,
    step.status === 'completed' ? ' ✓' : step.status === 'failed' ? ' ✗' : ' …'));
}

export function createSagasView({ state, model }, container) {
  const results = h('div', { class: 'results' });
  fill(container, results);

  function render() {
    const now = new Date();
    const error = state.errors.get('sagas');
    const recent = model.events.filter((event) => event.category === 'saga').slice(-20).reverse();
    fill(results,
      error ? h('p', { class: 'error', role: 'alert' }, `Sagas could not be loaded: ${error}`) : null,
      table('Sagas not yet over', ['Saga', 'Sandbox', 'State', 'Steps', 'Age', 'Problem'], state.sagas.map((saga) => {
        const claimed = saga.claimedAt ? new Date(saga.claimedAt) : null;
        const stalled = saga.status === 'running' && claimed && now - claimed > LEASE_MS;
        const failure = saga.steps.find((step) => step.error)?.error;
        return [
          h('span', {}, saga.kind, h('br'), h('code', { title: saga.sagaID, class: 'muted' }, shortId(saga.sagaID))),
          saga.sandboxID ? h('code', { title: saga.sandboxID }, shortId(saga.sandboxID)) : '—',
          stalled ? badge('stalled', 'warning') : badge(saga.status),
          h('span', { class: 'steps' }, stepsOf(saga)),
          age(new Date(saga.createdAt), now),
          failure ?? (stalled ? `no progress for ${ago(claimed, now).replace(' ago', '')}` : '—'),
        ];
      }), { empty: state.loaded.has('sagas') ? 'No saga in flight: everything finished.' : 'Loading…' }),
      h('h3', {}, 'Latest saga progress'),
      table('Latest saga progress', ['Time', 'Saga', 'Step', 'Outcome'], recent.map((event) => [
        clock(event.at),
        h('span', {}, String(event.payload.kind ?? ''), ' ', h('code', { title: event.sagaId }, shortId(event.sagaId))),
        h('code', {}, String(event.step)),
        badge(String(event.what)),
      ]), { empty: 'No saga progress seen yet.' }));
  }

  return { render };
}
