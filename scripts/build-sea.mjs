#!/usr/bin/env node
// npm run build:sea: Pilot and nexus-ci as standalone executables (Node's
// single executable applications), for the platform of the node running this
// (linux-x64 on CI): dist/sea/pilot-<platform>-<arch>,
// dist/sea/nexus-ci-<platform>-<arch>, each with a .sha256 (sha256sum format).
// No node needed where they run; each is a copy of this node (~100 MB).
//
// Node 20 makes the blob (--experimental-sea-config); injecting it takes
// postject, which is no dependency of this package: it is run at build time
// with npm exec, at a pinned version, from the registry npm install uses.
//
// The executables run their single file only: a SEA main script cannot
// import() a file beside it, so the Workload API (SPIFFE_ENDPOINT_SOCKET) is
// not available from them; they say so and name pilot.cjs / nexus-ci.mjs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const POSTJECT = 'postject@1.0.0-alpha.6';
// The fuse Node's SEA support looks for (documented with --experimental-sea-config).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = path.join(root, 'dist/sea');
const work = path.join(out, 'build');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });

// A SEA's main script is CommonJS: Pilot's committed bundle is; nexus-ci gets a CommonJS twin here.
const esbuild = await import('esbuild');
const nexusCi = path.join(work, 'nexus-ci.cjs');
await esbuild.build({
  absWorkingDir: root,
  entryPoints: [path.join(root, 'scripts/ci/nexus-ci.ts')],
  outfile: nexusCi,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  preserveSymlinks: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [
    {
      name: 'workload-api-beside',
      setup(b) {
        b.onResolve({ filter: /\/spiffe\/workload-api\.js$/ }, () => ({ path: './workload-api.mjs', external: true }));
      },
    },
  ],
  define: { 'import.meta.url': '__nexusModuleUrl' },
  banner: { js: "const __nexusModuleUrl=require('node:url').pathToFileURL(__filename).href;" },
});

const suffix = `${process.platform}-${process.arch}`;
const mains = { pilot: path.join(root, 'scripts/pilot-dist/pilot.cjs'), 'nexus-ci': nexusCi };
for (const [name, main] of Object.entries(mains)) {
  const blob = path.join(work, `${name}.blob`);
  const config = path.join(work, `${name}.sea.json`);
  fs.writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'], cwd: work });
  const exe = path.join(out, `${name}-${suffix}`);
  fs.copyFileSync(process.execPath, exe);
  fs.chmodSync(exe, 0o755);
  // postject (LIEF) warns about every ELF note it reads: its output is shown only when it fails.
  try {
    execFileSync('npm', ['exec', '--yes', `--package=${POSTJECT}`, '--', 'postject', exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { stdio: 'pipe', cwd: work });
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`);
    throw err;
  }
  const sum = createHash('sha256').update(fs.readFileSync(exe)).digest('hex');
  fs.writeFileSync(`${exe}.sha256`, `${sum}  ${path.basename(exe)}\n`);
  console.log(`built ${path.relative(root, exe)} (sha256 ${sum})`);
}
fs.rmSync(work, { recursive: true, force: true });
