// The dashboard's entry point: sign-in (the key goes to session storage, never to a URL), the
// views and their routing (#overview, #sandboxes, …), the event stream that keeps them live,
// and the polls of the parts no event announces (sagas, workers, secrets).

import { ApiError, list, onUnauthorized } from './api.js';
import { followEvents } from './event-stream.js';
import { EventModel, parseFrame } from './event-model.js';
import { apiKey, forget, remember } from './session.js';
import { DashboardState } from './state.js';
import { createFeedView } from './view-feed.js';
import { createOverviewView } from './view-overview.js';
import { createProjectsView } from './view-projects.js';
import { createRefusalsView } from './view-refusals.js';
import { createSagasView } from './view-sagas.js';
import { createSandboxesView } from './view-sandboxes.js';
import { createWorkersView } from './view-workers.js';

const VIEWS = {
  overview: createOverviewView,
  sandboxes: createSandboxesView,
  projects: createProjectsView,
  events: createFeedView,
  refusals: createRefusalsView,
  sagas: createSagasView,
  workers: createWorkersView,
};
const REPLAY_MINUTES = 60;
const RENDER_EVERY_MS = 250;

const byId = (id) => document.getElementById(id);

function showSignIn(message = '') {
  byId('sign-in').hidden = false;
  byId('app').hidden = true;
  byId('sign-out').hidden = true;
  byId('connection').hidden = true;
  byId('sign-in-error').textContent = message;
  byId('api-key').focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = byId('api-key');
  const key = input.value.trim();
  const error = byId('sign-in-error');
  if (!key) {
    error.textContent = 'Enter an API key (it starts with osk_).';
    input.focus();
    return;
  }
  remember(key);
  try {
    await list('/api/projects');
  } catch (failure) {
    forget();
    error.textContent = failure instanceof ApiError && (failure.status === 401 || failure.status === 403)
      ? 'That key was refused: it is unknown or revoked. Check it, or create one with `osbd admin create-org`.'
      : `Could not sign in: ${failure.message}`;
    input.focus();
    return;
  }
  // The key is kept in session storage only: it leaves the page.
  input.value = '';
  start();
}

function signOut(message) {
  forget();
  if (message) sessionStorage.setItem('opensandbox.signOutReason', message);
  // A reload drops everything this page learned (state, events) along with the key.
  history.replaceState(null, '', location.pathname);
  location.reload();
}

function start() {
  byId('sign-in').hidden = true;
  byId('app').hidden = false;
  byId('sign-out').hidden = false;
  const connection = byId('connection');
  connection.hidden = false;

  const state = new DashboardState();
  const model = new EventModel();
  const context = { state, model };
  const views = {};
  for (const [name, create] of Object.entries(VIEWS)) {
    views[name] = create(context, byId(`${name}-body`));
  }

  let current = null;
  function route() {
    const wanted = location.hash.slice(1);
    const name = VIEWS[wanted] ? wanted : 'overview';
    for (const other of Object.keys(VIEWS)) {
      byId(`view-${other}`).hidden = other !== name;
    }
    for (const link of document.querySelectorAll('nav.tabs a')) {
      if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const switched = current !== null && current !== name;
    current = name;
    renderNow();
    if (switched) byId(`h-${name}`).focus();
  }

  /** Renders the visible view, keeping focus on the same control when it is rebuilt. */
  function renderNow() {
    const active = document.activeElement;
    const focusKey = active?.dataset?.focusKey;
    views[current].render();
    if (focusKey && !document.activeElement?.dataset?.focusKey) {
      document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
    }
  }

  let scheduled = false;
  function scheduleRender() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => { scheduled = false; renderNow(); }, RENDER_EVERY_MS);
  }

  state.subscribe(scheduleRender);
  model.subscribe((event) => {
    if (event?.sandboxId && (event.category === 'lifecycle' || event.category === 'saga')) {
      state.refreshSandbox(event.sandboxId);
    }
    if (event && !state.sandboxes.has(event.sandboxId) && event.sandboxId) state.refreshSandbox(event.sandboxId);
    if (event?.category === 'saga') state.loadSagas();
    if (event?.category === 'project') state.loadProjects();
    scheduleRender();
  });

  onUnauthorized(() => signOut('The server refused the key (revoked?). Sign in again.'));
  for (const heading of document.querySelectorAll('.view h2')) heading.setAttribute('tabindex', '-1');
  window.addEventListener('hashchange', route);
  route();

  const stop = new AbortController();
  byId('sign-out').addEventListener('click', () => { stop.abort(); signOut(); });
  const statusText = {
    connecting: 'Connecting to events…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    stopped: 'Stopped',
  };
  followEvents({
    since: new Date(Date.now() - REPLAY_MINUTES * 60000).toISOString(),
    signal: stop.signal,
    onStatus: (status) => {
      connection.textContent = statusText[status] ?? status;
      connection.dataset.state = status;
    },
    onRefused: () => signOut('The server refused the key (revoked?). Sign in again.'),
    onFrame: (frame) => {
      if (frame.event === 'osb.replay.truncated') {
        let detail = frame.data;
        try { detail = JSON.parse(frame.data).detail; } catch { /* keep the raw text */ }
        model.notice(detail);
        return;
      }
      const event = parseFrame(frame);
      if (event) model.add(event);
    },
  });

  state.loadSandboxes();
  state.loadProjects();
  state.loadSagas();
  state.loadWorkers();
  setInterval(() => { state.loadSagas(); state.loadWorkers(); }, 5000);
  setInterval(() => state.loadProjects(), 30000);
  setInterval(() => state.loadSandboxes(), 60000);
  // Ages ("3m ago") move on even without events.
  setInterval(scheduleRender, 10000);
}

function boot() {
  byId('sign-in-form').addEventListener('submit', signIn);
  const reason = sessionStorage.getItem('opensandbox.signOutReason');
  sessionStorage.removeItem('opensandbox.signOutReason');
  if (apiKey()) start();
  else showSignIn(reason ?? '');
}

boot();
