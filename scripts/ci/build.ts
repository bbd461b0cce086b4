// npm run build:ci: bundles the GitHub Action and nexus-ci (scripts/ci/*.ts
// and @actions/core) into scripts/ci/dist/, which is committed: action.yml
// runs it with no npm install at job time. The build is deterministic (a test
// rebuilds it and compares bytes), so rebuild after changing the sources.
//
// The SPIFFE Workload API client (gRPC, about as large again as nexus-ci)
// is a file of its own, workload-api.mjs with workload.proto, which nexus-ci
// imports from beside itself only when a socket is used: nexus-ci.mjs stays
// one copyable file that starts as fast as before for JWTs. (esbuild's code
// splitting would also move the code both share into a third chunk that
// nexus-ci.mjs imports at start, so the split is made by hand here.)
import { build, type BuildOptions, type Plugin } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { workloadApiBeside } from '../lib/workload-api-beside.js';

/**
 * @actions/core's index imports its OIDC client, and with it
 * @actions/http-client and undici (about 90% of a bundle, and most of a
 * client's start-up), whether or not getIDToken is called; none of these
 * packages declares itself free of side effects, so esbuild keeps them all.
 * They have none at load, so they are declared so here: what is used stays
 * (the runner's commands, inputs, masking, state), what is not is dropped
 * (the ID token comes from id-token.ts). bundle.test.ts would catch a
 * regression in behaviour, and the bench one in size.
 */
const actionsCoreLean: Plugin = {
  name: 'actions-core-lean',
  setup(b) {
    const lean = /\/node_modules\/(@actions\/|undici\/|tunnel\/)/;
    b.onResolve({ filter: /^(@actions\/|undici$|tunnel$|\.)/ }, async (args) => {
      if (args.pluginData === 'lean' || (args.path.startsWith('.') && !lean.test(args.importer))) return undefined;
      const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'lean' });
      return r.errors.length === 0 && lean.test(r.path) ? { path: r.path, sideEffects: false } : undefined;
    });
  },
};

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ENTRIES = { action: 'scripts/ci/action.ts', 'action-post': 'scripts/ci/action-post.ts', 'nexus-ci': 'scripts/ci/nexus-ci.ts' } as const;
const WORKLOAD_API = 'nexus/spiffe/workload-api.ts';
const WORKLOAD_PROTO = 'nexus/spiffe/workload.proto';

/** Writes action.mjs, action-post.mjs, nexus-ci.mjs, workload-api.mjs and workload.proto under `outDir`; returns the files written. */
export async function buildCi(outDir = path.join(ROOT, 'scripts/ci/dist')): Promise<string[]> {
  const common: BuildOptions = {
    absWorkingDir: ROOT,
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    // node_modules may be a symlink: keep its paths out of the output, whatever it points at.
    preserveSymlinks: true,
    legalComments: 'none',
    sourcemap: false,
    metafile: true,
    logLevel: 'warning',
  };
  // Bundled CommonJS dependencies call require() for Node built-ins.
  const requireShim = "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);";
  const entries = await build({
    ...common,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([k, v]) => [k, path.join(ROOT, v)])),
    plugins: [workloadApiBeside, actionsCoreLean],
    // The nexus-ci bundle is the package's bin itself: a shebang.
    banner: { js: `#!/usr/bin/env node\n${requireShim}` },
  });
  const workload = await build({
    ...common,
    entryPoints: { 'workload-api': path.join(ROOT, WORKLOAD_API) },
    banner: { js: requireShim },
  });
  // Read beside the module that loads it (protoFile() in workload-api.ts).
  const proto = path.join(outDir, path.basename(WORKLOAD_PROTO));
  fs.copyFileSync(path.join(ROOT, WORKLOAD_PROTO), proto);
  return [...Object.keys(entries.metafile!.outputs), ...Object.keys(workload.metafile!.outputs)].map((f) => path.resolve(ROOT, f)).concat(proto);
}

// `build.ts [OUT_DIR]`: the staleness test builds into a temp dir in a child
// process (esbuild loaded beside tsx in the test process upsets module loading).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
  for (const f of await buildCi(out)) console.log(`wrote ${path.relative(ROOT, f)}`);
}
