// The live event feed: secret use, egress refusals, lifecycle, saga progress and project
// changes as they happen (newest first), with filters by kind and by text. Every field shown
// comes from an event and is rendered as text.

import { badge, fill, h, labelled, table } from './dom.js';
import { clock, shortId } from './format.js';

const SHOWN = 200;

export function describe(event) {
  const p = event.payload ?? {};
  switch (event.category) {
    case 'secret_used':
      return [h('code', {}, (p.secret_names ?? []).join(', ')), ' → ', h('code', {}, String(p.host ?? '')),
        ' ', String(p.method ?? ''), ' ', h('code', {}, String(p.path ?? ''))];
    case 'egress_blocked':
      return [h('code', {}, String(p.host ?? '(no host)')), ' ',
        p.method ? String(p.method) + ' ' : '', p.path ? h('code', {}, String(p.path)) : null,
        ' — ', String(p.code ?? (p.via ? 'refused by the sandbox resolver' : '')),
        p.reason ? ': ' + String(p.reason) : ''];
    case 'saga':
      return [String(p.kind ?? 'saga'), ': ', h('code', {}, String(event.step)), ' ', badge(String(event.what))];
    case 'project':
      return [String(event.what).replace('_', ' '), ' ', h('code', {}, String(p.name ?? '')),
        p.version ? ` v${p.version}` : ''];
    default:
      return [String(event.what).replace('_', ' '), p.reason ? ': ' + String(p.reason) : '',
        p.workerID ? ` on ${p.workerID}` : ''];
  }
}

export function createFeedView({ model }, container) {
  let paused = false;
  let frozen = [];
  const kind = h('select', { on: { change: () => render() } },
    h('option', { value: '' }, 'All kinds'),
    h('option', { value: 'secret_used' }, 'Secret used'),
    h('option', { value: 'egress_blocked' }, 'Egress blocked'),
    h('option', { value: 'lifecycle' }, 'Lifecycle'),
    h('option', { value: 'saga' }, 'Saga progress'),
    h('option', { value: 'project' }, 'Project changes'));
  const filter = h('input', { type: 'search', placeholder: 'host, sandbox, secret…', on: { input: () => render() } });
  const pause = h('button', {
    type: 'button', 'aria-pressed': 'false',
    on: {
      click: () => {
        paused = !paused;
        frozen = [...model.events];
        pause.setAttribute('aria-pressed', String(paused));
        pause.textContent = paused ? 'Resume' : 'Pause';
        render();
      },
    },
  }, 'Pause');
  const results = h('div', { class: 'results' });
  fill(container,
    h('div', { class: 'controls' }, labelled('feed-kind', 'Kind', kind), labelled('feed-filter', 'Filter', filter), pause),
    results);

  function render() {
    const needle = filter.value.trim().toLowerCase();
    const source = paused ? frozen : model.events;
    const rows = [];
    for (let index = source.length - 1; index >= 0 && rows.length < SHOWN; index--) {
      const event = source[index];
      if (kind.value && event.category !== kind.value) continue;
      if (needle && !(event.subject + ' ' + JSON.stringify(event.payload)).toLowerCase().includes(needle)) continue;
      rows.push(event);
    }
    fill(results,
      model.notices.map((notice) => h('p', { class: 'notice', role: 'status' }, 'Some history is not available: ', notice.detail)),
      h('p', { class: 'muted' }, `${rows.length} shown · ${model.total} received since this page opened${paused ? ' · paused' : ''}`),
      table('Events, newest first', ['Time', 'Event', 'Sandbox', 'Details'], rows.map((event) => [
        h('time', { datetime: event.at.toISOString() }, clock(event.at)),
        badge(event.category.replace('_', ' '), event.category),
        event.sandboxId ? h('code', { class: 'id', title: event.sandboxId }, shortId(event.sandboxId)) : '—',
        h('span', { class: 'details' }, describe(event)),
      ]), { empty: 'No events yet. They appear here as they happen.' }));
  }

  return { render };
}
