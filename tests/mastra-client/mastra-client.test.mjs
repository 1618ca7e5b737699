// Drives Mastra's published client, @mastra/client-js (pinned in
// package.json), against a real `assay serve` and checks every answer
// against Mastra's published response schemas: the zod schemas of
// @mastra/server (what a Mastra server promises its clients) and, for score
// rows, @mastra/core's ScoreRowData schema.
//
// Needs the assay binary (`cargo build`; ASSAY_BIN overrides the lookup) and
// the shipped plugins (`scripts/build-plugins.sh`). Run with `npm test` in
// this folder (scripts/test.sh does, after cargo test).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { MastraClient } from '@mastra/client-js';
import * as mastra from '@mastra/server/schemas';
import { scoreRowDataSchema } from '@mastra/core/evals';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, 'target');

/** The newest of the release and debug builds of `assay`. */
function assayBinary() {
  if (process.env.ASSAY_BIN) return process.env.ASSAY_BIN;
  const candidates = ['release', 'debug']
    .map((profile) => path.join(targetDir, profile, 'assay'))
    .filter((p) => existsSync(p));
  if (candidates.length === 0) {
    throw new Error(`no assay binary under ${targetDir}/{release,debug}: run \`cargo build\` first`);
  }
  candidates.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return candidates[0];
}

/** The shipped plugin `<crate>` as built by scripts/build-plugins.sh. */
function pluginBytes(crate) {
  const file = path.join(targetDir, 'wasm32-wasip2', 'plugin', `${crate.replaceAll('-', '_')}.wasm`);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run scripts/build-plugins.sh first`);
  }
  return readFileSync(file);
}

let server;
let workDir;
let baseUrl;
let client;
/** Headers every request carries (a bearer token when the server wants one). */
const headers = process.env.ASSAY_TOKEN ? { authorization: `Bearer ${process.env.ASSAY_TOKEN}` } : {};

/** Starts `assay serve` on a free loopback port with a temp SQLite database. */
async function startServer() {
  const bin = assayBinary();
  workDir = mkdtempSync(path.join(tmpdir(), 'assay-mastra-'));
  const args = [
    'serve',
    '--addr', '127.0.0.1:0',
    '--database-url', `sqlite://${path.join(workDir, 'assay.db')}?mode=rwc`,
    '--cache-dir', path.join(workDir, 'cache'),
  ];
  // Servers that authenticate /api take --no-auth for a loopback test
  // server (which then acts as the `default` tenant), unless a token is given.
  const help = spawnSync(bin, ['serve', '--help'], { encoding: 'utf8' }).stdout ?? '';
  if (help.includes('--no-auth') && !process.env.ASSAY_TOKEN) args.push('--no-auth');
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`assay serve did not start:\n${log}`)), 30_000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`assay serve exited with ${code}:\n${log}`));
    });
  });
  child.stderr.removeAllListeners('data');
  child.stderr.resume();
  child.stdout.resume();
  return { child, url };
}

/** Registers a shipped plugin through the API (the client has no call for it). */
async function registerPlugin(crate) {
  const res = await fetch(`${baseUrl}/api/plugins`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/wasm' },
    body: pluginBytes(crate),
  });
  const body = await res.json();
  assert.equal(res.status, 201, `registering ${crate}: ${JSON.stringify(body)}`);
  return body.id;
}

/** `value` parses with Mastra's zod `schema`; answers the parsed value. */
function conforms(schema, value, what) {
  const parsed = schema.safeParse(value);
  assert.ok(
    parsed.success,
    `${what} does not match Mastra's schema: ${parsed.error?.message}\n${JSON.stringify(value, null, 2)}`,
  );
  return parsed.data;
}

/** The client call rejects with `status`; answers the error body. */
async function rejects(promise, status) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `expected HTTP ${status}, got: ${e.message}`);
    return e.body;
  }
  assert.fail(`expected HTTP ${status}, the call succeeded`);
}

/** Polls the experiment until it is finished. */
async function finished(datasetId, experimentId) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const exp = await client.getDatasetExperiment(datasetId, experimentId);
    conforms(mastra.experimentResponseSchema, exp, 'getDatasetExperiment');
    if (exp.status === 'completed' || exp.status === 'failed') return exp;
    assert.ok(Date.now() < deadline, `experiment ${experimentId} still ${exp.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  ({ child: server, url: baseUrl } = await startServer());
  client = new MastraClient({ baseUrl, headers, retries: 0 });
  for (const crate of ['echo', 'exact-match', 'levenshtein', 'contains']) {
    await registerPlugin(crate);
  }
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

// State shared by the steps below, which run in order.
const s = {};

test('createDataset / getDataset / listDatasets / updateDataset', async () => {
  const created = await client.createDataset({
    name: 'capitals',
    description: 'capital cities',
    metadata: { owner: 'qa' },
    groundTruthSchema: { type: 'string' },
  });
  conforms(mastra.datasetResponseSchema, created, 'createDataset');
  assert.equal(created.name, 'capitals');
  assert.deepEqual(created.groundTruthSchema, { type: 'string' });
  assert.deepEqual(created.metadata, { owner: 'qa' });
  s.ds = created.id;

  const got = await client.getDataset(s.ds);
  conforms(mastra.datasetResponseSchema, got, 'getDataset');
  assert.equal(got.id, s.ds);

  const list = await client.listDatasets({ page: 0, perPage: 10 });
  conforms(mastra.listDatasetsResponseSchema, list, 'listDatasets');
  assert.ok(list.datasets.some((d) => d.id === s.ds));
  assert.equal(list.pagination.total, 1);

  const updated = await client.updateDataset({ datasetId: s.ds, description: 'world capitals' });
  conforms(mastra.datasetResponseSchema, updated, 'updateDataset');
  assert.equal(updated.description, 'world capitals');
});

test('addDatasetItem keeps groundTruth; unknown fields are refused, not dropped', async () => {
  const item = await client.addDatasetItem({ datasetId: s.ds, input: 'France', groundTruth: 'Paris' });
  conforms(mastra.datasetItemResponseSchema, item, 'addDatasetItem');
  assert.equal(item.groundTruth, 'Paris');
  assert.equal(item.input, 'France');
  s.france = item.id;
  s.afterFirstAdd = item.datasetVersion;

  // A Mastra field assay cannot store is a 400 naming it, and adds nothing.
  const body = await rejects(
    client.addDatasetItem({ datasetId: s.ds, input: 'x', groundTruth: 'y', externalId: 'ext-1' }),
    400,
  );
  assert.match(body.message, /externalId/);
  // Both names of one field at once are refused too.
  await rejects(client.addDatasetItem({ datasetId: s.ds, input: 'x', groundTruth: 'y', expectedOutput: 'z' }), 400);
  const list = await client.listDatasetItems(s.ds);
  assert.equal(list.pagination.total, 1);
});

test('batchInsertDatasetItems / listDatasetItems / getDatasetItem', async () => {
  const batch = await client.batchInsertDatasetItems({
    datasetId: s.ds,
    items: [
      { input: 'Japan', groundTruth: 'Tokyo' },
      { input: 'Italy', groundTruth: 'Rome' },
      { input: 'Peru', groundTruth: 'Lima' },
      { input: 'Chad', groundTruth: "N'Djamena" },
    ],
  });
  conforms(mastra.batchInsertItemsResponseSchema, batch, 'batchInsertDatasetItems');
  assert.equal(batch.count, 4);
  s.batchIds = batch.items.map((i) => i.id);

  const page = await client.listDatasetItems(s.ds, { page: 0, perPage: 3 });
  conforms(mastra.listItemsResponseSchema, page, 'listDatasetItems');
  assert.equal(page.pagination.total, 5);
  assert.equal(page.pagination.hasMore, true);
  assert.equal(page.items.length, 3);
  const found = await client.listDatasetItems(s.ds, { search: 'tokyo' });
  conforms(mastra.listItemsResponseSchema, found, 'listDatasetItems (search)');
  assert.deepEqual(found.items.map((i) => i.input), ['Japan']);

  const one = await client.getDatasetItem(s.ds, s.batchIds[1]);
  conforms(mastra.datasetItemResponseSchema, one, 'getDatasetItem');
  assert.equal(one.groundTruth, 'Rome');
});

test('updateDatasetItem / getItemHistory / getDatasetItemVersion / listDatasetVersions', async () => {
  const updated = await client.updateDatasetItem({ datasetId: s.ds, itemId: s.france, groundTruth: 'paris' });
  conforms(mastra.datasetItemResponseSchema, updated, 'updateDatasetItem');
  assert.equal(updated.groundTruth, 'paris');
  assert.ok(updated.datasetVersion > s.afterFirstAdd);

  const history = await client.getItemHistory(s.ds, s.france);
  conforms(mastra.listItemVersionsResponseSchema, history, 'getItemHistory');
  assert.equal(history.history.length, 2);
  assert.equal(history.history[0].groundTruth, 'paris');
  assert.equal(history.history[0].validTo, null);
  assert.equal(history.history[1].groundTruth, 'Paris');
  assert.equal(history.history[1].validTo, updated.datasetVersion);

  // The number is a dataset version: the item as it was then.
  const old = await client.getDatasetItemVersion(s.ds, s.france, s.afterFirstAdd);
  conforms(mastra.datasetItemResponseSchema, old, 'getDatasetItemVersion');
  assert.equal(old.groundTruth, 'Paris');
  const now = await client.getDatasetItemVersion(s.ds, s.france, updated.datasetVersion);
  assert.equal(now.groundTruth, 'paris');
  await rejects(client.getDatasetItemVersion(s.ds, s.batchIds[0], s.afterFirstAdd), 404);

  const versions = await client.listDatasetVersions(s.ds);
  conforms(mastra.listDatasetVersionsResponseSchema, versions, 'listDatasetVersions');
  assert.equal(versions.versions[0].version, updated.datasetVersion);
});

test('deleteDatasetItem / batchDeleteDatasetItems', async () => {
  const extra = await client.batchInsertDatasetItems({
    datasetId: s.ds,
    items: [{ input: 'a' }, { input: 'b' }, { input: 'c' }],
  });
  const [a, b, c] = extra.items.map((i) => i.id);
  const deleted = await client.deleteDatasetItem(s.ds, a);
  conforms(mastra.successResponseSchema, deleted, 'deleteDatasetItem');
  await rejects(client.getDatasetItem(s.ds, a), 404);
  const batch = await client.batchDeleteDatasetItems({ datasetId: s.ds, itemIds: [b, c] });
  conforms(mastra.batchDeleteItemsResponseSchema, batch, 'batchDeleteDatasetItems');
  assert.equal(batch.deletedCount, 2);
  const history = await client.getItemHistory(s.ds, b);
  conforms(mastra.listItemVersionsResponseSchema, history, 'getItemHistory (deleted item)');
  assert.equal(history.history[0].isDeleted, true);
  const list = await client.listDatasetItems(s.ds);
  assert.equal(list.pagination.total, 5);
});

test('triggerDatasetExperiment with assay plugins, polled to completion', async () => {
  const summary = await client.triggerDatasetExperiment({
    datasetId: s.ds,
    targetType: 'agent',
    targetId: 'echo',
    scorerIds: ['exact-match', 'levenshtein'],
    maxConcurrency: 2,
  });
  conforms(mastra.experimentSummaryResponseSchema, summary, 'triggerDatasetExperiment');
  assert.equal(summary.status, 'pending');
  assert.equal(summary.totalItems, 5);
  s.expA = summary.experimentId;

  const done = await finished(s.ds, s.expA);
  assert.equal(done.status, 'completed');
  assert.equal(done.succeededCount, 5);
  assert.equal(done.targetType, 'agent');
  assert.deepEqual(done.scorerIds, ['exact-match', 'levenshtein']);
});

test('listDatasetExperimentResults', async () => {
  const results = await client.listDatasetExperimentResults(s.ds, s.expA, { page: 0, perPage: 10 });
  conforms(mastra.listExperimentResultsResponseSchema, results, 'listDatasetExperimentResults');
  assert.equal(results.pagination.total, 5);
  const byInput = Object.fromEntries(results.results.map((r) => [r.input, r]));
  // echo answers its input: "France" against ground truth "paris".
  assert.equal(byInput.France.output, 'France');
  assert.equal(byInput.France.groundTruth, 'paris');
  assert.equal(byInput.France.error, null);
  assert.ok(results.results.every((r) => r.experimentId === s.expA));
});

test('listScoresByRunId', async () => {
  const scores = await client.listScoresByRunId({ runId: s.expA, page: 0, perPage: 100 });
  conforms(mastra.scoresWithPaginationResponseSchema, scores, 'listScoresByRunId');
  assert.equal(scores.pagination.total, 10); // 5 items x 2 scorers
  for (const row of scores.scores) {
    // ScoreRowData's timestamps are Date objects in Mastra's store; JSON carries strings.
    conforms(
      scoreRowDataSchema,
      { ...row, createdAt: new Date(row.createdAt), updatedAt: row.updatedAt && new Date(row.updatedAt) },
      'score row',
    );
    assert.equal(row.runId, s.expA);
  }
  const exact = scores.scores.filter((r) => r.scorerId === 'exact-match');
  assert.equal(exact.length, 5);
  assert.ok(exact.every((r) => r.score === 0), 'echo never equals the capital');
  const page = await client.listScoresByRunId({ runId: s.expA, page: 1, perPage: 4 });
  assert.equal(page.scores.length, 4);
  assert.equal(page.pagination.hasMore, true);
});

test('listDatasetExperiments / listExperiments / compareExperiments', async () => {
  // Make one item pass: its ground truth becomes what echo answers.
  await client.updateDatasetItem({ datasetId: s.ds, itemId: s.france, groundTruth: 'France' });
  const second = await client.triggerDatasetExperiment({
    datasetId: s.ds,
    targetType: 'agent',
    targetId: 'echo',
    scorerIds: ['exact-match', 'levenshtein'],
  });
  s.expB = second.experimentId;
  await finished(s.ds, s.expB);

  const perDataset = await client.listDatasetExperiments(s.ds);
  conforms(mastra.listExperimentsResponseSchema, perDataset, 'listDatasetExperiments');
  assert.deepEqual(perDataset.experiments.map((e) => e.id), [s.expB, s.expA]);
  const all = await client.listExperiments({ page: 0, perPage: 10 });
  conforms(mastra.listExperimentsResponseSchema, all, 'listExperiments');
  assert.equal(all.pagination.total, 2);

  const cmp = await client.compareExperiments({ datasetId: s.ds, experimentIdA: s.expA, experimentIdB: s.expB });
  conforms(mastra.comparisonResponseSchema, cmp, 'compareExperiments');
  assert.equal(cmp.baselineId, s.expA);
  assert.equal(cmp.items.length, 5);
  const france = cmp.items.find((i) => i.itemId === s.france);
  assert.equal(france.results[s.expA].scores['exact-match'], 0);
  assert.equal(france.results[s.expB].scores['exact-match'], 1);
  assert.equal(france.results[s.expB].output, 'France');
});

test('deleteDatasetExperiment / deleteExperiment / deleteDataset', async () => {
  const a = await client.deleteDatasetExperiment(s.ds, s.expA);
  conforms(mastra.successResponseSchema, a, 'deleteDatasetExperiment');
  await rejects(client.getDatasetExperiment(s.ds, s.expA), 404);
  const b = await client.deleteExperiment(s.expB);
  conforms(mastra.successResponseSchema, b, 'deleteExperiment');
  await rejects(client.getDatasetExperiment(s.ds, s.expB), 404);
  const left = await client.listExperiments();
  assert.equal(left.pagination.total, 0);

  const gone = await client.deleteDataset(s.ds);
  conforms(mastra.successResponseSchema, gone, 'deleteDataset');
  await rejects(client.getDataset(s.ds), 404);
});
