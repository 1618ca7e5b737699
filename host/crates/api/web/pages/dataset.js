// One dataset: items (search, paging, inline edit, delete, history),
// runs (pick two to compare), versions, and importing a file.

import { ApiError, del, get, patch, post, query } from '../api.js';
import { debounce, field, h, pager, replace, rowCursor } from '../dom.js';
import { clip, number, parseLoose, pretty, text, when } from '../format.js';
import { FileError, parseDatasetFile } from '../import.js';

const PER_PAGE = 50;
const TABS = [['items', 'Items'], ['runs', 'Runs'], ['versions', 'Versions'], ['import', 'Import']];

export async function render(root, ctx) {
  const id = ctx.params.datasetId;
  const base = `/datasets/${encodeURIComponent(id)}`;
  const tab = TABS.some(([t]) => t === ctx.query.tab) ? ctx.query.tab : 'items';
  const ds = await get(base, { signal: ctx.signal });
  const content = h('div', { id: `tab-${tab}` });
  const header = h('div', {},
    h('div', { class: 'crumbs' }, h('a', { href: '#/datasets' }, 'Datasets'), ' / '),
    h('div', { class: 'bar' },
      h('h1', { class: 'grow' }, ds.name, ' ', h('small', { class: 'muted' }, `v${ds.version} · ${number(ds.itemCount)} items`)),
      h('a', { class: 'button primary', href: `#${base}/trigger`, id: 'new-run' }, 'New run'),
      h('button', { class: 'danger', onclick: () => ctx.guard(deleteDataset(ctx, ds)) }, 'Delete dataset')),
    ds.description ? h('p', { class: 'muted' }, ds.description) : null,
    h('nav', { class: 'tabs' }, TABS.map(([t, label], i) =>
      h('a', { href: `#${base}?tab=${t}`, class: t === tab ? 'active' : '', title: `${label} (${i + 1})` }, label))));
  TABS.forEach(([t], i) => ctx.onKey(String(i + 1), `${t} tab`, () => ctx.navigate(base, { tab: t })));
  ctx.onKey('r', 'new run', () => ctx.navigate(`${base}/trigger`));
  replace(root, header, content);
  if (tab === 'items') await itemsTab(content, ctx, ds);
  else if (tab === 'runs') await runsTab(content, ctx, ds);
  else if (tab === 'versions') await versionsTab(content, ctx, ds);
  else importTab(content, ctx, ds);
}

async function deleteDataset(ctx, ds) {
  if (!window.confirm(`Delete dataset "${ds.name}" with its items, history and runs?`)) return;
  await del(`/datasets/${encodeURIComponent(ds.id)}`);
  ctx.toast(`Dataset ${ds.name} deleted`, 'info');
  ctx.navigate('/datasets');
}

// ---- items ----

function jsonArea(value, id, placeholder) {
  return h('textarea', { class: 'json', id, spellcheck: 'false', placeholder, value: value === undefined || value === null ? '' : pretty(value) });
}

async function itemsTab(root, ctx, ds) {
  const base = `/datasets/${encodeURIComponent(ds.id)}`;
  const version = ctx.query.version;
  const searchBox = h('input', { type: 'search', id: 'item-search', placeholder: 'Search input or expected output  ( / )', value: ctx.query.search || '', css: { width: '24rem' } });
  ctx.onKey('/', 'search', () => searchBox.focus());
  const table = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const adder = h('div');
  const addButton = version ? null : h('button', { id: 'add-item', onclick: () => showAdder(adder, ctx, ds) }, 'Add item');
  ctx.onKey('a', 'add an item', () => addButton && showAdder(adder, ctx, ds));
  replace(root,
    h('div', { class: 'bar' }, searchBox, h('span', { class: 'grow' }),
      version ? h('span', { class: 'muted' }, `Items as of version ${version} (read only) · `, h('a', { href: `#${base}?tab=items` }, 'live items')) : null,
      addButton),
    adder, table);

  let tbody;
  const cursor = rowCursor(ctx, () => tbody, (i, row) => row.querySelector('button.edit')?.click());
  let loading = null;
  // Loads one page into the table in place (the search box keeps focus).
  const load = async (page) => {
    if (loading) loading.abort();
    const controller = new AbortController();
    loading = controller;
    ctx.signal.addEventListener('abort', () => controller.abort());
    const search = searchBox.value;
    const body = await get(`${base}/items${query({ page, perPage: PER_PAGE, search, version })}`, { signal: controller.signal });
    ctx.setQuery({ tab: 'items', page, search, version });
    ctx.onKey('n', 'next page', () => body.pagination.hasMore && ctx.guard(load(page + 1)));
    ctx.onKey('p', 'previous page', () => page > 0 && ctx.guard(load(page - 1)));
    if (!body.items.length) {
      tbody = null;
      replace(table, h('div', { class: 'card empty' }, search ? `No item matches "${search}".` : h('span', {}, 'No items. ', h('a', { href: `#${base}?tab=import` }, 'Import a file'), ' or add one.')));
      return;
    }
    tbody = h('tbody', {}, body.items.map((item, i) => itemRow(item, i, ctx, ds, !!version)));
    replace(table,
      h('table', { class: 'data', id: 'items-table' },
        h('colgroup', {}, h('col', { css: { width: '4.5rem' } }), h('col'), h('col'), h('col', { css: { width: '18%' } }), h('col', { css: { width: '13.5rem' } })),
        h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), h('th', {}, 'Input'), h('th', {}, 'Expected output'), h('th', {}, 'Context'), h('th', {}, ''))),
        tbody),
      pager(body.pagination, (p) => ctx.guard(load(p))));
    cursor.reset();
  };
  searchBox.addEventListener('input', debounce(() => ctx.guard(load(0)), 250));
  await load(Number(ctx.query.page || 0));
}

function itemRow(item, i, ctx, ds, readOnly) {
  const row = h('tr', { dataset: { row: i, itemId: item.id } });
  const show = () => replace(row,
    h('td', { class: 'num muted' }, String(item.position + 1)),
    h('td', { class: 'cell', title: text(item.input) }, clip(text(item.input), 160)),
    h('td', { class: 'cell', title: text(item.expectedOutput) }, clip(text(item.expectedOutput), 160)),
    h('td', { class: 'cell muted', title: text(item.context) }, clip(text(item.context), 80)),
    h('td', {},
      readOnly ? null : h('button', { class: 'small edit', onclick: edit, title: 'Edit (Enter)' }, 'Edit'), ' ',
      h('button', { class: 'small', onclick: () => ctx.guard(showHistory(ctx, ds, item)) }, 'History'), ' ',
      readOnly ? null : h('button', { class: 'small danger', onclick: () => ctx.guard(remove()) }, 'Delete')));
  const edit = () => {
    const input = jsonArea(item.input, `edit-input-${i}`, 'input (JSON or text)');
    const expected = jsonArea(item.expectedOutput, `edit-expected-${i}`, 'expected output (empty: none)');
    const context = jsonArea(item.context, `edit-context-${i}`, 'context (JSON object, empty: none)');
    const save = () => ctx.guard((async () => {
      const body = { input: parseLoose(input.value) };
      if (body.input === undefined) throw new Error('the input must not be empty');
      body.expectedOutput = parseLoose(expected.value) ?? null;
      body.context = parseLoose(context.value) ?? null;
      item = await patch(`/datasets/${encodeURIComponent(ds.id)}/items/${encodeURIComponent(item.id)}`, body);
      ctx.toast('Item saved (new dataset version)', 'info');
      show();
    })());
    for (const area of [input, expected, context]) {
      area.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          save();
        } else if (e.key === 'Escape') {
          e.preventDefault();
          show();
        }
      });
    }
    replace(row,
      h('td', { class: 'num muted' }, String(item.position + 1)),
      h('td', {}, input), h('td', {}, expected), h('td', {}, context),
      h('td', {},
        h('button', { class: 'small primary save', onclick: save, title: 'Save (Ctrl+Enter)' }, 'Save'), ' ',
        h('button', { class: 'small', onclick: show, title: 'Cancel (Esc)' }, 'Cancel')));
    input.focus();
  };
  const remove = async () => {
    if (!window.confirm(`Delete item #${item.position + 1}?`)) return;
    await del(`/datasets/${encodeURIComponent(ds.id)}/items/${encodeURIComponent(item.id)}`);
    row.remove();
    ctx.toast('Item deleted (new dataset version)', 'info');
  };
  show();
  return row;
}

function showAdder(root, ctx, ds) {
  const input = jsonArea(undefined, 'new-input', 'input (JSON or text)');
  const expected = jsonArea(undefined, 'new-expected', 'expected output (optional)');
  const context = jsonArea(undefined, 'new-context', 'context (optional JSON object)');
  const form = h('form', { class: 'card' },
    h('h3', {}, 'New item'),
    h('div', { class: 'grid3' }, field('Input', input), field('Expected output', expected), field('Context', context)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add'), h('button', { type: 'button', onclick: () => replace(root) }, 'Cancel')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.guard((async () => {
      const body = { input: parseLoose(input.value) };
      if (body.input === undefined) throw new Error('the input must not be empty');
      const exp = parseLoose(expected.value);
      if (exp !== undefined) body.expectedOutput = exp;
      const c = parseLoose(context.value);
      if (c !== undefined) body.context = c;
      await post(`/datasets/${encodeURIComponent(ds.id)}/items`, body);
      ctx.toast('Item added', 'info');
      ctx.navigate(`/datasets/${encodeURIComponent(ds.id)}`, { tab: 'items', page: Math.floor(ds.itemCount / PER_PAGE) });
    })());
  });
  replace(root, form);
  input.focus();
}

async function showHistory(ctx, ds, item) {
  const body = await get(`/datasets/${encodeURIComponent(ds.id)}/items/${encodeURIComponent(item.id)}/versions${query({ perPage: 50 })}`);
  const close = () => panel.remove();
  const panel = h('aside', { class: 'panel', id: 'item-history', role: 'dialog', 'aria-label': 'Item history' },
    h('div', { class: 'bar' }, h('h2', { class: 'grow' }, `History of item #${item.position + 1}`), h('button', { onclick: close }, 'Close (Esc)')),
    h('p', { class: 'muted' }, `${body.pagination.total} version(s), newest first.`),
    body.versions.map((v) => h('div', { class: 'card' },
      h('div', { class: 'bar' }, h('b', {}, `Version ${v.versionNumber}`), h('span', { class: 'muted' }, `dataset v${v.datasetVersion} · ${when(v.createdAt)}`), v.isDeleted ? h('span', { class: 'status failed' }, 'deleted') : null),
      h('div', { class: 'grid2' },
        h('div', {}, h('small', { class: 'muted' }, 'input'), h('pre', {}, pretty(v.snapshot.input))),
        h('div', {}, h('small', { class: 'muted' }, 'expected output'), h('pre', {}, pretty(v.snapshot.expectedOutput) || '–'))))));
  document.querySelector('#item-history')?.remove();
  document.body.append(panel);
  panel.addEventListener('keydown', (e) => e.key === 'Escape' && close());
  ctx.signal.addEventListener('abort', close);
  ctx.onKey('Escape', 'close the panel', close);
  panel.querySelector('button').focus();
}

// ---- runs ----

async function runsTab(root, ctx, ds) {
  const base = `/datasets/${encodeURIComponent(ds.id)}`;
  const page = Number(ctx.query.page || 0);
  const body = await get(`${base}/runs${query({ page, perPage: 25 })}`, { signal: ctx.signal });
  if (!body.runs.length) {
    replace(root, h('div', { class: 'card empty' }, 'No run yet. ', h('a', { href: `#${base}/trigger` }, 'Start one'), '.'));
    return;
  }
  const picked = new Set();
  const compareButton = h('button', { class: 'primary', id: 'compare-runs', disabled: true, onclick: () => {
    const [a, b] = [...picked];
    ctx.navigate(`${base}/compare`, { a, b });
  } }, 'Compare 2 selected');
  let tbody;
  const cursor = rowCursor(ctx, () => tbody, (i, row) => ctx.navigate(row.dataset.href));
  tbody = h('tbody', {}, body.runs.map((r, i) => {
    const href = `${base}/runs/${encodeURIComponent(r.id)}`;
    const box = h('input', { type: 'checkbox', 'aria-label': `select run ${r.id}`, class: 'pick', onchange: () => {
      if (box.checked) picked.add(r.id);
      else picked.delete(r.id);
      compareButton.disabled = picked.size !== 2;
    } });
    box.addEventListener('click', (e) => e.stopPropagation());
    return h('tr', { class: 'clickable', dataset: { row: i, href, runId: r.id }, onclick: () => ctx.navigate(href) },
      h('td', {}, box),
      h('td', { class: 'mono' }, h('a', { href: `#${href}` }, r.id.slice(0, 13))),
      h('td', {}, h('span', { class: `status ${r.status}` }, r.status)),
      h('td', {}, r.targetId),
      h('td', { class: 'muted' }, (r.scorerIds || []).join(', ')),
      h('td', { class: 'num' }, `${number(r.succeededCount + r.failedCount)} / ${number(r.totalItems)}`),
      h('td', { class: 'num' }, number(r.failedCount)),
      h('td', { class: 'num' }, `v${r.datasetVersion}`),
      h('td', {}, when(r.createdAt)));
  }));
  const go = (p) => ctx.navigate(base, { tab: 'runs', page: p });
  replace(root,
    h('div', { class: 'bar' }, h('span', { class: 'muted grow' }, 'Tick two runs to compare them.'), compareButton),
    h('table', { class: 'data', id: 'runs-table' },
      h('colgroup', {}, h('col', { css: { width: '2.5rem' } }), h('col', { css: { width: '9rem' } }), h('col', { css: { width: '7rem' } }), h('col', { css: { width: '9rem' } }), h('col'), h('col', { css: { width: '9rem' } }), h('col', { css: { width: '5rem' } }), h('col', { css: { width: '5rem' } }), h('col', { css: { width: '12rem' } })),
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Run'), h('th', {}, 'Status'), h('th', {}, 'Target'), h('th', {}, 'Scorers'), h('th', { class: 'num' }, 'Done'), h('th', { class: 'num' }, 'Failed'), h('th', { class: 'num' }, 'Version'), h('th', {}, 'Created'))),
      tbody),
    pager(body.pagination, go));
  cursor.reset();
}

// ---- versions ----

async function versionsTab(root, ctx, ds) {
  const base = `/datasets/${encodeURIComponent(ds.id)}`;
  const page = Number(ctx.query.page || 0);
  const body = await get(`${base}/versions${query({ page, perPage: 25 })}`, { signal: ctx.signal });
  const go = (p) => ctx.navigate(base, { tab: 'versions', page: p });
  replace(root,
    h('table', { class: 'data', id: 'versions-table' },
      h('colgroup', {}, h('col', { css: { width: '7rem' } }), h('col'), h('col', { css: { width: '13rem' } }), h('col', { css: { width: '9rem' } })),
      h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Change'), h('th', {}, 'When'), h('th', {}, ''))),
      h('tbody', {}, body.versions.map((v) => h('tr', {},
        h('td', {}, `v${v.version}`), h('td', {}, v.change), h('td', {}, when(v.createdAt)),
        h('td', {}, h('a', { href: `#${base}?tab=items&version=${v.version}` }, 'items then')))))),
    pager(body.pagination, go));
}

// ---- import ----

function importTab(root, ctx, ds) {
  const base = `/datasets/${encodeURIComponent(ds.id)}`;
  const input = h('input', { type: 'file', id: 'import-file', accept: '.jsonl,.ndjson,.csv,.tsv,.json' });
  const out = h('div');
  input.addEventListener('change', () => {
    const file = input.files[0];
    if (file) ctx.guard(preview(file));
  });
  const preview = async (file) => {
    replace(out, h('p', { class: 'muted' }, `Reading ${file.name}…`));
    let items;
    try {
      items = parseDatasetFile(file.name, await file.text());
    } catch (e) {
      if (!(e instanceof FileError)) throw e;
      replace(out, h('h3', {}, 'Nothing imported: the file has errors'), h('pre', { class: 'error', id: 'import-error' }, e.message));
      return;
    }
    if (!items.length) {
      replace(out, h('pre', { class: 'error', id: 'import-error' }, `${file.name}: no items`));
      return;
    }
    const go = h('button', { class: 'primary', id: 'import-confirm', onclick: () => ctx.guard(send(items, go)) }, `Import ${number(items.length)} items`);
    replace(out,
      h('h3', {}, `${file.name}: ${number(items.length)} items`),
      h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Input'), h('th', {}, 'Expected output'), h('th', {}, 'Context'))),
        h('tbody', {}, items.slice(0, 5).map((it) => h('tr', {},
          h('td', { class: 'cell' }, clip(text(it.input), 120)), h('td', { class: 'cell' }, clip(text(it.expectedOutput), 120)), h('td', { class: 'cell muted' }, clip(text(it.context), 60)))))),
      items.length > 5 ? h('p', { class: 'muted' }, `…and ${number(items.length - 5)} more.`) : null,
      h('div', { class: 'actions' }, go));
    go.focus();
  };
  const send = async (items, button) => {
    button.disabled = true;
    button.textContent = 'Importing…';
    try {
      const res = await post(`${base}/items/bulk`, { items });
      ctx.toast(`Imported ${number(res.count)} items`, 'info');
      ctx.navigate(base, { tab: 'items' });
    } catch (e) {
      button.disabled = false;
      button.textContent = `Import ${number(items.length)} items`;
      if (e instanceof ApiError && e.status === 413) {
        throw new Error(`${e.message}. Import files this large with \`assay dataset import\` on the server, or split the file.`);
      }
      throw e;
    }
  };
  replace(root, h('div', { class: 'card' },
    h('h2', {}, 'Import a file'),
    h('p', { class: 'muted' }, 'JSONL (one object per line with input, expectedOutput or groundTruth, context), CSV/TSV (an input column, an optional expectedOutput column, other columns become context) or a JSON array. All items are added at once as one new dataset version; nothing is added when a line is bad.'),
    field('File', input), out));
  input.focus();
}
