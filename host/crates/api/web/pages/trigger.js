// Starting a run: target and scorers from the registered plugins, their
// configs, the run options; then off to the run page to watch it.

import { get, listAll, post } from '../api.js';
import { field, h, replace } from '../dom.js';
import { number, parseLoose } from '../format.js';

const OPTIONS = [
  ['maxConcurrency', 'Concurrency', 'items of this run in flight at once (default 5)'],
  ['maxRetries', 'Retries', 'retries of transient target failures (default 0)'],
  ['retryDelay', 'Retry delay (ms)', 'base backoff, doubled per retry (default 1000)'],
  ['itemTimeout', 'Item timeout (ms)', 'one item, all attempts (default none)'],
  ['targetTimeout', 'Target timeout (ms)', 'one target call (default 30000)'],
  ['scorerTimeout', 'Scorer timeout (ms)', 'one scorer call (default 5000)'],
];

function jsonConfig(id, placeholder) {
  return h('textarea', { class: 'json', id, spellcheck: 'false', placeholder, rows: 3 });
}

export async function render(root, ctx) {
  const id = ctx.params.datasetId;
  const base = `/datasets/${encodeURIComponent(id)}`;
  const [ds, plugins] = await Promise.all([get(base, { signal: ctx.signal }), listAll('/plugins', 'plugins')]);
  const targets = plugins.filter((p) => p.kind === 'target');
  const scorers = plugins.filter((p) => p.kind === 'scorer');

  const target = h('select', { id: 'target' }, targets.map((p) => h('option', { value: p.id }, `${p.id} — ${p.name}`)));
  const targetHelp = h('small', { class: 'hint' });
  const showTargetHelp = () => (targetHelp.textContent = targets.find((p) => p.id === target.value)?.description || '');
  target.addEventListener('change', showTargetHelp);
  showTargetHelp();
  const targetConfig = jsonConfig('target-config', 'target config (JSON, optional), e.g. {"template": "Answer: {{input}}"}');

  const scorerRows = scorers.map((p) => {
    const box = h('input', { type: 'checkbox', value: p.id, class: 'scorer-pick', id: `scorer-${p.id}` });
    const config = jsonConfig(`scorer-config-${p.id}`, `${p.id} config (JSON, optional)`);
    config.hidden = true;
    box.addEventListener('change', () => (config.hidden = !box.checked));
    return { p, box, config, el: h('div', { class: 'card' },
      h('label', { class: 'check' }, box, h('b', {}, p.id), h('span', { class: 'muted' }, `— ${p.name}`)),
      h('p', { class: 'muted' }, p.description), config) };
  });

  const version = h('input', { type: 'number', id: 'version', min: 0, max: ds.version, placeholder: `latest (v${ds.version})` });
  const options = OPTIONS.map(([key, label, hint]) => [key, h('input', { type: 'number', min: key === 'maxConcurrency' ? 1 : 0, id: `opt-${key}` }), label, hint]);

  const form = h('form', { id: 'trigger-form' },
    h('div', { class: 'grid2' },
      h('div', {},
        h('div', { class: 'card' }, h('h2', {}, 'Target'),
          targets.length ? field('Plugin', target, targetHelp) : h('p', { class: 'error-text' }, 'No target plugin is registered: upload one on the Plugins page.'),
          field('Config', targetConfig)),
        h('div', { class: 'card' }, h('h2', {}, 'Options'),
          h('div', { class: 'grid2' }, field('Dataset version', version, `pin a version (the dataset is at v${ds.version})`),
            options.map(([, input, label, hint]) => field(label, input, hint))))),
      h('div', {}, h('h2', {}, 'Scorers'),
        scorers.length ? scorerRows.map((r) => r.el) : h('p', { class: 'muted' }, 'No scorer plugin is registered.'))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'trigger', disabled: !targets.length }, `Run ${number(ds.itemCount)} items`),
      h('a', { class: 'button', href: `#${base}?tab=runs` }, 'Cancel')));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.guard((async () => {
      const body = { targetType: 'plugin', targetId: target.value, scorerIds: [] };
      const tc = parseLoose(targetConfig.value);
      if (tc !== undefined) body.targetConfig = tc;
      const configs = {};
      for (const r of scorerRows) {
        if (!r.box.checked) continue;
        body.scorerIds.push(r.p.id);
        let c;
        try {
          c = parseLoose(r.config.value);
        } catch (err) {
          throw new Error(`${r.p.id} config: ${err.message}`);
        }
        if (c !== undefined) configs[r.p.id] = c;
      }
      if (Object.keys(configs).length) body.scorerConfigs = configs;
      if (version.value !== '') body.version = Number(version.value);
      for (const [key, input] of options) if (input.value !== '') body[key] = Number(input.value);
      const run = await post(`${base}/runs`, body);
      ctx.navigate(`${base}/runs/${encodeURIComponent(run.runId)}`);
    })());
  });
  replace(root,
    h('div', { class: 'crumbs' }, h('a', { href: '#/datasets' }, 'Datasets'), ' / ', h('a', { href: `#${base}` }, ds.name), ' / '),
    h('h1', {}, 'New run'), form);
  target.focus();
}
