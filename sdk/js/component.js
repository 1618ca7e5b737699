// The component's exports: adapts the contract's calls (JSON as text,
// errors as the `plugin-error` variant) to the declared plugin. `build.js`
// bundles it with the plugin's module; it is not meant to be imported by
// plugins themselves.

import { InvalidInput, PluginError, Transient, decodeItem, runJson, scoreJson, thePlugin } from './index.js';

/** The contract's error for anything thrown (unexpected errors are
 * `failed`, their stack printed to the captured stderr). */
function witError(err) {
  if (err instanceof InvalidInput) return { tag: 'invalid-input', val: err.message };
  if (err instanceof Transient) return { tag: 'transient', val: err.message };
  if (err instanceof PluginError) return { tag: 'failed', val: err.message };
  const name = err && err.name ? `${err.name}: ` : '';
  const message = `${name}${err && err.message !== undefined ? err.message : String(err)}`;
  console.error(err && err.stack ? `${message}\n${err.stack}` : message);
  return { tag: 'failed', val: message };
}

/** Thrown out of an export, a value with a `payload` is the `err` case. */
class ComponentError extends Error {
  constructor(payload) {
    super(payload.val);
    this.payload = payload;
  }
}

const info = (kind) => {
  const { id, name, description } = thePlugin(kind).info;
  return { id, name, description };
};

function fromWitItem(item) {
  return decodeItem({
    id: item.id,
    input: item.input,
    groundTruth: item.groundTruth,
    metadata: item.metadata,
  });
}

export const scorerExport = {
  info: () => info('scorer'),
  score(item, output, config) {
    try {
      const s = scoreJson(thePlugin('scorer'), fromWitItem(item), output, config);
      return { value: s.value, reason: s.reason, metadata: s.metadata };
    } catch (err) {
      throw new ComponentError(witError(err));
    }
  },
};

export const targetExport = {
  info: () => info('target'),
  run(item, config) {
    try {
      const out = runJson(thePlugin('target'), fromWitItem(item), config);
      return { output: out.output, traceId: out.traceId };
    } catch (err) {
      throw new ComponentError(witError(err));
    }
  },
};
