// Datasets: the list (paged, newest first) and a form to create one.

import { get, post, query } from '../api.js';
import { field, h, pager, replace, rowCursor } from '../dom.js';
import { number, when } from '../format.js';

const PER_PAGE = 25;

export async function render(root, ctx) {
  const page = Number(ctx.query.page || 0);
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const name = h('input', { id: 'dataset-name', required: true, placeholder: 'e.g. capitals-qa', maxlength: 200 });
  const description = h('input', { id: 'dataset-description', placeholder: 'optional' });
  const form = h('form', { class: 'card', id: 'create-dataset' },
    h('h2', {}, 'New dataset'),
    h('div', { class: 'grid2' }, field('Name', name), field('Description', description)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create dataset')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.guard((async () => {
      const body = { name: name.value.trim() };
      if (description.value.trim()) body.description = description.value.trim();
      const ds = await post('/datasets', body);
      ctx.toast(`Dataset ${ds.name} created`, 'info');
      ctx.navigate(`/datasets/${encodeURIComponent(ds.id)}`, { tab: 'import' });
    })());
  });
  replace(root, h('h1', {}, 'Datasets'), h('p', { class: 'muted' }, 'Versioned sets of items (input, expected output, context) that runs send through a target and scorers.'), list, form);
  ctx.onKey('c', 'create a dataset', () => name.focus());

  let tbody = null;
  const cursor = rowCursor(ctx, () => tbody, (i, row) => ctx.navigate(row.dataset.href));
  const body = await get(`/datasets${query({ page, perPage: PER_PAGE })}`, { signal: ctx.signal });
  if (!body.datasets.length && page === 0) {
    replace(list, h('div', { class: 'card empty' }, 'No dataset yet: create one below, then import a JSONL or CSV file.'));
    name.focus();
    return;
  }
  tbody = h('tbody', {}, body.datasets.map((d, i) => {
    const href = `/datasets/${encodeURIComponent(d.id)}`;
    return h('tr', { class: 'clickable', dataset: { row: i, href }, onclick: () => ctx.navigate(href) },
      h('td', {}, h('a', { href: `#${href}` }, d.name)),
      h('td', { class: 'muted' }, d.description || ''),
      h('td', { class: 'num' }, number(d.itemCount)),
      h('td', { class: 'num' }, `v${d.version}`),
      h('td', {}, when(d.updatedAt)));
  }));
  const go = (p) => ctx.navigate('/datasets', { page: p });
  ctx.onKey('n', 'next page', () => body.pagination.hasMore && go(page + 1));
  ctx.onKey('p', 'previous page', () => page > 0 && go(page - 1));
  replace(list,
    h('table', { class: 'data', id: 'datasets-table' },
      h('colgroup', {}, h('col', { css: { width: '26%' } }), h('col'), h('col', { css: { width: '9rem' } }), h('col', { css: { width: '6rem' } }), h('col', { css: { width: '13rem' } })),
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Description'), h('th', { class: 'num' }, 'Items'), h('th', { class: 'num' }, 'Version'), h('th', {}, 'Updated'))),
      tbody),
    pager(body.pagination, go));
  cursor.reset();
}
