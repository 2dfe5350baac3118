// Workers from GET /api/workers (polled): liveness, last heartbeat, isolation, total capacity
// and how many of this org's sandboxes run there. Shared workers never show other orgs' usage.

import { badge, fill, h, table } from './dom.js';
import { ago } from './format.js';

export function createWorkersView({ state }, container) {
  const results = h('div', { class: 'results' });
  fill(container, results);

  function render() {
    const now = new Date();
    const error = state.errors.get('workers');
    fill(results,
      error ? h('p', { class: 'error', role: 'alert' }, `Workers could not be loaded: ${error}`) : null,
      table('Workers', ['Worker', 'Status', 'Isolation', 'Last heartbeat', 'Capacity', 'Your sandboxes'], state.workers.map((worker) => [
        h('code', {}, worker.workerID),
        badge(worker.status),
        worker.isolation === 'netns' ? 'netns (enforced)' : badge(worker.isolation, 'warning'),
        ago(new Date(worker.lastHeartbeatAt), now),
        `${worker.capacity.sandboxes} sandboxes · ${worker.capacity.cpuCount} CPU · ${Math.round(worker.capacity.memoryMB / 1024)} GiB`,
        String(worker.yourSandboxes),
      ]), { empty: state.loaded.has('workers') ? 'No worker has sent a heartbeat.' : 'Loading…' }));
  }

  return { render };
}
