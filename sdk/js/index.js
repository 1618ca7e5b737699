// Write assay scorers and targets in JavaScript.
//
// A scorer is a function (or an object with a `score` method) declared with
// `scorer(...)`; a target one declared with `target(...)`. Inputs arrive as
// JavaScript values (the JSON already parsed), errors are the classes
// `InvalidInput`, `Transient` and `Failed`, and `assay-plugin/testing` runs
// a plugin in Node exactly as its component would, without building wasm.
// Build a component with `node sdk/js/build.js my-scorer.js` (README.md).

/** The version of the `assay:plugin` WIT contract this SDK builds against. */
export const CONTRACT_VERSION = '0.1.0';

/** Base class of the errors a plugin throws on purpose. Anything else
 * thrown is reported as `failed`, its stack printed to the captured stderr. */
export class PluginError extends Error {
  /** The contract's name for this kind of error. */
  get kind() {
    return 'failed';
  }
}

/** The item or config cannot be handled; the host never retries. */
export class InvalidInput extends PluginError {
  get kind() {
    return 'invalid-input';
  }
}

/** A passing failure (rate limit, upstream down); the host may retry. */
export class Transient extends PluginError {
  get kind() {
    return 'transient';
  }
}

/** Any other failure; not retried. */
export class Failed extends PluginError {
  get kind() {
    return 'failed';
  }
}

/** The text of a JSON value: a string is its text, anything else its
 * compact JSON (`{"a":1}`, `42`, `true`, `null`). */
export function jsonText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** One dataset item, its JSON fields parsed. `groundTruth` and `metadata`
 * are `undefined` when absent. */
export class Item {
  constructor({ id, input, groundTruth, metadata }) {
    this.id = id;
    this.input = input;
    this.groundTruth = groundTruth ?? undefined;
    this.metadata = metadata ?? undefined;
  }

  /** The input as text (see `jsonText`). */
  inputText() {
    return jsonText(this.input);
  }

  /** The ground truth; `InvalidInput` naming the item when it has none. */
  requireGroundTruth() {
    if (this.groundTruth === undefined) {
      throw new InvalidInput(`item \`${this.id}\` has no ground truth`);
    }
    return this.groundTruth;
  }

  /** The ground truth as text, `undefined` when absent. */
  groundTruthText() {
    return this.groundTruth === undefined ? undefined : jsonText(this.groundTruth);
  }
}

const typeName = (v) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);

/** `defaults` overridden by the run's config. An absent or `null` config
 * gives the defaults; a config that is not an object, a field not in
 * `defaults` (a typo) or a value of another type than its default is
 * `InvalidInput` naming the field: nothing is silently ignored. */
export function readConfig(config, defaults) {
  const merged = { ...defaults };
  if (config === undefined || config === null) return merged;
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new InvalidInput(`invalid config: expected an object, got ${jsonText(config)}`);
  }
  for (const [key, value] of Object.entries(config)) {
    if (!Object.hasOwn(defaults, key)) {
      const known = Object.keys(defaults).map((k) => `\`${k}\``).join(', ') || 'none';
      throw new InvalidInput(`invalid config: unknown field \`${key}\` (known: ${known})`);
    }
    const def = defaults[key];
    if (def !== null && def !== undefined && value !== null && typeName(def) !== typeName(value)) {
      throw new InvalidInput(
        `invalid config at \`${key}\`: expected ${typeName(def)}, got ${jsonText(value)}`,
      );
    }
    merged[key] = value;
  }
  return merged;
}

/** Everything a scorer gets for one item. */
export class ScoreInput {
  constructor({ item, output, hasOutput, config }) {
    this.item = item;
    /** The target's output; `undefined` when the target produced none. */
    this.output = hasOutput ? output : undefined;
    /** Whether the target produced an output (it may be JSON `null`). */
    this.hasOutput = hasOutput;
    /** The run's config for this scorer, `undefined` when not given. */
    this.config = config;
  }

  /** The output as text, `undefined` without output. */
  outputText() {
    return this.hasOutput ? jsonText(this.output) : undefined;
  }

  /** The ground truth as text, `undefined` when the item has none. */
  groundTruthText() {
    return this.item.groundTruthText();
  }

  /** The output; `InvalidInput` when the target produced none. */
  requireOutput() {
    if (!this.hasOutput) throw new InvalidInput('the target produced no output');
    return this.output;
  }

  /** The config merged over `defaults`; see `readConfig`. */
  readConfig(defaults) {
    return readConfig(this.config, defaults);
  }
}

/** Everything a target gets for one item. */
export class TargetInput {
  constructor({ item, config }) {
    this.item = item;
    this.config = config;
  }

  /** The config merged over `defaults`; see `readConfig`. */
  readConfig(defaults) {
    return readConfig(this.config, defaults);
  }
}

/** A score in [0, 1] with an optional reason and metadata. A scorer may
 * also return a bare number or a boolean (1 or 0). NaN or a value outside
 * [0, 1] is a bug in the scorer: it becomes a `failed` error, never a
 * stored score. */
export class Score {
  constructor(value, { reason, metadata } = {}) {
    this.value = value;
    this.reason = reason;
    this.metadata = metadata;
  }

  /** Throws `Failed` unless the value is a number in [0, 1]. */
  check() {
    if (typeof this.value === 'boolean') this.value = this.value ? 1 : 0;
    if (typeof this.value !== 'number') {
      throw new Failed(`score ${jsonText(this.value)} is not a number`);
    }
    if (!(this.value >= 0 && this.value <= 1)) {
      throw new Failed(`score ${this.value} is outside [0, 1]`);
    }
    if (this.reason !== undefined && this.reason !== null && typeof this.reason !== 'string') {
      throw new Failed(`score reason must be a string, got ${typeName(this.reason)}`);
    }
    return this;
  }
}

/** A target's output (any JSON value) and an optional trace id. */
export class TargetOutput {
  constructor(output, { traceId } = {}) {
    this.output = output;
    this.traceId = traceId;
  }
}

const ID = /^[a-z0-9][a-z0-9-]*$/;

/** Plugins declared so far; a component exports exactly one. */
const registry = [];

function declare(kind, method, { id, name, description = '' }, impl) {
  if (typeof id !== 'string' || !ID.test(id)) {
    throw new TypeError(`plugin id ${JSON.stringify(id)} must be lowercase [a-z0-9-]`);
  }
  let call;
  if (typeof impl === 'function') {
    call = impl;
  } else if (impl && typeof impl[method] === 'function') {
    call = (input) => impl[method](input);
  } else {
    throw new TypeError(`${kind}(...) takes a function or an object with a \`${method}\` method`);
  }
  const plugin = { kind, info: { id, name: name ?? id, description }, call };
  registry.push(plugin);
  return plugin;
}

/** Declares a scorer: `impl` is `(input: ScoreInput) => Score | number |
 * boolean` or an object with such a `score` method. */
export function scorer(info, impl) {
  return declare('scorer', 'score', info, impl);
}

/** Declares a target: `impl` is `(input: TargetInput) => TargetOutput |
 * value` (any JSON value is the output) or an object with a `run` method. */
export function target(info, impl) {
  return declare('target', 'run', info, impl);
}

/** The one plugin the loaded modules declared (of `kind` if given). */
export function thePlugin(kind) {
  const found = registry.filter((p) => kind === undefined || p.kind === kind);
  if (found.length !== 1) {
    const names = found.map((p) => p.info.id).join(', ') || 'none';
    throw new Error(`a component exports exactly one ${kind ?? 'scorer or target'}; declared: ${names}`);
  }
  return found[0];
}

function decode(what, text) {
  if (text === undefined || text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidInput(`invalid ${what}: ${e.message}`);
  }
}

function encode(what, value) {
  let text;
  try {
    text = JSON.stringify(value, (_k, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`${v} is not a JSON number`);
      if (typeof v === 'bigint') throw new Error('a BigInt is not JSON');
      return v;
    });
  } catch (e) {
    throw new Failed(`the ${what} is not JSON: ${e.message}`);
  }
  if (text === undefined) throw new Failed(`the ${what} is not JSON: ${typeName(value)}`);
  return text;
}

/** An item from the JSON texts the contract passes. */
export function decodeItem({ id, input, groundTruth, metadata }) {
  return new Item({
    id,
    input: decode('input', input),
    groundTruth: decode('ground truth', groundTruth),
    metadata: decode('metadata', metadata),
  });
}

/** Scores with JSON texts in; the one code path of the component and the
 * test helpers. Returns `{ value, reason, metadata }` (metadata as text). */
export function scoreJson(plugin, item, output, config) {
  const hasOutput = output !== undefined && output !== null;
  const input = new ScoreInput({
    item,
    output: decode('output', output),
    hasOutput,
    config: decode('config', config),
  });
  const result = plugin.call(input);
  if (result && typeof result.then === 'function') {
    throw new Failed('a scorer must return a score, not a Promise (calls are synchronous)');
  }
  let score;
  if (result instanceof Score) score = result;
  else if (typeof result === 'number' || typeof result === 'boolean') score = new Score(result);
  else throw new Failed(`a scorer returns a Score or a number, not ${typeName(result)}`);
  score.check();
  return {
    value: score.value,
    reason: score.reason ?? undefined,
    metadata: score.metadata === undefined ? undefined : encode('score metadata', score.metadata),
  };
}

/** Runs a target with JSON texts in; returns `{ output, traceId }` (output
 * as text). */
export function runJson(plugin, item, config) {
  let result = plugin.call(new TargetInput({ item, config: decode('config', config) }));
  if (result && typeof result.then === 'function') {
    throw new Failed('a target must return its output, not a Promise (calls are synchronous)');
  }
  if (!(result instanceof TargetOutput)) result = new TargetOutput(result);
  if (result.traceId !== undefined && typeof result.traceId !== 'string') {
    throw new Failed('traceId must be a string');
  }
  return { output: encode('output', result.output), traceId: result.traceId };
}
