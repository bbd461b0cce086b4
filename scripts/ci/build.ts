// npm run build:ci: bundles the GitHub Action and nexus-ci (scripts/ci/*.ts
// and @actions/core) into scripts/ci/dist/, which is committed: action.yml
// runs it with no npm install at job time. The build is deterministic (a test
// rebuilds it and compares bytes), so rebuild after changing the sources.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ENTRIES = { action: 'scripts/ci/action.ts', 'nexus-ci': 'scripts/ci/nexus-ci.ts' } as const;

/** Writes dist/action.mjs and dist/nexus-ci.mjs under `outDir`; returns the files written. */
export async function buildCi(outDir = path.join(ROOT, 'scripts/ci/dist')): Promise<string[]> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([k, v]) => [k, path.join(ROOT, v)])),
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
    // Bundled CommonJS dependencies call require() for Node built-ins.
    // The nexus-ci bundle is the package's bin itself (a shebang); bundled CommonJS dependencies call require() for Node built-ins.
    banner: { js: "#!/usr/bin/env node\nimport{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  });
  return Object.keys(result.metafile.outputs).map((f) => path.resolve(ROOT, f));
}

// `build.ts [OUT_DIR]`: the staleness test builds into a temp dir in a child
// process (esbuild loaded beside tsx in the test process upsets module loading).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
  for (const f of await buildCi(out)) console.log(`wrote ${path.relative(ROOT, f)}`);
}
