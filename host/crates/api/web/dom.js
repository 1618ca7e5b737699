// Tiny DOM helpers: build elements without innerHTML (no markup injection
// from data), and without inline styles (the page's Content-Security-Policy
// forbids them; `css` sets properties through the CSSOM instead).

/**
 * h('button', {class: 'primary', onclick: fn}, 'Save') -> <button>.
 * Attributes: `class`, `text`, `css` (object of style properties),
 * `dataset` (object), `on<event>` (listener), booleans (set when true),
 * anything else as an attribute. Children: nodes, strings, arrays, null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'css') Object.assign(el.style, value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = !!value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Appends children (nodes, strings, nested arrays; null/false skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces the content of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Calls `fn` after `ms` without a new call (search boxes). */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A labelled form field. */
export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), input, hint ? h('small', { class: 'hint' }, hint) : null);
}

/** Whether a key event comes from a text field (shortcuts stay out of typing). */
export function typing(event) {
  const t = event.target;
  return t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
}

/**
 * Previous / next buttons and "rows a–b of n" for a `pagination` answer.
 * `go(page)` loads another page.
 */
export function pager(pagination, go) {
  const { page, perPage, total, hasMore } = pagination;
  const from = total === 0 ? 0 : page * perPage + 1;
  const to = Math.min(total, (page + 1) * perPage);
  const last = Math.max(0, Math.ceil(total / perPage) - 1);
  return h('div', { class: 'pager' },
    h('button', { class: 'small', disabled: page === 0, onclick: () => go(0), title: 'First page' }, '«'),
    h('button', { class: 'small', disabled: page === 0, onclick: () => go(page - 1), title: 'Previous page (p)' }, '‹ Prev'),
    h('span', {}, `${from.toLocaleString('en-US')}–${to.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`),
    h('button', { class: 'small', disabled: !hasMore, onclick: () => go(page + 1), title: 'Next page (n)' }, 'Next ›'),
    h('button', { class: 'small', disabled: !hasMore, onclick: () => go(last), title: 'Last page' }, '»'));
}

/**
 * Keyboard row selection for a table body: `j`/`k` move, Enter opens.
 * Returns {reset(), selected()}; rows are the <tr> children of `tbody()`.
 */
export function rowCursor(ctx, tbody, open) {
  let index = -1;
  const rows = () => [...(tbody()?.children || [])].filter((r) => r.dataset.row !== undefined);
  const show = () => {
    rows().forEach((r, i) => r.classList.toggle('selected', i === index));
    const row = rows()[index];
    if (row) row.scrollIntoView({ block: 'nearest' });
  };
  ctx.onKey('j', 'next row', () => {
    index = Math.min(rows().length - 1, index + 1);
    show();
  });
  ctx.onKey('k', 'previous row', () => {
    index = Math.max(0, index - 1);
    show();
  });
  ctx.onKey('Enter', 'open the selected row', () => {
    const row = rows()[index];
    if (row) open(Number(row.dataset.row), row);
  });
  return {
    reset() {
      index = -1;
    },
    select(i) {
      index = i;
      show();
    },
  };
}
