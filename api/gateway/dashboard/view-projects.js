// Projects and their secrets: allowlist, and per secret its allowed hosts, version, last
// change and last use. Names, hosts and versions come from GET /api/projects and
// GET /api/projects/{id}/secrets (the API never returns a value); "last used" comes from the
// secret_used events this page has seen (replayed for the last hour on opening, then live).

import { fill, h, table } from './dom.js';
import { ago } from './format.js';

export function createProjectsView({ state, model }, container) {
  const results = h('div', { class: 'results' });
  fill(container, results);

  function render() {
    const error = state.errors.get('projects');
    const projects = [...state.projects.values()].sort((a, b) => a.name.localeCompare(b.name));
    const now = new Date();
    fill(results,
      error ? h('p', { class: 'error', role: 'alert' }, `Projects could not be loaded: ${error}`) : null,
      projects.length === 0
        ? h('p', { class: 'empty' }, state.loaded.has('projects') ? 'No projects yet.' : 'Loading…')
        : projects.map((project) => {
          const sandboxIds = state.sandboxesOf(project.id);
          const running = sandboxIds.filter((id) => state.sandboxes.get(id)?.status === 'running').length;
          const secrets = state.secrets.get(project.id) ?? [];
          return h('article', { class: 'card', 'aria-labelledby': `project-${project.id}` },
            h('h3', { id: `project-${project.id}` }, project.name),
            h('p', { class: 'muted' }, `${running} running sandbox${running === 1 ? '' : 'es'} · ${project.cpuCount} CPU · ${project.memoryMB} MiB · ${project.timeoutSec}s`),
            h('p', {}, h('strong', {}, 'Egress allowlist: '),
              project.egressAllowlist.length === 0
                ? h('span', { class: 'muted' }, 'empty (no egress)')
                : project.egressAllowlist.map((host) => h('code', { class: 'chip' }, host))),
            table(`Secrets of ${project.name}`, ['Secret', 'Allowed hosts', 'Version', 'Updated', 'Last used'],
              secrets.map((secret) => {
                const used = model.lastUsedOf(secret.name, sandboxIds);
                return [
                  h('code', {}, secret.name),
                  secret.allowedHosts === null || secret.allowedHosts === undefined
                    ? h('span', { class: 'muted' }, 'project allowlist')
                    : secret.allowedHosts.map((host) => h('code', { class: 'chip' }, host)),
                  String(secret.version),
                  ago(new Date(secret.updatedAt), now),
                  used ? ago(used, now) : h('span', { class: 'muted' }, 'not in the last hour'),
                ];
              }), { empty: 'No secrets.' }));
        }));
  }

  return { render };
}
