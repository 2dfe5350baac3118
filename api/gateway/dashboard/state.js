// What the dashboard loaded from the REST API: sandboxes, projects and their secrets (names,
// hosts, versions — the API never returns values), sagas in flight and workers. Loaders keep
// the last good answer and the last error of each part, so a failed refresh shows a message
// instead of emptying the view.

import { get, list, segment } from './api.js';

export class DashboardState {
  constructor() {
    this.sandboxes = new Map();
    this.projects = new Map();
    this.secrets = new Map();
    this.sagas = [];
    this.workers = [];
    this.errors = new Map();
    this.loaded = new Set();
    this.listeners = new Set();
    this.pendingSandboxes = new Map();
    this.running = new Map();
  }

  subscribe(listener) {
    this.listeners.add(listener);
  }

  changed(part) {
    for (const listener of this.listeners) listener(part);
  }

  /** Runs a loader; a call while the same part is loading runs it once more afterwards
   * (bursts of events cost one extra load, not one each). */
  async guard(part, load) {
    const running = this.running.get(part);
    if (running) {
      running.again = true;
      return running.promise;
    }
    const entry = { again: false, promise: null };
    entry.promise = (async () => {
      do {
        entry.again = false;
        try {
          await load();
          this.errors.delete(part);
          this.loaded.add(part);
        } catch (error) {
          this.errors.set(part, error.message);
        }
        this.changed(part);
      } while (entry.again);
      this.running.delete(part);
    })();
    this.running.set(part, entry);
    return entry.promise;
  }

  loadSandboxes() {
    return this.guard('sandboxes', async () => {
      const sandboxes = await list('/api/sandboxes');
      this.sandboxes = new Map(sandboxes.map((sandbox) => [sandbox.sandboxID, sandbox]));
    });
  }

  /** Refreshes one sandbox (an event named it); coalesces bursts for the same id. */
  refreshSandbox(id) {
    if (typeof id !== 'string' || !/^sbx_[0-9a-f]{32}$/.test(id)) return;
    if (this.pendingSandboxes.has(id)) return;
    const pending = new Promise((resolve) => setTimeout(resolve, 150))
      .then(() => get('/api/sandboxes/' + segment(id)))
      .then((sandbox) => {
        this.sandboxes.set(sandbox.sandboxID, sandbox);
        this.changed('sandboxes');
      })
      .catch(() => {})
      .finally(() => this.pendingSandboxes.delete(id));
    this.pendingSandboxes.set(id, pending);
  }

  loadProjects() {
    return this.guard('projects', async () => {
      const projects = await list('/api/projects');
      const secrets = new Map();
      await Promise.all(projects.map(async (project) => {
        secrets.set(project.id, await list('/api/projects/' + segment(project.id) + '/secrets'));
      }));
      this.projects = new Map(projects.map((project) => [project.id, project]));
      this.secrets = secrets;
    });
  }

  loadSagas() {
    return this.guard('sagas', async () => {
      this.sagas = await get('/api/sagas');
    });
  }

  loadWorkers() {
    return this.guard('workers', async () => {
      this.workers = await get('/api/workers');
    });
  }

  /** The project a sandbox belongs to (id and name), when known. */
  projectOf(sandboxId) {
    const sandbox = this.sandboxes.get(sandboxId);
    if (!sandbox?.projectId) return null;
    const project = this.projects.get(sandbox.projectId);
    return { id: sandbox.projectId, name: project?.name ?? sandbox.project ?? sandbox.projectId };
  }

  /** Ids of the sandboxes of a project. */
  sandboxesOf(projectId) {
    const ids = [];
    for (const sandbox of this.sandboxes.values()) {
      if (sandbox.projectId === projectId) ids.push(sandbox.sandboxID);
    }
    return ids;
  }
}
