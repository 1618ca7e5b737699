// The playground in a real browser: starts `assay serve` (temp SQLite
// database, free loopback port, the shipped plugins registered) and drives
// headless Chromium (Debian's `chromium`, never a downloaded browser)
// through creating a dataset, importing a file, editing an item, triggering
// runs and watching them finish, opening a result, filtering, comparing two
// runs and uploading plugins (one accepted, one refused). Saves a
// screenshot of every page under target/playground-screenshots/ and fails
// on any console error the steps did not expect.
//
// Environment: ASSAY_BIN (default target/debug/assay), ASSAY_PLUGIN_DIR
// (default target/wasm32-wasip2/plugin, built by scripts/build-plugins.sh),
// CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const assayBin = process.env.ASSAY_BIN || path.join(targetDir, 'debug', 'assay');
const pluginDir = process.env.ASSAY_PLUGIN_DIR || path.join(targetDir, 'wasm32-wasip2', 'plugin');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = path.join(targetDir, 'playground-screenshots');

/** Shipped plugin uploaded through the page instead of registered at start. */
const UPLOADED = 'keyword_coverage';
const ITEMS = 300;

let work;
let server;
/** A member key of tenant `default`, made with the CLI as an operator would. */
let token;
let baseUrl;
let browser;
let page;
/** Console errors and page errors, with the step they happened in. */
const consoleErrors = [];
let step = 'start';

function shippedPlugins() {
  return readdirSync(path.join(root, 'plugins')).map((name) => name.replaceAll('-', '_'));
}

function databaseUrl(dir) {
  return `sqlite://${path.join(dir, 'assay.db')}?mode=rwc`;
}

/** `assay key create` on the test's database: the token of a new key. */
function createKey(dir) {
  const out = execFileSync(assayBin, [
    '--database-url', databaseUrl(dir),
    'key', 'create', '--tenant', 'default', '--role', 'member', '--name', 'playground', '--json',
  ], { encoding: 'utf8' });
  return JSON.parse(out).token;
}

/** Starts `assay serve` (authentication on) on a free port; resolves to its URL. */
function startServer(dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(assayBin, [
      '--database-url', databaseUrl(dir),
      '--plugins-dir', path.join(dir, 'plugins'),
      // Compiled plugins are cached across runs of the test (keyed by digest).
      '--cache-dir', path.join(targetDir, 'playground-plugin-cache'),
      'serve', '--addr', '127.0.0.1:0',
    ], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    let stderr = '';
    // A cold start compiles every plugin: minutes on a loaded debug build.
    const timer = setTimeout(() => reject(new Error(`assay serve did not start in 5 min:\n${stderr}`)), 300000);
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = stderr.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`assay serve exited with ${code}:\n${stderr}`));
    });
  });
}

/** The dataset file: inputs echoed back; some ground truths differ in case, some entirely. */
function datasetFile(dir) {
  const lines = [];
  for (let i = 0; i < ITEMS; i++) {
    let expected = `city-${i}`;
    if (i % 10 === 3) expected = `CITY-${i}`;
    if (i % 25 === 7) expected = `town-${i}`;
    lines.push(JSON.stringify({ input: `city-${i}`, groundTruth: expected, region: i % 2 ? 'north' : 'south' }));
  }
  const file = path.join(dir, 'cities.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
const caseOnly = [...Array(ITEMS).keys()].filter((i) => i % 10 === 3 && i % 25 !== 7).length;
const different = [...Array(ITEMS).keys()].filter((i) => i % 25 === 7).length;

async function shot(name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

before(async () => {
  for (const [what, p] of [['assay binary', assayBin], ['plugin directory', pluginDir], ['chromium', chromiumPath]]) {
    assert.ok(existsSync(p), `${what} not found at ${p} (see tests/browser/README.md)`);
  }
  work = mkdtempSync(path.join(tmpdir(), 'assay-playground-'));
  mkdirSync(path.join(work, 'plugins'));
  for (const name of shippedPlugins()) {
    if (name === UPLOADED) continue;
    copyFileSync(path.join(pluginDir, `${name}.wasm`), path.join(work, 'plugins', `${name}.wasm`));
  }
  mkdirSync(shots, { recursive: true });
  token = createKey(work);
  ({ child: server, url: baseUrl } = await startServer(work));
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push({ step, text: msg.text() });
  });
  page.on('pageerror', (err) => consoleErrors.push({ step, text: `uncaught: ${err.message}` }));
  page.on('dialog', (d) => d.accept());
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs one step; any console error in it fails it (unless `allowed` matches). */
async function inStep(name, fn, allowed = []) {
  step = name;
  const before = consoleErrors.length;
  await fn();
  await page.waitForTimeout(100);
  const errors = consoleErrors.slice(before).filter((e) => !allowed.some((re) => re.test(e.text)));
  assert.deepEqual(errors, [], `console errors during "${name}"`);
}

async function triggerRun(datasetUrl, scorerConfigs) {
  await page.goto(`${datasetUrl}/trigger`);
  await page.waitForSelector('#trigger-form');
  await page.selectOption('#target', 'echo');
  for (const [id, config] of Object.entries(scorerConfigs)) {
    await page.check(`#scorer-${id}`);
    if (config) await page.fill(`#scorer-config-${id}`, JSON.stringify(config));
  }
  await page.fill('#opt-maxConcurrency', '2');
  await shot('trigger');
  await page.click('#trigger');
  await page.waitForURL(/\/runs\/[^/?]+/);
  // The page follows the run over SSE until it ends, without a reload.
  await page.waitForFunction(() => document.querySelector('#run-status')?.textContent === 'completed', null, { timeout: 60000 });
  assert.equal(await page.textContent('#progress-count'), `${ITEMS} / ${ITEMS}`);
  await page.waitForSelector('#results-table tbody tr');
  return page.url().match(/\/runs\/([^/?]+)/)[1];
}

test('the playground, end to end in Chromium', async () => {
  let datasetUrl;

  await inStep('API token asked for', async () => {
    // The server requires a key: the first API call is a 401, and the page
    // asks for a token instead of failing.
    await page.goto(`${baseUrl}/`);
    await page.waitForSelector('#token-dialog[open]');
    assert.match(await page.textContent('#token-reason'), /API token/);
    await shot('token');
    await page.fill('#token-input', token);
    await page.press('#token-input', 'Enter');
    await page.waitForSelector('#token-dialog', { state: 'hidden' });
    assert.match(await page.textContent('#token-button'), /✓/);
  }, [/401/]);

  await inStep('datasets page', async () => {
    await page.waitForSelector('#create-dataset');
    await page.fill('#dataset-name', 'cities');
    await page.fill('#dataset-description', 'echo round trip');
    await shot('datasets');
    await page.click('#create-dataset button[type=submit]');
    await page.waitForSelector('#import-file');
    datasetUrl = page.url().split('?')[0];
  });

  await inStep('import a file', async () => {
    const bad = path.join(work, 'bad.jsonl');
    writeFileSync(bad, '{"input": "ok"}\n{"inptu": "typo"}\n');
    await page.setInputFiles('#import-file', bad);
    const error = await page.textContent('#import-error');
    assert.match(error, /line 2: missing `input`/);
    await page.setInputFiles('#import-file', datasetFile(work));
    await page.click('#import-confirm');
    await page.waitForSelector('#items-table tbody tr');
    assert.equal(await page.locator('#items-table tbody tr').count(), 50, 'one page of 50 items');
    assert.match(await page.textContent('.pager'), new RegExp(`of ${ITEMS}`));
    await shot('dataset-items');
  });

  await inStep('search, edit and history of an item', async () => {
    await page.fill('#item-search', 'city-299');
    await page.waitForFunction(() => document.querySelectorAll('#items-table tbody tr').length === 1);
    await page.click('#items-table tbody tr button.edit');
    await page.fill('#edit-expected-0', '"city-299 edited"');
    await page.press('#edit-expected-0', 'Control+Enter');
    await page.waitForFunction(() => document.querySelector('#items-table tbody tr')?.textContent.includes('city-299 edited'));
    await page.click('#items-table tbody tr button:has-text("History")');
    await page.waitForSelector('#item-history');
    assert.match(await page.textContent('#item-history'), /2 version\(s\)/);
    await shot('item-history');
    await page.keyboard.press('Escape');
    // Put it back, through the same editor.
    await page.click('#items-table tbody tr button.edit');
    await page.fill('#edit-expected-0', '"city-299"');
    await page.click('#items-table tbody tr button.save');
    await page.waitForFunction(() => !document.querySelector('#items-table tbody tr')?.textContent.includes('edited'));
  });

  let runA;
  let runB;
  await inStep('trigger a run and watch it', async () => {
    runA = await triggerRun(datasetUrl, { 'exact-match': null, levenshtein: null });
    await shot('run-results');
  });

  await inStep('open a result and filter', async () => {
    // Item 4 (index 3) has a ground truth that differs in case only.
    await page.click('#results-table tbody tr[data-item-index="3"]');
    await page.waitForSelector('#result-panel');
    const panel = await page.textContent('#result-panel');
    assert.match(panel, /city-3/);
    assert.match(panel, /output differs from the ground truth/);
    assert.equal(await page.locator('#result-diff del').count() > 0, true, 'the diff marks the ground truth');
    await shot('result-panel');
    await page.keyboard.press('Escape');
    await page.selectOption('#filter-scorer', 'exact-match');
    await page.fill('#filter-below', '0.5');
    await page.press('#filter-below', 'Enter');
    // The server filters: the count is the run's, not a page's.
    await page.waitForSelector('#filter-count');
    assert.equal(await page.textContent('#filter-count'), `${caseOnly + different} matching results`);
    assert.equal(await page.locator('#results-table tbody tr').count(), Math.min(50, caseOnly + different));
    assert.match(page.url(), /below=0\.5/, 'the filter is in the address, so it survives a reload');
    const hist = await page.getAttribute('[data-scorer="exact-match"] .hist', 'aria-label');
    assert.equal(hist, `histogram of exact-match scores: ${caseOnly + different}, 0, 0, 0, 0, 0, 0, 0, 0, ${ITEMS - caseOnly - different}`);
    await shot('run-results-filtered');
  });

  await inStep('a second run and the comparison', async () => {
    runB = await triggerRun(datasetUrl, { 'exact-match': { ignoreCase: true }, levenshtein: null });
    await page.goto(`${datasetUrl}?tab=runs`);
    await page.waitForSelector('#runs-table');
    await page.check(`tr[data-run-id="${runA}"] input.pick`);
    await page.check(`tr[data-run-id="${runB}"] input.pick`);
    await page.click('#compare-runs');
    await page.waitForSelector('#scorer-deltas');
    const row = await page.textContent('#scorer-deltas tr[data-scorer="exact-match"]');
    const delta = (caseOnly / ITEMS).toFixed(3);
    assert.ok(row.includes(`+${delta}`) || row.includes(`-${delta}`), `${row} shows the delta ${delta}`);
    assert.match(row, /p=\d\.\d{3} (not )?significant/, `${row} shows the paired t-test`);
    await page.click('#show-improved');
    const improved = await page.locator('#improved-items tbody tr').count();
    assert.ok(improved > 0, 'items improved');
    await page.click('#improved-items tbody tr button');
    await page.waitForSelector('#side-panel');
    assert.match(await page.textContent('#side-panel'), /A \(baseline\)[\s\S]*B \(candidate\)/);
    await shot('compare');
  });

  await inStep('plugins: list, upload a good one, inspect', async () => {
    await page.goto(`${baseUrl}/#/plugins`);
    await page.waitForSelector('#plugins-table');
    assert.equal(await page.locator('tr[data-plugin-id="keyword-coverage"]').count(), 0);
    await page.setInputFiles('#plugin-file', path.join(pluginDir, `${UPLOADED}.wasm`));
    await page.click('#plugin-upload');
    await page.waitForSelector('#upload-ok');
    await page.waitForSelector('tr[data-plugin-id="keyword-coverage"]');
    await shot('plugins');
    await page.click('tr[data-plugin-id="keyword-coverage"] a');
    await page.waitForSelector('#plugin-detail');
    assert.match(await page.textContent('#plugin-detail'), /assay:plugin\/scorer@/);
    await shot('plugin-detail');
  });

  await inStep('plugins: a refused upload shows the loader error', async () => {
    await page.goto(`${baseUrl}/#/plugins`);
    await page.waitForSelector('#plugins-table');
    await page.setInputFiles('#plugin-file', path.join(pluginDir, 'old_contract.wasm'));
    await page.click('#plugin-upload');
    await page.waitForSelector('#upload-error');
    const message = await page.textContent('#upload-error');
    assert.match(message, /contract/i);
    assert.match(await page.textContent('#upload-outcome'), /Refused \(422 invalid_plugin\)/);
    await shot('plugin-refused');
  }, [/status of 422/]);
});
