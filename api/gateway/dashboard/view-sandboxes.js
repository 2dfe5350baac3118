// Sandboxes of the org: state, project, worker, egress and age, newest first. Loaded from
// GET /api/sandboxes (every page) and kept live: each lifecycle or saga event naming a sandbox
// refreshes that sandbox from GET /api/sandboxes/{id}.

import { badge, fill, h, labelled, table } from './dom.js';
import { age, shortId } from './format.js';

const ACTIVE = new Set(['creating', 'running', 'stopped']);

export function createSandboxesView({ state }, container) {
  const show = h('select', { on: { change: () => render() } },
    h('option', { value: 'active' }, 'Active'),
    h('option', { value: 'all' }, 'All, with history'));
  const filter = h('input', { type: 'search', placeholder: 'id, project or worker', on: { input: () => render() } });
  const results = h('div', { class: 'results', 'aria-live': 'off' });
  fill(container,
    h('div', { class: 'controls' }, labelled('sandboxes-show', 'Show', show), labelled('sandboxes-filter', 'Filter', filter)),
    results);

  function render() {
    const needle = filter.value.trim().toLowerCase();
    const now = new Date();
    const rows = [...state.sandboxes.values()]
      .filter((sandbox) => show.value === 'all' || ACTIVE.has(sandbox.status))
      .filter((sandbox) => !needle || [sandbox.sandboxID, sandbox.project, sandbox.workerID]
        .some((field) => typeof field === 'string' && field.toLowerCase().includes(needle)))
      .sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
    const error = state.errors.get('sandboxes');
    fill(results,
      error ? h('p', { class: 'error', role: 'alert' }, `Sandboxes could not be loaded: ${error}`) : null,
      h('p', { class: 'muted' }, `${rows.length} shown of ${state.sandboxes.size}`),
      table('Sandboxes', ['Sandbox', 'State', 'Project', 'Worker', 'Egress', 'Age'], rows.map((sandbox) => [
        h('code', { class: 'id', title: sandbox.sandboxID, dataset: { sandbox: sandbox.sandboxID } }, shortId(sandbox.sandboxID)),
        badge(sandbox.status),
        sandbox.project ?? '—',
        sandbox.workerID ?? '—',
        sandbox.egress === 'cooperative'
          ? badge('cooperative', 'warning')
          : (sandbox.egress ?? '—'),
        age(new Date(sandbox.createdAt), now),
      ]), { empty: state.loaded.has('sandboxes') ? 'No sandboxes match.' : 'Loading…' }));
  }

  return { render };
}
