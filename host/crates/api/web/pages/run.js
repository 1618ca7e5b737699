// One run: live progress (Server-Sent Events: bar, counts, items/s, ETA,
// cancel), per-scorer statistics with a histogram of scores, and the
// results, one row per item (paged and filtered by the server), with a
// panel showing output, ground truth, their diff, scores, errors and logs.

import { del, get, post, query, streamEvents } from '../api.js';
import { h, pager, replace, rowCursor } from '../dom.js';
import { diffWords } from '../diff.js';
import { clip, duration, number, pretty, score, scoreClass, text, when } from '../format.js';

const PER_PAGE = 50;
const BINS = 10;
const ACTIVE = ['pending', 'running'];
/** A sequence number past every result: the event stream then sends only run progress. */
const NO_RESULTS = Number.MAX_SAFE_INTEGER;

export async function render(root, ctx) {
  const { datasetId, runId } = ctx.params;
  const dsPath = `/datasets/${encodeURIComponent(datasetId)}`;
  const runPath = `${dsPath}/runs/${encodeURIComponent(runId)}`;
  const [ds, first] = await Promise.all([get(dsPath, { signal: ctx.signal }), get(runPath, { signal: ctx.signal })]);
  let run = first;

  const statusEl = h('span');
  const cancelButton = h('button', { class: 'danger', id: 'cancel-run', onclick: () => ctx.guard(cancel()) }, 'Cancel run');
  const progressEl = h('div', { class: 'card', id: 'progress' });
  const statsEl = h('div', { class: 'card', id: 'scorer-stats' });
  const resultsEl = h('div', { id: 'results' });
  const errorEl = h('div');

  replace(root,
    h('div', { class: 'crumbs' }, h('a', { href: '#/datasets' }, 'Datasets'), ' / ', h('a', { href: `#${dsPath}?tab=runs` }, ds.name), ' / '),
    h('div', { class: 'bar' },
      h('h1', { class: 'grow' }, 'Run ', h('span', { class: 'mono' }, runId.slice(0, 13)), ' ', statusEl),
      cancelButton,
      h('a', { class: 'button', href: `#${dsPath}/compare?a=${encodeURIComponent(runId)}` }, 'Compare…'),
      h('button', { onclick: () => ctx.guard(remove()) }, 'Delete')),
    h('p', { class: 'muted' }, `target ${run.targetId} · scorers ${(run.scorerIds || []).join(', ') || 'none'} · dataset v${run.datasetVersion} · created ${when(run.createdAt)}`),
    errorEl, progressEl, statsEl, resultsEl);

  const cancel = async () => {
    run = await post(`${runPath}/cancel`);
    showRun();
  };
  const remove = async () => {
    if (!window.confirm('Delete this run and its results?')) return;
    await del(runPath);
    ctx.navigate(dsPath, { tab: 'runs' });
  };

  // Progress: the rate over the last seconds gives items/s and the ETA.
  const samples = [];
  const showRun = () => {
    const done = run.succeededCount + run.failedCount;
    const total = run.totalItems;
    const now = performance.now();
    samples.push([now, done]);
    while (samples.length > 2 && now - samples[0][0] > 10000) samples.shift();
    let rate = null;
    if (ACTIVE.includes(run.status) && samples.length >= 2) {
      const [t0, d0] = samples[0];
      if (now > t0) rate = ((done - d0) * 1000) / (now - t0);
    } else if (run.startedAt && run.completedAt) {
      const secs = (new Date(run.completedAt) - new Date(run.startedAt)) / 1000;
      if (secs > 0) rate = done / secs;
    }
    const eta = ACTIVE.includes(run.status) && rate > 0 ? (total - done) / rate : null;
    const pct = (n) => `${total ? (100 * n) / total : 0}%`;
    replace(statusEl, h('span', { class: `status ${run.status}`, id: 'run-status' }, run.status));
    cancelButton.hidden = !ACTIVE.includes(run.status);
    replace(errorEl, run.error ? h('pre', { class: 'error' }, run.error) : null);
    const elapsed = run.startedAt ? ((run.completedAt ? new Date(run.completedAt) : new Date()) - new Date(run.startedAt)) / 1000 : null;
    replace(progressEl,
      h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': done },
        h('div', { class: 'ok', css: { width: pct(run.succeededCount) } }), h('div', { class: 'ko', css: { width: pct(run.failedCount) } })),
      h('div', { class: 'stats' },
        stat(`${number(done)} / ${number(total)}`, 'done', 'progress-count'),
        stat(number(run.succeededCount), 'succeeded'),
        stat(number(run.failedCount), 'failed'),
        stat(number(run.skippedCount), 'skipped'),
        stat(rate === null ? '–' : `${number(Math.round(rate))}`, 'items/s', 'items-per-second'),
        stat(eta === null ? '–' : duration(eta), 'ETA'),
        stat(elapsed === null ? '–' : duration(elapsed), 'elapsed')));
  };
  showRun();

  const loadFinished = () => {
    ctx.guard(showStats(statsEl, ctx, run, runPath));
    ctx.guard(showResults(resultsEl, ctx, run, runPath));
  };

  if (ACTIVE.includes(run.status)) {
    replace(statsEl, h('p', { class: 'muted' }, 'Statistics and results appear when the run ends.'));
    ctx.onKey('x', 'cancel the run', () => ctx.guard(cancel()));
    const ticker = setInterval(() => ACTIVE.includes(run.status) && showRun(), 1000);
    ctx.signal.addEventListener('abort', () => clearInterval(ticker));
    await streamEvents(`${runPath}/events`, {
      signal: ctx.signal,
      after: NO_RESULTS,
      onEvent(name, data) {
        if (name === 'run' || name === 'end') {
          run = data;
          showRun();
        }
        if (name === 'error') ctx.toast(data.message);
      },
    });
    clearInterval(ticker);
    if (ctx.signal.aborted) return;
    run = await get(runPath, { signal: ctx.signal });
    showRun();
  }
  loadFinished();
}

function stat(value, label, id) {
  return h('div', {}, h('b', { id }, value), h('span', {}, label));
}

// ---- per-scorer statistics ----

/** Means, pass rates, errors and histograms from the server's run summary. */
async function showStats(root, ctx, run, runPath) {
  const scorerIds = run.scorerIds || [];
  if (!scorerIds.length) {
    replace(root, h('p', { class: 'muted' }, 'This run has no scorer.'));
    return;
  }
  const summary = await get(`${runPath}/summary`, { signal: ctx.signal });
  replace(root,
    h('div', { class: 'bar' }, h('h2', { class: 'grow' }, 'Scores')),
    h('div', { class: 'grid3' }, scorerIds.map((id) => {
      const s = summary.scorers.find((x) => x.scorerId === id) || { mean: null, passRate: null, errorCount: 0, histogram: new Array(BINS).fill(0) };
      const bins = s.histogram;
      const max = Math.max(1, ...bins);
      return h('div', { class: 'card', dataset: { scorer: id } },
        h('div', { class: 'bar' }, h('b', { class: 'grow' }, id), h('span', { class: scoreClass(s.mean) }, `mean ${score(s.mean)}`)),
        h('div', { class: 'muted' }, `pass rate ${s.passRate === null ? '–' : `${(s.passRate * 100).toFixed(1)}%`} · ${number(s.errorCount)} errors`),
        h('div', { class: 'hist', role: 'img', 'aria-label': `histogram of ${id} scores: ${bins.join(', ')}` },
          bins.map((n, i) => h('div', { title: `${(i / BINS).toFixed(1)}–${((i + 1) / BINS).toFixed(1)}: ${number(n)}`, css: { height: `${(100 * n) / max}%` } }))),
        h('div', { class: 'hist-axis' }, h('span', {}, '0'), h('span', {}, '0.5'), h('span', {}, '1')));
    })));
}

// ---- results ----

/** The results query of a filter (the server filters; nothing is scanned here). */
function filterQuery(filter) {
  const q = {};
  if (filter.failed) q.failed = 'true';
  if (filter.scorer && filter.below !== '') Object.assign(q, { scorer: filter.scorer, below: filter.below });
  return q;
}

async function showResults(root, ctx, run, runPath) {
  const scorerIds = run.scorerIds || [];
  const filter = { failed: ctx.query.failed === '1', scorer: ctx.query.scorer || scorerIds[0] || '', below: ctx.query.below || '' };
  const failedBox = h('input', { type: 'checkbox', id: 'filter-failed', checked: filter.failed });
  const scorerSelect = h('select', { id: 'filter-scorer' }, scorerIds.map((id) => h('option', { value: id, selected: id === filter.scorer }, id)));
  const belowInput = h('input', { type: 'number', id: 'filter-below', step: '0.05', min: 0, max: 1, placeholder: 'e.g. 0.5', value: filter.below });
  const apply = () => {
    Object.assign(filter, { failed: failedBox.checked, scorer: scorerSelect.value, below: belowInput.value });
    ctx.guard(load(0));
  };
  failedBox.addEventListener('change', apply);
  scorerSelect.addEventListener('change', () => belowInput.value !== '' && apply());
  belowInput.addEventListener('change', apply);
  ctx.onKey('f', 'toggle "failed only"', () => {
    failedBox.checked = !failedBox.checked;
    apply();
  });
  const tableEl = h('div', {}, h('p', { class: 'muted' }, 'Loading results…'));
  replace(root,
    h('h2', {}, 'Results'),
    h('div', { class: 'bar' },
      h('label', { class: 'check' }, failedBox, 'Failed only'),
      scorerIds.length ? h('label', { class: 'check' }, 'Score of', scorerSelect, 'below', belowInput) : null,
      h('button', { class: 'small', onclick: () => {
        failedBox.checked = false;
        belowInput.value = '';
        apply();
      } }, 'Clear filters')),
    tableEl);

  let tbody = null;
  let rows = [];
  const cursor = rowCursor(ctx, () => tbody, (i) => openResult(ctx, run, rows[i], scorerIds));
  let inFlight = null;

  const table = (results) => {
    rows = results;
    tbody = h('tbody', {}, results.map((r, i) => h('tr', { class: 'clickable', dataset: { row: i, itemIndex: r.itemIndex }, onclick: () => {
      cursor.select(i);
      openResult(ctx, run, r, scorerIds);
    } },
      h('td', { class: 'num muted' }, String(r.itemIndex + 1)),
      h('td', { class: 'cell', title: clip(text(r.input), 500) }, clip(text(r.input), 100)),
      h('td', { class: 'cell', title: clip(text(r.output), 500) }, r.error ? h('span', { class: 'error-text' }, clip(r.error, 100)) : clip(text(r.output), 100)),
      h('td', { class: 'cell', title: clip(text(r.expectedOutput), 500) }, clip(text(r.expectedOutput), 100)),
      scorerIds.map((id) => {
        const s = r.scores.find((x) => x.scorerId === id);
        return h('td', { class: `num ${scoreClass(s && s.score)}`, title: s ? s.reason || s.error || '' : '' }, s && s.error ? h('span', { class: 'error-text' }, 'error') : score(s && s.score));
      }),
      h('td', { class: 'num muted' }, `${Math.round(r.latency)} ms`))));
    cursor.reset();
    return h('table', { class: 'data', id: 'results-table' },
      h('colgroup', {}, h('col', { css: { width: '4.5rem' } }), h('col'), h('col'), h('col'), scorerIds.map(() => h('col', { css: { width: '7.5rem' } })), h('col', { css: { width: '5.5rem' } })),
      h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), h('th', {}, 'Input'), h('th', {}, 'Output'), h('th', {}, 'Expected'),
        scorerIds.map((id) => h('th', { class: 'num', title: id }, id)), h('th', { class: 'num' }, 'Latency'))),
      tbody);
  };

  // One server page per screen, filtered by the server: a filter over a
  // 100k-item run reads one page, never the run.
  const load = async (page) => {
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    ctx.signal.addEventListener('abort', () => controller.abort());
    const filtered = filterQuery(filter);
    ctx.setQuery({ page, failed: filter.failed ? '1' : '', scorer: filter.scorer, below: filter.below });
    const body = await get(`${runPath}/results${query({ page, perPage: PER_PAGE, ...filtered })}`, { signal: controller.signal });
    if (controller.signal.aborted) return;
    ctx.onKey('n', 'next page', () => body.pagination.hasMore && ctx.guard(load(page + 1)));
    ctx.onKey('p', 'previous page', () => page > 0 && ctx.guard(load(page - 1)));
    if (!body.results.length) {
      const filtering = Object.keys(filtered).length > 0;
      replace(tableEl, h('div', { class: 'card empty' }, filtering ? 'No result matches the filter.' : 'No result stored for this run.'));
      return;
    }
    const count = Object.keys(filtered).length ? h('p', { class: 'muted', id: 'filter-count' }, `${number(body.pagination.total)} matching results`) : null;
    replace(tableEl, count, table(body.results), pager(body.pagination, (p) => ctx.guard(load(p))));
  };

  await load(Number(ctx.query.page || 0));
}

/** The side panel of one result. */
function openResult(ctx, run, r, scorerIds) {
  document.querySelector('#result-panel')?.remove();
  const close = () => panel.remove();
  const out = text(r.output);
  const expected = text(r.expectedOutput);
  let diffEl = null;
  if (r.expectedOutput !== undefined && r.expectedOutput !== null && r.output !== undefined && r.output !== null) {
    const parts = diffWords(expected, out);
    diffEl = parts
      ? h('div', { class: 'diff', id: 'result-diff' }, parts.map((p) => (p.op === 'same' ? p.text : h(p.op === 'add' ? 'ins' : 'del', {}, p.text))))
      : h('p', { class: 'muted' }, 'Too long to diff.');
  }
  const panel = h('aside', { class: 'panel', id: 'result-panel', role: 'dialog', 'aria-label': `Result of item ${r.itemIndex + 1}`, tabindex: '-1' },
    h('div', { class: 'bar' }, h('h2', { class: 'grow' }, `Item #${r.itemIndex + 1}`), h('button', { onclick: close }, 'Close (Esc)')),
    h('p', { class: 'muted' }, `${Math.round(r.latency)} ms · ${r.retryCount} retries · item v${r.itemVersion}${r.traceId ? ` · trace ${r.traceId}` : ''}`),
    r.error ? [h('h3', {}, `Error${r.errorKind ? ` (${r.errorKind})` : ''}`), h('pre', { class: 'error' }, r.error)] : null,
    h('h3', {}, 'Input'), h('pre', {}, pretty(r.input)),
    h('div', { class: 'side' },
      h('div', {}, h('h3', {}, 'Output'), h('pre', { id: 'result-output' }, r.output === undefined || r.output === null ? '–' : pretty(r.output))),
      h('div', {}, h('h3', {}, 'Ground truth'), h('pre', {}, r.expectedOutput === undefined || r.expectedOutput === null ? '–' : pretty(r.expectedOutput)))),
    diffEl ? [h('h3', {}, 'Diff (ground truth → output)'), diffEl] : null,
    h('h3', {}, 'Scores'),
    h('table', { class: 'data' },
      h('colgroup', {}, h('col', { css: { width: '10rem' } }), h('col', { css: { width: '5rem' } }), h('col')),
      h('thead', {}, h('tr', {}, h('th', {}, 'Scorer'), h('th', { class: 'num' }, 'Score'), h('th', {}, 'Reason'))),
      h('tbody', {}, scorerIds.map((id) => {
        const s = r.scores.find((x) => x.scorerId === id) || {};
        return h('tr', {}, h('td', {}, id), h('td', { class: `num ${scoreClass(s.score)}` }, score(s.score)),
          h('td', {}, s.error ? h('span', { class: 'error-text' }, s.error) : s.reason || ''));
      }))),
    h('h3', {}, 'Logs'), h('pre', {}, r.logs === undefined || r.logs === null || (Array.isArray(r.logs) && !r.logs.length) ? '(none)' : pretty(r.logs)));
  document.body.append(panel);
  panel.addEventListener('keydown', (e) => e.key === 'Escape' && close());
  ctx.signal.addEventListener('abort', close);
  ctx.onKey('Escape', 'close the panel', close);
  panel.focus();
}
