// Run a plugin in Node exactly as its component would: inputs go through
// JSON text and back, scores are range-checked (a score of 1.5 throws
// `Failed` here as it fails in the sandbox), outputs must be JSON.
//
// Calling your function directly tests your logic only; these helpers also
// test what the host will see. Anything thrown other than a `PluginError`
// propagates (in the sandbox it becomes a `failed` error).

import { Score, TargetOutput, decodeItem, runJson, scoreJson } from './index.js';

const text = (v) => (v === undefined ? undefined : JSON.stringify(v));

/** Scores one item the way the component does. Leave `output` out to test
 * a target that produced no output. */
export function score(plugin, { input = '', output, groundTruth, metadata, config, id = 'item-1' } = {}) {
  if (plugin.kind !== 'scorer') throw new TypeError(`${plugin.info.id} is not a scorer`);
  const item = decodeItem({ id, input: text(input), groundTruth: text(groundTruth), metadata: text(metadata) });
  const s = scoreJson(plugin, item, text(output), text(config));
  return new Score(s.value, {
    reason: s.reason,
    metadata: s.metadata === undefined ? undefined : JSON.parse(s.metadata),
  });
}

/** Runs a target on one item the way the component does. */
export function run(plugin, { input = '', groundTruth, metadata, config, id = 'item-1' } = {}) {
  if (plugin.kind !== 'target') throw new TypeError(`${plugin.info.id} is not a target`);
  const item = decodeItem({ id, input: text(input), groundTruth: text(groundTruth), metadata: text(metadata) });
  const out = runJson(plugin, item, text(config));
  return new TargetOutput(JSON.parse(out.output), { traceId: out.traceId });
}
