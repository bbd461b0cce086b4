import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Env } from '../../nexus/config/index.js';
import { ROOT } from '../helpers/env.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';

/**
 * The production server: compiled JavaScript, no run-time TypeScript (what
 * `npm start` runs). BENCH_NEXUS_BIN runs another build instead (an earlier
 * commit's dist/bin/nexus.js, say), measured by this harness beside the same baselines.
 */
export const NEXUS_BIN = process.env.BENCH_NEXUS_BIN ? path.resolve(process.env.BENCH_NEXUS_BIN) : path.join(ROOT, 'dist/bin/nexus.js');

let built = false;

/** `npm run build` once per bench run, when dist/ is older than the sources. */
export function ensureBuilt(): void {
  if (built || process.env.BENCH_NEXUS_BIN) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--if-stale'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
  built = true;
}

/**
 * A Nexus for a bench row: the compiled server in its own process.
 * BENCH_SERVER_PROFILE=DIR profiles any row's servers (cpu-profile.mjs), one
 * file each in DIR, read with `npm run bench:profile -- --summarize FILE`.
 */
export function spawnNexus(env: Env): Promise<ServerProcess> {
  ensureBuilt();
  const dir = process.env.BENCH_SERVER_PROFILE;
  const profiled = dir ? { NODE_OPTIONS: `--import ${path.join(ROOT, 'test/bench/cpu-profile.mjs')}`, BENCH_PROFILE_DIR: path.resolve(dir) } : {};
  return spawnServer({ ...env, ...profiled }, NEXUS_BIN);
}
