#!/usr/bin/env node
// `node build.js SOURCE.js [-o OUT.wasm]`: builds a WASI component from a
// JavaScript (or TypeScript) module that declares one scorer or target.
//
// It imports SOURCE in Node to learn the plugin's kind, bundles SOURCE, its
// imports and this SDK into one ES module with rolldown (componentize-js
// takes a single module), and runs componentize-js (pinned in
// package.json) against the contract. componentize-js snapshots the engine
// after the module's top level ran, so that work is done once, at build time.

import { realpathSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SDK_DIR = dirname(fileURLToPath(import.meta.url));
/**
 * The folder under plugin-sdk/wit/ of the contract version this SDK builds
 * against (`CONTRACT_VERSION` 0.1.0: one folder per major.minor).
 */
export const WIT_FOLDER = 'v0.1';
/** The contract. The only place the JavaScript SDK names the WIT folder. */
export const WIT_DIR = resolve(SDK_DIR, '..', '..', 'plugin-sdk', 'wit', WIT_FOLDER);

const WORLDS = {
  scorer: { world: 'scorer-plugin', exportAs: 'scorer', from: 'scorerExport' },
  target: { world: 'target-plugin', exportAs: 'target', from: 'targetExport' },
};

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

/** Bundles `entryText` (an ES module importing SOURCE) into one file. */
async function bundleModule(entryText, dir, name) {
  const { rolldown } = await import('rolldown');
  const entry = join(dir, `${name}-entry.js`);
  await writeFile(entry, entryText);
  const out = join(dir, `${name}.js`);
  const build = await rolldown({
    input: entry,
    platform: 'neutral',
    // A plugin importing `assay-plugin` gets this SDK, wherever it lives.
    resolve: {
      alias: {
        'assay-plugin/testing': join(SDK_DIR, 'testing.js'),
        'assay-plugin': join(SDK_DIR, 'index.js'),
      },
    },
    logLevel: 'warn',
  });
  await build.write({ file: out, format: 'esm' });
  await build.close();
  return out;
}

/** The kind of the one plugin SOURCE declares: runs a bundle of it in Node
 * (bundled, so that `assay-plugin` resolves as in the component). */
async function pluginKind(source, dir) {
  const inspect = await bundleModule(
    `import ${JSON.stringify(source)};\n` +
      `export { thePlugin } from ${JSON.stringify(join(SDK_DIR, 'index.js'))};\n`,
    dir,
    'inspect',
  );
  const { thePlugin } = await import(pathToFileURL(inspect).href);
  try {
    return thePlugin().kind;
  } catch (e) {
    fail(`${source}: ${e.message}`);
  }
}

/** SOURCE, this SDK and the export of its world, as one ES module. */
function bundle(source, kind, dir) {
  const { exportAs, from } = WORLDS[kind];
  return bundleModule(
    `import ${JSON.stringify(source)};\n` +
      `export { ${from} as ${exportAs} } from ${JSON.stringify(join(SDK_DIR, 'component.js'))};\n`,
    dir,
    'bundle',
  );
}

export async function buildComponent(sourceArg, outArg) {
  const source = resolve(sourceArg);
  try {
    await stat(source);
  } catch {
    fail(`${sourceArg} does not exist`);
  }
  try {
    await stat(join(WIT_DIR, 'assay.wit'));
  } catch {
    fail(`the contract is missing at ${WIT_DIR}`);
  }
  const out = resolve(outArg ?? join(dirname(source), basename(source, extname(source)) + '.wasm'));
  let componentize;
  try {
    ({ componentize } = await import('@bytecodealliance/componentize-js'));
  } catch {
    fail('componentize-js not found: run `npm ci` in sdk/js (scripts/install-deps.sh --plugin-sdks does this)');
  }
  const dir = await mkdtemp(join(tmpdir(), 'assay-js-build-'));
  let kind;
  try {
    kind = await pluginKind(source, dir);
    const bundled = await bundle(source, kind, dir);
    const { component } = await componentize({
      sourcePath: bundled,
      witPath: WIT_DIR,
      worldName: WORLDS[kind].world,
      // The sandbox has no network: leave out the HTTP client and server.
      disableFeatures: ['http', 'fetch-event'],
    });
    await writeFile(out, component);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const { size } = await stat(out);
  console.log(`built ${kind}: ${out} (${size.toLocaleString('en-US')} bytes)`);
}

if (process.argv[1] && realpathSync(resolve(process.argv[1])) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  let source;
  let out;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-o' || args[i] === '--out') out = args[++i];
    else if (!source && !args[i].startsWith('-')) source = args[i];
    else fail(`unexpected argument ${args[i]}\nusage: node build.js SOURCE.js [-o OUT.wasm]`);
  }
  if (!source) fail('usage: node build.js SOURCE.js [-o OUT.wasm]');
  await buildComponent(source, out);
}
