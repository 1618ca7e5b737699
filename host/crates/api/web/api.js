// The playground's only way to the server: the public /api routes, the
// same ones any client uses (documented at /api/openapi.json).
//
// An API token, when the server asks for one (401), is kept in
// sessionStorage (gone when the tab closes) and sent as
// `Authorization: Bearer <token>`.

const TOKEN_KEY = 'assay.apiToken';

/** An error answer of the API: `{message, code, field?}` plus the status. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.message) || `HTTP ${status}`;
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = (body && body.code) || 'http_error';
    this.field = body && body.field;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token.trim());
  else sessionStorage.removeItem(TOKEN_KEY);
}

let askForToken = null;

/**
 * Registers the function asked for a token on a 401: it gets the server's
 * message and resolves to true when a (new) token was entered.
 */
export function onUnauthorized(fn) {
  askForToken = fn;
}

function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function readBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  const type = resp.headers.get('content-type') || '';
  if (type.includes('json')) return JSON.parse(text);
  return { message: text };
}

/**
 * `api('GET', '/datasets')`; options: `json` (a body to send as JSON),
 * `body` + `contentType` (raw bytes), `signal`. Resolves to the parsed JSON;
 * rejects with an ApiError. A 401 asks for a token once and retries.
 */
export async function api(method, path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = authHeaders();
    let body = options.body;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.contentType) {
      headers['content-type'] = options.contentType;
    }
    const resp = await fetch(`/api${path}`, { method, headers, body, signal: options.signal });
    const data = await readBody(resp);
    if (resp.status === 401 && attempt === 0 && askForToken) {
      if (await askForToken(new ApiError(401, data).message)) continue;
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }
}

export const get = (path, options) => api('GET', path, options);
export const post = (path, json, options = {}) => api('POST', path, { ...options, json });
export const patch = (path, json, options = {}) => api('PATCH', path, { ...options, json });
export const del = (path, json, options = {}) => api('DELETE', path, { ...options, json });

/** `?a=1&b=2` from an object (empty values left out). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Every page of a list route (small lists only: plugins for a picker). */
export async function listAll(path, key, perPage = 100) {
  const out = [];
  for (let page = 0; ; page++) {
    const body = await get(`${path}${query({ page, perPage })}`);
    out.push(...body[key]);
    if (!body.pagination.hasMore) return out;
  }
}

let openapi = null;

/** Whether the server documents `method path` (routes added by newer servers). */
export async function hasRoute(method, path) {
  if (!openapi) openapi = get('/openapi.json').catch(() => ({ paths: {} }));
  const doc = await openapi;
  return !!(doc.paths && doc.paths[path] && doc.paths[path][method.toLowerCase()]);
}

/**
 * Reads a Server-Sent Events stream with fetch (so the Authorization header
 * goes along, which EventSource cannot send). Calls `onEvent(name, data,
 * id)` per event; reconnects after a dropped connection from the last id
 * seen; resolves when the server closes the stream after `end` or when
 * `signal` aborts.
 */
export async function streamEvents(path, { onEvent, signal, after }) {
  let lastId = after;
  let ended = false;
  for (let attempt = 0; !ended && !signal.aborted; attempt++) {
    const headers = authHeaders({ accept: 'text/event-stream' });
    if (lastId !== undefined) headers['last-event-id'] = String(lastId);
    let resp;
    try {
      resp = await fetch(`/api${path}`, { headers, signal });
    } catch (e) {
      if (signal.aborted) return;
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
      continue;
    }
    if (resp.status === 401 && askForToken) {
      const data = await readBody(resp);
      if (await askForToken(new ApiError(401, data).message)) continue;
      throw new ApiError(401, data);
    }
    if (!resp.ok) throw new ApiError(resp.status, await readBody(resp));
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { name: 'message', data: [], id: undefined };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let nl;
        while ((nl = buffer.search(/\r?\n/)) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + (buffer[nl] === '\r' ? 2 : 1));
          if (line === '') {
            if (event.data.length) {
              if (event.id !== undefined) lastId = event.id;
              if (event.name === 'end') ended = true;
              onEvent(event.name, JSON.parse(event.data.join('\n')), event.id);
            }
            event = { name: 'message', data: [], id: undefined };
          } else if (!line.startsWith(':')) {
            const colon = line.indexOf(':');
            const key = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (key === 'event') event.name = val;
            else if (key === 'data') event.data.push(val);
            else if (key === 'id') event.id = val;
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      if (attempt >= 5) throw e;
    }
    // Closed before `end` (server restart, proxy timeout): resume shortly.
    if (!ended && !signal.aborted) {
      if (attempt >= 5) throw new Error('the event stream keeps closing before the run ends');
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
  }
}
