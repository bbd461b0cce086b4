#!/usr/bin/env node
// npm run build: the production build. Plain JavaScript, so that building
// needs no TypeScript loader.
//   1. tsc compiles nexus/, plugins/ and scripts/ to dist/ (type-checked).
//   2. The files read at run time beside the code (migrations, the Workload
//      API .proto) are copied next to the compiled modules.
//   3. Each bin of scripts/bin gets a compiled twin in dist/bin; Pilot's is
//      one esbuild bundle (a person waits for every Pilot start), with gRPC
//      left out of the bundle and loaded only when the Workload API is used,
//      started by dist/bin/pilot.cjs with a V8 code cache made here.
// Options: --out DIR (default dist); --if-stale: do nothing when DIR was
// built after the last change to any source (npm start runs this, so a fresh
// clone or a pull rebuilds, and an unchanged tree starts at once).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = path.resolve(root, outAt >= 0 ? args[outAt + 1] : 'dist');
const stamp = path.join(out, '.built');

/** The newest modification time under the sources the build reads. */
function newestSource() {
  let newest = 0;
  const walk = (p) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['nexus', 'plugins', 'scripts', 'migrations', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) walk(path.join(root, p));
  return newest;
}

if (args.includes('--if-stale') && fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= newestSource()) process.exit(0);

const t0 = Date.now();
fs.rmSync(out, { recursive: true, force: true });
const require = (await import('node:module')).createRequire(import.meta.url);
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit', cwd: root });

fs.cpSync(path.join(root, 'migrations'), path.join(out, 'migrations'), { recursive: true });
fs.copyFileSync(path.join(root, 'nexus/spiffe/workload.proto'), path.join(out, 'nexus/spiffe/workload.proto'));
// The committed client bundles, which the OIDC port serves from here (plugins/oidc/tools.ts).
for (const d of ['scripts/ci/dist', 'scripts/pilot-dist']) fs.cpSync(path.join(root, d), path.join(out, d), { recursive: true });

// Pilot's launcher: runs the bundle with V8's code cache made at build time (Node 20 has no
// module.enableCompileCache), so a start does not compile again what the build compiled.
// The cache is keyed by V8's version: another Node simply compiles as usual.
// A plain \`env node\` shebang: \`env -S node --use-openssl-ca\` would save ~20 ms
// (Node 20 parses its ~140 bundled root certificates at the first TLS context,
// though Pilot's own CA replaces them) but BusyBox's env (Alpine images) and
// npm's Windows shims do not take it; README shows NODE_OPTIONS for that.
const PILOT_LOADER = `#!/usr/bin/env node
'use strict';
// Written by npm run build (scripts/build.mjs): Pilot's bundle, run with V8's code cache.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
const file = path.join(__dirname, 'pilot-bundle.cjs');
const cacheFile = \`\${file}.v8-\${process.versions.v8}.cache\`;
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
const bundle = new Module(file, module);
bundle.filename = file;
bundle.paths = Module._nodeModulePaths(__dirname);
if (process.env.NEXUS_BUILD_CODE_CACHE) process.on('exit', () => fs.writeFileSync(cacheFile, script.createCachedData()));
script.runInThisContext().call(bundle.exports, bundle.exports, Module.createRequire(file), bundle, file, __dirname);
`;

const binDir = path.join(out, 'bin');
fs.mkdirSync(binDir, { recursive: true });
const esbuild = await import('esbuild');
for (const launcher of fs.readdirSync(path.join(root, 'scripts/bin')).filter((f) => f.endsWith('.js'))) {
  // The dev launcher names its entry point: `await import('../NAME.ts')` (NAME may be a path under scripts/).
  const m = /import\('\.\.\/([\w/-]+)\.ts'\)/.exec(fs.readFileSync(path.join(root, 'scripts/bin', launcher), 'utf8'));
  if (!m) throw new Error(`scripts/bin/${launcher} does not import its entry point as ../NAME.ts`);
  const target = path.join(binDir, launcher);
  if (m[1] === 'pilot') {
    // One CommonJS file: no ES module loader at start (it reads files asynchronously, module by module).
    const bundle = path.join(binDir, 'pilot-bundle.cjs');
    await esbuild.build({
      entryPoints: [path.join(root, 'scripts/pilot.ts')],
      outfile: bundle,
      bundle: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      external: ['@grpc/grpc-js', '@grpc/proto-loader'],
      // Modules that find files beside themselves use import.meta.url; in CommonJS that is __filename.
      define: { 'import.meta.url': '__nexusModuleUrl' },
      banner: { js: "const __nexusModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
      logLevel: 'warning',
    });
    fs.copyFileSync(path.join(root, 'nexus/spiffe/workload.proto'), path.join(binDir, 'workload.proto'));
    fs.writeFileSync(target.replace(/\.js$/, '.cjs'), PILOT_LOADER, { mode: 0o755 });
    // The code cache: V8's compiled form of every function `pilot --help` runs (which builds every command).
    execFileSync(process.execPath, [target.replace(/\.js$/, '.cjs'), '--help'], { env: { ...process.env, NEXUS_BUILD_CODE_CACHE: '1' }, stdio: 'ignore' });
    continue;
  } else {
    fs.writeFileSync(target, `#!/usr/bin/env node\n// Compiled by npm run build from scripts/bin/${launcher}.\nawait import('../scripts/${m[1]}.js');\n`);
  }
  fs.chmodSync(target, 0o755);
}
fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.log(`built ${path.relative(root, out) || out} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
