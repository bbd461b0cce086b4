// npm run build:pilot: Pilot as one file, scripts/pilot-dist/pilot.cjs, which
// is committed and served by Nexus (GET /v1/tools/pilot.cjs): it runs with a
// bare `node`, no node_modules, no package.json. The build is deterministic
// (test/build/pilot-bundle.test.ts rebuilds it and compares bytes).
//
// gRPC stays out, as in nexus-ci.mjs: with SPIFFE_ENDPOINT_SOCKET Pilot
// imports workload-api.mjs (and its workload.proto) from beside itself, the
// same two files nexus-ci uses (scripts/ci/dist, GET /v1/tools/...). Every
// other command needs nothing but this file.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { workloadApiBeside } from './lib/workload-api-beside.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const PILOT_BUNDLE = path.join(ROOT, 'scripts/pilot-dist/pilot.cjs');

/** Writes the standalone Pilot to `outFile`. */
export async function buildPilot(outFile = PILOT_BUNDLE): Promise<void> {
  const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  await build({
    absWorkingDir: ROOT,
    entryPoints: [path.join(ROOT, 'scripts/pilot.ts')],
    outfile: outFile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    minify: true,
    preserveSymlinks: true,
    legalComments: 'none',
    sourcemap: false,
    logLevel: 'warning',
    plugins: [workloadApiBeside],
    // Modules that find files beside themselves use import.meta.url; in CommonJS that is __filename.
    define: { 'import.meta.url': '__nexusModuleUrl', __NEXUS_VERSION__: JSON.stringify(version) },
    banner: { js: "#!/usr/bin/env node\nconst __nexusModuleUrl=require('node:url').pathToFileURL(__filename).href;" },
  });
  fs.chmodSync(outFile, 0o755);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
  await buildPilot(out);
  console.log(`wrote ${path.relative(ROOT, out ?? PILOT_BUNDLE)}`);
}
