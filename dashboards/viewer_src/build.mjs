// Bundles src/index.js (with three.js) into ONE minified file, dashboards/assets/sitetwin-viewer.js.
// Its first line records the sha256 of the sources, this script, package.json and package-lock.json
// (tests/dashboards/test_viewer_bundle.py recomputes it without npm: a source change without a rebuild fails).
// `node build.mjs --check` rebuilds into memory and compares byte for byte with the committed bundle.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'assets', 'sitetwin-viewer.js');

export function sourceFiles() {
  const src = readdirSync(join(here, 'src')).filter((f) => f.endsWith('.js')).map((f) => `src/${f}`);
  return [...src, 'build.mjs', 'package.json', 'package-lock.json'].sort();
}

export function sourceHash() {
  const h = createHash('sha256');
  for (const f of sourceFiles()) {
    h.update(f);
    h.update('\0');
    h.update(readFileSync(join(here, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

const result = await build({
  entryPoints: [join(here, 'src', 'index.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'eof',
  charset: 'utf8',
  write: false,
  logLevel: 'warning',
});
const text = `/* sitetwin-viewer sources-sha256:${sourceHash()} (three.js, MIT; built by \`make viewer\`) */\n`
  + result.outputFiles[0].text;
if (process.argv.includes('--check')) {
  const committed = readFileSync(out, 'utf8');
  if (committed !== text) {
    console.error(`${out}: differs from a fresh build of dashboards/viewer_src: run \`make viewer\` and commit it`);
    process.exit(1);
  }
  console.log(`${out}: matches a fresh build`);
} else {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`${out}: ${text.length.toLocaleString('en-US')} bytes`);
}
