// Tests of the JavaScript SDK itself (the native side; the host tests build
// components with it and check them in the sandbox). Each test declares its
// plugins in a fresh module instance, so registries do not mix.

import assert from 'node:assert/strict';
import { test } from 'node:test';

const fresh = async () => {
  const n = Math.random();
  const sdk = await import(`../index.js?${n}`);
  return sdk;
};

// `testing.js` imports `./index.js`; tests use the same instance.
import * as sdk from '../index.js';
import { run, score } from '../testing.js';

test('out-of-range and NaN scores are failed errors', () => {
  const s = sdk.scorer({ id: 'range' }, (input) => input.readConfig({ v: 0 }).v);
  assert.equal(score(s, { output: 'x', config: { v: 1 } }).value, 1);
  assert.equal(score(s, { output: 'x', config: { v: 0 } }).value, 0);
  for (const bad of [1.5, -0.1]) {
    assert.throws(() => score(s, { output: 'x', config: { v: bad } }), (e) => e instanceof sdk.Failed && /outside \[0, 1\]/.test(e.message));
  }
  const nan = sdk.scorer({ id: 'nan' }, () => NaN);
  assert.throws(() => score(nan, { output: 'x' }), /NaN is outside/);
  const wrong = sdk.scorer({ id: 'wrong' }, () => '0.5');
  assert.throws(() => score(wrong, { output: 'x' }), /returns a Score or a number, not string/);
  const promise = sdk.scorer({ id: 'promise' }, async () => 1);
  assert.throws(() => score(promise, { output: 'x' }), /not a Promise/);
});

test('booleans are scores', () => {
  const b = sdk.scorer({ id: 'bool' }, (input) => input.output === 'yes');
  assert.equal(score(b, { output: 'yes' }).value, 1);
  assert.equal(score(b, { output: 'no' }).value, 0);
});

test('JSON arrives parsed; null is an output, no output is not', () => {
  let seen;
  const spy = sdk.scorer({ id: 'spy' }, (input) => {
    seen = input;
    return new sdk.Score(1, { metadata: { n: [1, 2] } });
  });
  const s = score(spy, { input: { q: [1, 'two'] }, output: null, groundTruth: 3.5, metadata: { k: true }, config: { a: 1 }, id: 'i-9' });
  assert.equal(seen.item.id, 'i-9');
  assert.deepEqual(seen.item.input, { q: [1, 'two'] });
  assert.equal(seen.item.groundTruth, 3.5);
  assert.deepEqual(seen.item.metadata, { k: true });
  assert.deepEqual(seen.config, { a: 1 });
  assert.equal(seen.hasOutput, true);
  assert.equal(seen.output, null);
  assert.deepEqual(s.metadata, { n: [1, 2] });
  score(spy, {});
  assert.equal(seen.hasOutput, false);
});

test('config errors name the field', () => {
  const c = sdk.scorer({ id: 'config' }, (input) => {
    input.readConfig({ ignoreCase: false, limit: 3 });
    return 1;
  });
  for (const config of [undefined, null, {}, { ignoreCase: true, limit: 4 }]) {
    assert.equal(score(c, { output: 'x', config }).value, 1);
  }
  const bad = [
    [{ ignorecase: true }, /unknown field `ignorecase`/],
    [{ ignoreCase: 'yes' }, /at `ignoreCase`: expected boolean/],
    [{ limit: '3' }, /at `limit`: expected number/],
    [[1, 2], /expected an object/],
  ];
  for (const [config, message] of bad) {
    assert.throws(() => score(c, { output: 'x', config }), (e) => e instanceof sdk.InvalidInput && message.test(e.message));
  }
});

test('an object is a plugin, errors are classes, outputs must be JSON', () => {
  const t = sdk.target({ id: 't', name: 'T' }, {
    run(input) {
      const { mode } = input.readConfig({ mode: 'ok' });
      if (mode === 'transient') throw new sdk.Transient('rate limited');
      if (mode === 'nan') return { x: NaN };
      return new sdk.TargetOutput({ echo: input.item.input }, { traceId: 'tr-1' });
    },
  });
  const out = run(t, { input: [1, 2] });
  assert.deepEqual(out.output, { echo: [1, 2] });
  assert.equal(out.traceId, 'tr-1');
  assert.throws(() => run(t, { config: { mode: 'transient' } }), (e) => e instanceof sdk.Transient && e.kind === 'transient');
  assert.throws(() => run(t, { config: { mode: 'nan' } }), (e) => e instanceof sdk.Failed && /output is not JSON/.test(e.message));
});

test('ids are checked; a component exports exactly one plugin', async () => {
  assert.throws(() => sdk.scorer({ id: 'Not Valid' }, () => 1), TypeError);
  const other = await fresh();
  assert.throws(() => other.thePlugin(), /exactly one scorer or target; declared: none/);
  other.scorer({ id: 'a' }, () => 1);
  assert.equal(other.thePlugin().info.id, 'a');
  other.scorer({ id: 'b' }, () => 1);
  assert.throws(() => other.thePlugin('scorer'), /declared: a, b/);
});

test('jsonText', () => {
  assert.equal(sdk.jsonText('Paris'), 'Paris');
  assert.equal(sdk.jsonText({ city: 'Paris', n: [1] }), '{"city":"Paris","n":[1]}');
  assert.equal(sdk.jsonText(true), 'true');
});

test('the WIT folder is the contract version the SDK declares', async () => {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { WIT_DIR } = await import('../build.js');
  const wit = await readFile(join(WIT_DIR, 'assay.wit'), 'utf8');
  assert.ok(wit.includes(`package assay:plugin@${sdk.CONTRACT_VERSION};`), `${WIT_DIR} is not ${sdk.CONTRACT_VERSION}`);
});
