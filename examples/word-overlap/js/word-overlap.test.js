import assert from 'node:assert/strict';
import { test } from 'node:test';

import { InvalidInput } from 'assay-plugin';
import { score } from 'assay-plugin/testing';
import { wordOverlap } from './word-overlap.js';

test('identical words score one', () => {
  const s = score(wordOverlap, { output: 'Rome', groundTruth: 'rome' });
  assert.equal(s.value, 1);
  assert.equal(s.reason, '1 of 1 words shared');
});

test('partial overlap is the Jaccard index', () => {
  const s = score(wordOverlap, { output: 'The capital of Italy is Rome.', groundTruth: 'Rome' });
  assert.equal(s.value, 1 / 6);
});

test('minWordLength ignores short words', () => {
  const s = score(wordOverlap, { output: 'it is Rome', groundTruth: 'Rome', config: { minWordLength: 3 } });
  assert.equal(s.value, 1);
});

test('no ground truth is invalid input', () => {
  assert.throws(() => score(wordOverlap, { output: 'Rome' }), (e) => e instanceof InvalidInput && /item `item-1` has no ground truth/.test(e.message));
});

test('an unknown config field is invalid input', () => {
  assert.throws(
    () => score(wordOverlap, { output: 'x', groundTruth: 'x', config: { minLength: 2 } }),
    (e) => e instanceof InvalidInput && /unknown field `minLength`/.test(e.message),
  );
});

test('no output scores zero', () => {
  assert.equal(score(wordOverlap, { groundTruth: 'Rome' }).value, 0);
});
