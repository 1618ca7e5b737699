// Comparing two runs of a dataset: per-scorer deltas, then the items that
// regressed or improved, side by side (scores, then outputs on demand).

import { get, post, query } from '../api.js';
import { field, h, replace } from '../dom.js';
import { clip, number, pretty, score, scoreClass, text, when } from '../format.js';

const PER_PAGE = 50;
// Items one comparison request lists (the server allows up to 10,000).
const ITEM_WINDOW = 10000;

export async function render(root, ctx) {
  const { datasetId } = ctx.params;
  const dsPath = `/datasets/${encodeURIComponent(datasetId)}`;
  const [ds, runs] = await Promise.all([get(dsPath, { signal: ctx.signal }), get(`${dsPath}/runs${query({ perPage: 100 })}`, { signal: ctx.signal })]);
  const picker = (id, selected) => h('select', { id }, h('option', { value: '' }, '— pick a run —'),
    runs.runs.map((r) => h('option', { value: r.id, selected: r.id === selected }, `${r.id.slice(0, 13)} · ${r.status} · ${r.targetId} · ${when(r.createdAt)}`)));
  const a = picker('run-a', ctx.query.a);
  const b = picker('run-b', ctx.query.b);
  const form = h('form', { class: 'card bar' }, field('Baseline (A)', a), field('Candidate (B)', b),
    h('button', { type: 'submit', class: 'primary' }, 'Compare'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.navigate(`${dsPath}/compare`, { a: a.value, b: b.value });
  });
  const out = h('div', { id: 'comparison' });
  replace(root,
    h('div', { class: 'crumbs' }, h('a', { href: '#/datasets' }, 'Datasets'), ' / ', h('a', { href: `#${dsPath}?tab=runs` }, ds.name), ' / '),
    h('h1', {}, 'Compare runs'), form, out);
  if (!ctx.query.a || !ctx.query.b) {
    replace(out, h('p', { class: 'muted' }, 'Pick two runs of this dataset.'));
    return;
  }
  replace(out, h('p', { class: 'muted' }, 'Comparing…'));
  // The server lists items in windows; the page reads the first (the
  // statistics and the regressed count always cover every item).
  const cmp = await post(`${dsPath}/compare`, { runIdA: ctx.query.a, runIdB: ctx.query.b, limit: ITEM_WINDOW }, { signal: ctx.signal });
  const scorerIds = Object.keys(cmp.scorers);
  const improved = cmp.items.filter((it) => !it.regressed && scorerIds.some((id) => (it.scoresB[id] ?? -1) > (it.scoresA[id] ?? -1)) &&
    !scorerIds.some((id) => (it.scoresB[id] ?? -1) < (it.scoresA[id] ?? -1)));
  const regressed = cmp.items.filter((it) => it.regressed);
  const link = (id) => h('a', { class: 'mono', href: `#${dsPath}/runs/${encodeURIComponent(id)}` }, id.slice(0, 13));

  const listEl = h('div');
  const showList = (which, page = 0) => {
    const items = which === 'regressed' ? regressed : improved;
    const slice = items.slice(page * PER_PAGE, (page + 1) * PER_PAGE);
    replace(listEl,
      cmp.nextAfterIndex != null ? h('p', { class: 'muted', id: 'compare-window' },
        `Listing the first ${number(cmp.items.length)} of ${number(cmp.itemsTotal)} items (${number(cmp.regressedItems)} regressed in all).`) : null,
      h('nav', { class: 'tabs' },
        h('a', { href: '#', class: which === 'regressed' ? 'active' : '', id: 'show-regressed', onclick: (e) => { e.preventDefault(); showList('regressed'); } }, `Regressed (${number(regressed.length)})`),
        h('a', { href: '#', class: which === 'improved' ? 'active' : '', id: 'show-improved', onclick: (e) => { e.preventDefault(); showList('improved'); } }, `Improved (${number(improved.length)})`)),
      slice.length ? h('table', { class: 'data', id: `${which}-items` },
        h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), scorerIds.map((id) => h('th', { class: 'num' }, `${id} A → B`)), h('th', {}, 'Errors'), h('th', {}, ''))),
        h('tbody', {}, slice.map((it) => h('tr', {},
          h('td', { class: 'num' }, String(it.itemIndex + 1)),
          scorerIds.map((id) => h('td', { class: 'num' }, h('span', { class: scoreClass(it.scoresA[id]) }, score(it.scoresA[id])), ' → ', h('span', { class: scoreClass(it.scoresB[id]) }, score(it.scoresB[id])))),
          h('td', { class: 'error-text' }, clip([it.errorA && `A: ${it.errorA}`, it.errorB && `B: ${it.errorB}`].filter(Boolean).join(' · '), 80)),
          h('td', {}, h('button', { class: 'small', onclick: () => ctx.guard(sideBySide(ctx, dsPath, cmp, it)) }, 'Side by side')))))) : h('div', { class: 'card empty' }, `No ${which} item.`),
      items.length > PER_PAGE ? h('div', { class: 'pager' },
        h('button', { class: 'small', disabled: page === 0, onclick: () => showList(which, page - 1) }, '‹ Prev'),
        h('span', {}, `${page * PER_PAGE + 1}–${Math.min(items.length, (page + 1) * PER_PAGE)} of ${number(items.length)}`),
        h('button', { class: 'small', disabled: (page + 1) * PER_PAGE >= items.length, onclick: () => showList(which, page + 1) }, 'Next ›')) : null);
  };
  showList(regressed.length || !improved.length ? 'regressed' : 'improved');

  replace(out,
    h('p', {}, 'A ', link(cmp.runA.id), ` (v${cmp.runA.datasetVersion}, ${cmp.runA.status}) → B `, link(cmp.runB.id), ` (v${cmp.runB.datasetVersion}, ${cmp.runB.status})`,
      cmp.hasRegression ? h('span', { class: 'status failed', id: 'has-regression' }, 'regression') : h('span', { class: 'status completed' }, 'no regression')),
    cmp.versionMismatch ? h('p', { class: 'error-text' }, 'The runs used different dataset versions.') : null,
    cmp.warnings.map((w) => h('p', { class: 'muted' }, w)),
    h('table', { class: 'data', id: 'scorer-deltas' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Scorer'), h('th', { class: 'num' }, 'Mean A'), h('th', { class: 'num' }, 'Mean B'), h('th', { class: 'num' }, 'Delta'),
        h('th', { class: 'num' }, 'Pass A'), h('th', { class: 'num' }, 'Pass B'), h('th', { class: 'num' }, 'Errors A / B'),
        h('th', { title: 'paired t-test over the items scored in both runs (per-item means of trials)' }, 'Paired t-test'), h('th', {}, ''))),
      h('tbody', {}, scorerIds.map((id) => {
        const s = cmp.scorers[id];
        const d = s.delta;
        return h('tr', { dataset: { scorer: id } },
          h('td', {}, id),
          h('td', { class: `num ${scoreClass(s.statsA.avgScore)}` }, score(s.statsA.avgScore)),
          h('td', { class: `num ${scoreClass(s.statsB.avgScore)}` }, score(s.statsB.avgScore)),
          h('td', { class: `num ${d > 0 ? 'delta-up' : d < 0 ? 'delta-down' : ''}` }, d === null || d === undefined ? '–' : `${d > 0 ? '+' : ''}${d.toFixed(3)}`),
          h('td', { class: 'num' }, `${(s.statsA.passRate * 100).toFixed(1)}%`),
          h('td', { class: 'num' }, `${(s.statsB.passRate * 100).toFixed(1)}%`),
          h('td', { class: 'num' }, `${number(s.statsA.errorCount)} / ${number(s.statsB.errorCount)}`),
          h('td', { class: 'significance' }, s.significance ? `p=${s.significance.pValue.toFixed(3)} ${s.significance.significant ? 'significant' : 'not significant'}` : '–'),
          h('td', {}, s.regressed ? h('span', { class: 'status failed' }, 'regressed') : ''));
      }))),
    h('h2', {}, 'Items'), listEl);
}

/** Both runs' results of one item, next to each other. */
async function sideBySide(ctx, dsPath, cmp, it) {
  // Results are in item (then trial) order and a finished run has one per
  // trial, so the item's first trial is on page index x repeats when a page
  // holds one result.
  const fetchOne = async (runId, repeats) => {
    const body = await get(`${dsPath}/runs/${encodeURIComponent(runId)}/results${query({ page: it.itemIndex * (repeats || 1), perPage: 1 })}`);
    const r = body.results[0];
    return r && r.itemId === it.itemId ? r : null;
  };
  const [ra, rb] = await Promise.all([fetchOne(cmp.runA.id, cmp.runA.repeats), fetchOne(cmp.runB.id, cmp.runB.repeats)]);
  document.querySelector('#side-panel')?.remove();
  const close = () => panel.remove();
  const column = (label, r) => h('div', {},
    h('h3', {}, label),
    r ? [
      r.error ? h('pre', { class: 'error' }, r.error) : h('pre', {}, pretty(r.output)),
      h('table', { class: 'data' }, h('tbody', {}, r.scores.map((s) => h('tr', {},
        h('td', {}, s.scorerId), h('td', { class: `num ${scoreClass(s.score)}` }, score(s.score)), h('td', {}, s.error || s.reason || ''))))),
    ] : h('p', { class: 'muted' }, 'No result for this item.'));
  const any = ra || rb;
  const panel = h('aside', { class: 'panel', id: 'side-panel', role: 'dialog', 'aria-label': `Item ${it.itemIndex + 1}, both runs`, tabindex: '-1' },
    h('div', { class: 'bar' }, h('h2', { class: 'grow' }, `Item #${it.itemIndex + 1}`), h('button', { onclick: close }, 'Close (Esc)')),
    any ? [h('h3', {}, 'Input'), h('pre', {}, pretty(any.input)), h('h3', {}, 'Ground truth'), h('pre', {}, text(any.expectedOutput) ? pretty(any.expectedOutput) : '–')] : null,
    h('div', { class: 'side' }, column('A (baseline)', ra), column('B (candidate)', rb)));
  document.body.append(panel);
  panel.addEventListener('keydown', (e) => e.key === 'Escape' && close());
  ctx.signal.addEventListener('abort', close);
  ctx.onKey('Escape', 'close the panel', close);
  panel.focus();
}
