// The playground's shell: hash routes, the page frame, the API-token
// dialog, error toasts and keyboard shortcuts. Pages live in pages/*.js and
// export `render(root, ctx)`.

import { ApiError, getToken, onUnauthorized, setToken } from './api.js';
import { h, replace, typing } from './dom.js';
import * as datasets from './pages/datasets.js';
import * as dataset from './pages/dataset.js';
import * as trigger from './pages/trigger.js';
import * as run from './pages/run.js';
import * as compare from './pages/compare.js';
import * as plugins from './pages/plugins.js';

const ROUTES = [
  [/^\/datasets$/, datasets, []],
  [/^\/datasets\/([^/]+)$/, dataset, ['datasetId']],
  [/^\/datasets\/([^/]+)\/trigger$/, trigger, ['datasetId']],
  [/^\/datasets\/([^/]+)\/runs\/([^/]+)$/, run, ['datasetId', 'runId']],
  [/^\/datasets\/([^/]+)\/compare$/, compare, ['datasetId']],
  [/^\/plugins$/, plugins, []],
  [/^\/plugins\/([^/]+)$/, plugins, ['pluginId']],
];

const view = document.getElementById('view');
const toasts = document.getElementById('toasts');
let current = null; // {controller, keys}

/** `#/datasets/x?tab=items` -> {path, query}. */
function location() {
  const hash = window.location.hash.replace(/^#/, '') || '/datasets';
  const [path, q = ''] = hash.split('?');
  return { path, query: Object.fromEntries(new URLSearchParams(q)) };
}

export function navigate(path, query = {}) {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
  const hash = `#${path}${q ? `?${q}` : ''}`;
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

/** Changes the query of the current route without re-rendering. */
function setQuery(query) {
  const { path } = location();
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();
  history.replaceState(null, '', `#${path}${q ? `?${q}` : ''}`);
}

/** Shows an error (or a message) for a few seconds. */
export function toast(message, kind = 'error') {
  const text = message instanceof Error ? message.message : String(message);
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', onclick: () => el.remove() }, text);
  toasts.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 10000 : 4000);
}

function route() {
  if (current) current.controller.abort();
  const { path, query } = location();
  const match = ROUTES.map(([re, page, names]) => [path.match(re), page, names]).find(([m]) => m);
  for (const a of document.querySelectorAll('nav.main a')) {
    a.classList.toggle('active', path.startsWith(a.getAttribute('href').slice(1)));
  }
  const controller = new AbortController();
  const keys = new Map();
  current = { controller, keys };
  if (!match) {
    replace(view, h('h1', {}, 'Not found'), h('p', {}, `No page at ${path}. `, h('a', { href: '#/datasets' }, 'Datasets')));
    return;
  }
  const [m, page, names] = match;
  const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
  const ctx = {
    params,
    query,
    signal: controller.signal,
    navigate,
    setQuery,
    toast,
    /** A page shortcut, cleared when the page is left. */
    onKey(key, description, fn) {
      keys.set(key, { description, fn });
    },
    /** Runs `promise`, showing its error unless the page was left. */
    guard(promise) {
      return promise.catch((e) => {
        if (!controller.signal.aborted && e.name !== 'AbortError') toast(e);
      });
    },
  };
  replace(view, h('p', { class: 'muted' }, 'Loading…'));
  ctx.guard(Promise.resolve().then(() => page.render(view, ctx)));
  view.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

// ---- API token ----

const tokenDialog = document.getElementById('token-dialog');
const tokenInput = document.getElementById('token-input');
const tokenReason = document.getElementById('token-reason');
let tokenWaiters = [];

function openTokenDialog(reason) {
  tokenReason.textContent = reason || 'The token is kept in this tab only (sessionStorage) and sent as Authorization: Bearer.';
  tokenInput.value = getToken();
  if (!tokenDialog.open) tokenDialog.showModal();
  tokenInput.focus();
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

function closeTokenDialog(saved) {
  if (tokenDialog.open) tokenDialog.close();
  for (const resolve of tokenWaiters) resolve(saved);
  tokenWaiters = [];
  updateTokenButton();
}

function updateTokenButton() {
  document.getElementById('token-button').textContent = getToken() ? 'API token ✓' : 'API token';
}

document.getElementById('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(tokenInput.value);
  closeTokenDialog(true);
});
document.getElementById('token-clear').addEventListener('click', () => {
  setToken('');
  tokenInput.value = '';
  closeTokenDialog(false);
});
document.getElementById('token-cancel').addEventListener('click', () => closeTokenDialog(false));
tokenDialog.addEventListener('cancel', () => closeTokenDialog(false));
document.getElementById('token-button').addEventListener('click', async () => {
  if (await openTokenDialog()) route();
});
onUnauthorized((message) => openTokenDialog(`The server asks for an API token: ${message}`));

// ---- keyboard ----

const GLOBAL_KEYS = [
  ['g d', 'go to datasets'],
  ['g p', 'go to plugins'],
  ['?', 'this help'],
  ['Esc', 'close a panel or dialog'],
];
const helpDialog = document.getElementById('help-dialog');

function showHelp() {
  const rows = [...GLOBAL_KEYS, ...[...(current ? current.keys : new Map())].map(([k, v]) => [k, v.description])];
  replace(document.getElementById('help-keys'), rows.map(([k, d]) => h('tr', {}, h('td', {}, h('kbd', {}, k)), h('td', {}, d))));
  helpDialog.showModal();
}
document.getElementById('help-close').addEventListener('click', () => helpDialog.close());
document.getElementById('help-button').addEventListener('click', showHelp);

let pendingG = false;
document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return;
  if (typing(e)) return;
  if (pendingG) {
    pendingG = false;
    if (e.key === 'd') return navigate('/datasets');
    if (e.key === 'p') return navigate('/plugins');
  }
  if (e.key === 'g') {
    pendingG = true;
    setTimeout(() => (pendingG = false), 1000);
    return;
  }
  if (e.key === '?') return showHelp();
  // Enter on a focused button or link keeps its own meaning.
  if (e.key === 'Enter' && e.target instanceof HTMLElement && e.target.closest('button, a, summary')) return;
  const handler = current && current.keys.get(e.key);
  if (handler) {
    e.preventDefault();
    handler.fn(e);
  }
});

// Unexpected failures are shown, not left in the console.
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  if (e.reason instanceof ApiError || e.reason instanceof Error) toast(e.reason);
});

async function health() {
  try {
    const resp = await fetch('/health');
    const body = await resp.json();
    document.getElementById('server').textContent = `assay ${body.version || ''} · ${body.database || ''}`;
  } catch {
    document.getElementById('server').textContent = 'server unreachable';
  }
}

window.addEventListener('hashchange', route);
updateTokenButton();
health();
route();
