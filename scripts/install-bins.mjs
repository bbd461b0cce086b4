#!/usr/bin/env node
// npm run install:bins [-- --prefix DIR]: puts `pilot` and `nexus-ci` on a
// person's PATH, with no package installed and no registry name resolved.
// The committed single files (scripts/pilot-dist, scripts/ci/dist) are copied
// to DIR/lib/nexus, with the Workload API client beside them, and DIR/bin gets
// a two-line shell wrapper for each. DIR defaults to ~/.local (whose bin is on
// PATH in most distributions). Plain JavaScript: it needs only node.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const at = args.indexOf('--prefix');
if (at >= 0 && !args[at + 1]) {
  console.error('install-bins: --prefix needs a directory');
  process.exit(2);
}
const prefix = path.resolve(at >= 0 ? args[at + 1] : path.join(os.homedir(), '.local'));
const lib = path.join(prefix, 'lib', 'nexus');
const bin = path.join(prefix, 'bin');

const FILES = ['scripts/pilot-dist/pilot.cjs', 'scripts/ci/dist/nexus-ci.mjs', 'scripts/ci/dist/workload-api.mjs', 'scripts/ci/dist/workload.proto'];
const BINS = { pilot: 'pilot.cjs', 'nexus-ci': 'nexus-ci.mjs' };

fs.mkdirSync(lib, { recursive: true });
fs.mkdirSync(bin, { recursive: true });
for (const f of FILES) fs.copyFileSync(path.join(root, f), path.join(lib, path.basename(f)));
// The node that ran this script is the one the wrappers use when `node` is not on PATH.
const quote = (s) => `'${s.replaceAll("'", "'\\''")}'`;
for (const [name, file] of Object.entries(BINS)) {
  const target = path.join(bin, name);
  fs.writeFileSync(target, `#!/bin/sh\n# Written by npm run install:bins (Nexus).\nexec "\${NEXUS_NODE:-node}" ${quote(path.join(lib, file))} "$@"\n`, { mode: 0o755 });
  fs.chmodSync(target, 0o755);
  console.log(`installed ${target}`);
}
if (!(process.env.PATH ?? '').split(path.delimiter).includes(bin)) console.log(`${bin} is not on PATH: add it (e.g. export PATH="${bin}:$PATH")`);
