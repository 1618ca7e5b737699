// Benchmark: the playground's results page on a completed 100k-item run.
//
//   node bench-results-page.mjs [--items 100000] [--repeat 5]
//
// Builds a dataset of N items and runs it to completion with the CLI
// (`assay run`: echo target, exact-match + levenshtein + contains scorers,
// temp SQLite database), starts `assay serve` on that database, then opens
// the run's page in headless Chromium, each time in a fresh browser context
// (cold cache), and prints:
// * time to first render: from navigation start to the first row of the
//   results table on screen;
// * page weight at that moment: bytes transferred (headers and bodies, as
//   the network reports them), split into the playground's files and API
//   answers;
// * time until the per-scorer histograms (from the server's run summary)
//   are drawn;
// * time to the first filtered page ("score of exact-match below 0.5",
//   filtered by the server) after the filter is applied.
//
// The server runs with --no-auth on loopback (the page then needs no key).
// ASSAY_BIN (default target/release/assay, else target/debug/assay),
// ASSAY_PLUGIN_DIR and CHROMIUM as for playground.test.mjs.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ITEMS = opt('items', 100000);
const REPEAT = opt('repeat', 5);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const release = path.join(targetDir, 'release', 'assay');
const assayBin = process.env.ASSAY_BIN || (existsSync(release) ? release : path.join(targetDir, 'debug', 'assay'));
const pluginDir = process.env.ASSAY_PLUGIN_DIR || path.join(targetDir, 'wasm32-wasip2', 'plugin');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

const work = mkdtempSync(path.join(tmpdir(), 'assay-bench-ui-'));
const db = `sqlite://${path.join(work, 'assay.db')}?mode=rwc`;
const common = ['--database-url', db, '--plugins-dir', pluginDir, '--cache-dir', path.join(work, 'cache')];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  console.log(`assay: ${assayBin}`);
  const lines = [];
  for (let i = 0; i < ITEMS; i++) {
    const expected = i % 7 === 0 ? `other answer ${i}` : `question number ${i}`;
    lines.push(JSON.stringify({ input: `question number ${i}`, expectedOutput: expected }));
  }
  const file = path.join(work, 'items.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  let t = performance.now();
  const run = spawnSync(assayBin, [...common, 'run', '--dataset', file, '--target', 'echo',
    '--scorer', 'exact-match', '--scorer', 'levenshtein', '--scorer', 'contains', '--concurrency', '16', '--quiet'], { encoding: 'utf8' });
  if (run.status !== 0 && run.status !== 3) throw new Error(`assay run failed (${run.status}): ${run.stderr}`);
  console.log(`prepared: ${ITEMS} items run to completion by the CLI in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const server = spawn(assayBin, [...common, 'serve', '--addr', '127.0.0.1:0', '--no-auth'], { stdio: ['ignore', 'ignore', 'pipe'] });
  serverProcess = server;
  const base = await new Promise((resolve, reject) => {
    let err = '';
    server.stderr.on('data', (c) => {
      err += c;
      const m = err.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  const ds = (await (await fetch(`${base}/api/datasets`)).json()).datasets[0];
  const runRow = (await (await fetch(`${base}/api/datasets/${ds.id}/runs`)).json()).runs[0];
  if (runRow.status !== 'completed' || runRow.totalItems !== ITEMS) throw new Error(`unexpected run ${JSON.stringify(runRow)}`);
  const url = `${base}/#/datasets/${ds.id}/runs/${runRow.id}`;

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const firsts = [];
  const weights = [];
  const scans = [];
  for (let i = 0; i < REPEAT; i++) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const requests = new Map();
    const bytes = { ui: 0, api: 0 };
    let counting = true;
    cdp.on('Network.requestWillBeSent', (e) => requests.set(e.requestId, e.request.url));
    cdp.on('Network.loadingFinished', (e) => {
      const u = requests.get(e.requestId) || '';
      const kind = u.includes('/api/') ? 'api' : 'ui';
      if (counting) bytes[kind] += e.encodedDataLength;
      else bytes[`${kind}After`] = (bytes[`${kind}After`] || 0) + e.encodedDataLength;
    });
    const errors = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    t = performance.now();
    await page.goto(url);
    await page.waitForSelector('#results-table tbody tr', { timeout: 120000 });
    const first = performance.now() - t;
    await page.waitForTimeout(50);
    counting = false;
    const weight = { ...bytes };
    await page.waitForSelector('[data-scorer="exact-match"] .hist', { timeout: 600000 });
    const histograms = performance.now() - t;
    if (errors.length) throw new Error(`console errors: ${errors.join('\n')}`);
    const tf = performance.now();
    await page.selectOption('#filter-scorer', 'exact-match');
    await page.fill('#filter-below', '0.5');
    await page.press('#filter-below', 'Enter');
    await page.waitForSelector('#filter-count', { timeout: 120000 });
    const filtered = performance.now() - tf;
    firsts.push(first);
    weights.push(weight);
    scans.push({ histograms, filtered });
    console.log(`#${i + 1}: first render ${first.toFixed(0)} ms; transferred then ${(weight.ui / 1024).toFixed(1)} KiB playground + ${(weight.api / 1024).toFixed(1)} KiB API; histograms at ${histograms.toFixed(0)} ms; filtered page ${filtered.toFixed(0)} ms (${await page.textContent('#filter-count')})`);
    await context.close();
  }
  await browser.close();
  server.kill('SIGTERM');
  console.log(`median first render: ${median(firsts).toFixed(0)} ms (min ${Math.min(...firsts).toFixed(0)}, max ${Math.max(...firsts).toFixed(0)}) over ${REPEAT} cold loads`);
  console.log(`page weight at first render: ${(median(weights.map((w) => w.ui)) / 1024).toFixed(1)} KiB playground files + ${(median(weights.map((w) => w.api)) / 1024).toFixed(1)} KiB API answers`);
  console.log(`histograms drawn: median ${median(scans.map((s) => s.histograms)).toFixed(0)} ms; first filtered page: median ${median(scans.map((s) => s.filtered)).toFixed(0)} ms`);
}

let serverProcess = null;
main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
  serverProcess?.kill('SIGTERM');
}).finally(() => rmSync(work, { recursive: true, force: true }));
