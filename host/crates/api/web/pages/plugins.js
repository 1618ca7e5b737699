// Plugins: the registered targets and scorers, uploading a .wasm component
// (a refusal shows the loader's exact message), and one plugin's details.

import { ApiError, api, del, get, query } from '../api.js';
import { field, h, pager, replace, rowCursor } from '../dom.js';
import { bytes, when } from '../format.js';

export async function render(root, ctx) {
  if (ctx.params.pluginId) return detail(root, ctx, ctx.params.pluginId);
  const page = Number(ctx.query.page || 0);
  const file = h('input', { type: 'file', id: 'plugin-file', accept: '.wasm,application/wasm' });
  const outcome = h('div', { id: 'upload-outcome' });
  const upload = h('button', { class: 'primary', id: 'plugin-upload', type: 'submit' }, 'Upload');
  const form = h('form', { class: 'card' }, h('h2', {}, 'Upload a plugin'),
    h('p', { class: 'muted' }, 'A WASI component built against the assay plugin contract (see plugin-sdk/README.md). It is loaded in the sandbox and registered under the id its info() reports, replacing a plugin with the same id.'),
    h('div', { class: 'bar' }, field('Component (.wasm)', file), upload), outcome);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) {
      replace(outcome, h('p', { class: 'error-text' }, 'Choose a .wasm file first.'));
      return;
    }
    ctx.guard((async () => {
      upload.disabled = true;
      replace(outcome, h('p', { class: 'muted' }, `Loading ${f.name} in the sandbox…`));
      try {
        const record = await api('POST', '/plugins', { body: await f.arrayBuffer(), contentType: 'application/wasm' });
        replace(outcome, h('p', { id: 'upload-ok' }, `Registered `, h('a', { href: `#/plugins/${encodeURIComponent(record.id)}` }, record.id), ` (${record.kind}, ${bytes(record.size)}).`));
        await list();
      } catch (err) {
        if (!(err instanceof ApiError) || err.status === 401) throw err;
        replace(outcome, h('h3', { class: 'error-text' }, `Refused (${err.status} ${err.code})`), h('pre', { class: 'error', id: 'upload-error' }, err.message));
      } finally {
        upload.disabled = false;
      }
    })());
  });
  const listEl = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  replace(root, h('h1', {}, 'Plugins'), listEl, form);
  ctx.onKey('u', 'upload a plugin', () => file.focus());

  let tbody = null;
  const cursor = rowCursor(ctx, () => tbody, (i, row) => ctx.navigate(row.dataset.href));
  const list = async () => {
    const body = await get(`/plugins${query({ page, perPage: 50 })}`, { signal: ctx.signal });
    tbody = h('tbody', {}, body.plugins.map((p, i) => {
      const href = `/plugins/${encodeURIComponent(p.id)}`;
      return h('tr', { class: 'clickable', dataset: { row: i, href, pluginId: p.id }, onclick: () => ctx.navigate(href) },
        h('td', {}, h('a', { href: `#${href}` }, p.id)),
        h('td', {}, p.kind),
        h('td', {}, p.name),
        h('td', { class: 'muted' }, p.description),
        h('td', { class: 'num' }, bytes(p.size)),
        h('td', {}, when(p.createdAt)));
    }));
    replace(listEl, body.plugins.length ? h('table', { class: 'data', id: 'plugins-table' },
      h('colgroup', {}, h('col', { css: { width: '11rem' } }), h('col', { css: { width: '5rem' } }), h('col', { css: { width: '12rem' } }), h('col'), h('col', { css: { width: '6rem' } }), h('col', { css: { width: '12rem' } })),
      h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Kind'), h('th', {}, 'Name'), h('th', {}, 'Description'), h('th', { class: 'num' }, 'Size'), h('th', {}, 'Registered'))),
      tbody) : h('div', { class: 'card empty' }, 'No plugin registered.'),
    pager(body.pagination, (p) => ctx.navigate('/plugins', { page: p })));
    cursor.reset();
  };
  await list();
}

async function detail(root, ctx, id) {
  const p = await get(`/plugins/${encodeURIComponent(id)}`, { signal: ctx.signal });
  const remove = async () => {
    if (!window.confirm(`Unregister plugin ${p.id}?`)) return;
    await del(`/plugins/${encodeURIComponent(p.id)}`);
    ctx.toast(`Plugin ${p.id} unregistered`, 'info');
    ctx.navigate('/plugins');
  };
  const row = (k, v) => h('tr', {}, h('th', {}, k), h('td', { class: 'mono' }, v));
  replace(root,
    h('div', { class: 'crumbs' }, h('a', { href: '#/plugins' }, 'Plugins'), ' / '),
    h('div', { class: 'bar' }, h('h1', { class: 'grow' }, p.id, ' ', h('small', { class: 'muted' }, p.kind)), h('button', { class: 'danger', onclick: () => ctx.guard(remove()) }, 'Unregister')),
    h('p', {}, p.name, ' — ', h('span', { class: 'muted' }, p.description)),
    p.loadError ? h('pre', { class: 'error' }, p.loadError) : null,
    h('table', { class: 'data', id: 'plugin-detail' },
      h('colgroup', {}, h('col', { css: { width: '12rem' } }), h('col')),
      h('tbody', {},
        row('digest', p.digest), row('contract', p.contractVersion), row('size', bytes(p.size)), row('registered', when(p.createdAt)),
        row('world', p.world || '–'),
        row('exports', (p.exports || []).join('\n') || '–'),
        row('imports', (p.imports || []).join('\n') || '–'))));
}
