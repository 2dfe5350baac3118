// Egress refusals grouped by host, from the egress_blocked events this page has seen (replayed
// for the last hour on opening, then live). A refusal caused by the project allowlist offers
// "Allow": after an explicit confirmation it reads the project's current allowlist and PATCHes
// it with the host added (GET then PATCH /api/projects/{id}), so sandboxes of that project may
// reach the host from their next request on.

import { get, patch, segment } from './api.js';
import { badge, fill, h, table } from './dom.js';
import { ago, plural, shortId } from './format.js';
import { plausibleHost } from './event-model.js';

export function createRefusalsView({ state, model }, container) {
  /** `host\nprojectId` of the pair awaiting confirmation, if any. */
  let confirming = null;
  const status = h('p', { class: 'action-status', role: 'status', 'aria-live': 'polite' });
  const results = h('div', { class: 'results' });
  fill(container,
    h('p', { class: 'muted' }, 'Requests the proxy or the sandbox resolver refused, by host. Allowing a host adds it to the project\'s egress allowlist.'),
    status, results);

  function pairKey(host, projectId) {
    return `${host}\n${projectId}`;
  }

  async function allow(host, project) {
    status.className = 'action-status';
    status.textContent = `Allowing ${host} for ${project.name}…`;
    try {
      const current = await get('/api/projects/' + segment(project.id));
      const list = Array.isArray(current.egressAllowlist) ? current.egressAllowlist : [];
      if (list.includes(host)) {
        status.textContent = `${host} is already on the allowlist of ${project.name}.`;
      } else {
        const updated = await patch('/api/projects/' + segment(project.id), { egressAllowlist: [...list, host] });
        state.projects.set(updated.id, updated);
        status.textContent = `Allowed ${host} for ${project.name}: its sandboxes can reach it from their next request.`;
      }
    } catch (error) {
      status.className = 'action-status error';
      status.textContent = `Could not allow ${host} for ${project.name}: ${error.message}`;
    }
    confirming = null;
    render(true);
  }

  function allowControl(group, project) {
    const allowed = state.projects.get(project.id)?.egressAllowlist?.includes(group.host);
    if (allowed) return badge('allowed', 'allowed');
    if (!group.allowable) return h('span', { class: 'muted' }, 'not an allowlist refusal');
    if (!plausibleHost(group.host)) return h('span', { class: 'muted' }, 'not a host name');
    const key = pairKey(group.host, project.id);
    if (confirming === key) {
      return h('div', { class: 'confirm', role: 'group', 'aria-label': `Confirm allowing ${group.host}` },
        h('p', {}, 'Add ', h('code', {}, group.host), ' to the egress allowlist of ', h('strong', {}, project.name), '?'),
        h('button', {
          type: 'button', class: 'danger', dataset: { focusKey: 'confirm:' + key },
          on: { click: () => allow(group.host, project) },
        }, 'Confirm allow'),
        ' ',
        h('button', {
          type: 'button', dataset: { focusKey: 'cancel:' + key },
          on: { click: () => { confirming = null; status.textContent = ''; render(true, 'allow:' + key); } },
        }, 'Cancel'));
    }
    return h('button', {
      type: 'button', dataset: { focusKey: 'allow:' + key },
      'aria-label': `Allow ${group.host} for project ${project.name}`,
      on: { click: () => { confirming = key; render(true, 'confirm:' + key); } },
    }, `Allow for ${project.name}`);
  }

  /** Renders; while a confirmation is open only an explicit call (`force`) re-renders, so
   * arriving events do not move the buttons under the user's pointer or focus. */
  function render(force = false, focusKey = null) {
    if (confirming && !force) return;
    const groups = [...model.refusals.values()].sort((a, b) => b.last - a.last);
    const now = new Date();
    fill(results, table('Refusals by host', ['Host', 'Refusals', 'Last', 'Sandboxes', 'Why', 'Allow'],
      groups.map((group) => {
        const projects = new Map();
        for (const sandboxId of group.sandboxes) {
          const project = state.projectOf(sandboxId);
          if (project) projects.set(project.id, project);
        }
        return [
          h('code', { class: 'host' }, group.host),
          String(group.count),
          ago(group.last, now),
          [...group.sandboxes].slice(0, 3).map((id) => h('code', { title: id, class: 'chip' }, shortId(id))),
          h('span', { class: 'details' }, [...group.codes].join(', '),
            group.paths.length ? [h('br'), 'e.g. ', h('code', {}, group.paths[group.paths.length - 1])] : null),
          projects.size === 0
            ? h('span', { class: 'muted' }, 'no project')
            : [...projects.values()].map((project) => h('div', {}, allowControl(group, project))),
        ];
      }), { empty: 'No refusals seen in the last hour.' }),
    h('p', { class: 'muted' }, plural(groups.length, 'host')));
    if (focusKey) {
      const target = results.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
      target?.focus();
    }
  }

  return { render: () => render(false) };
}
