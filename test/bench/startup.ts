import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/env.js';
import { ensureBuilt, spawnNexus } from './nexus-process.js';
import type { BenchRow } from './report.js';
import { sealStartupRows } from './seal-startup.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Wall time of one fresh process, in ms; it must exit 0. `args[0]` is run by node, or as an executable with `exec`. */
function timeRun(args: string[], env: NodeJS.ProcessEnv, exec = false): number {
  const t0 = process.hrtime.bigint();
  const r = exec
    ? spawnSync(args[0]!, args.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawnSync(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/**
 * `pilot secret get` in a fresh process (the production bundle, dist/bin/pilot.cjs:
 * built here if stale) beside `node -e 0`, interleaved in the same run so both
 * see the same machine load. The aim: Pilot within 1.5x of a bare Node start.
 */
export async function startupBench(scale: number): Promise<BenchRow[]> {
  ensureBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-startup-'));
  const srv = await spawnNexus({ NEXUS_DATA_DIR: dir });
  // Node's own directory first on PATH: the bin's `#!/usr/bin/env -S node ...` finds this node.
  const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME, NEXUS_DATA_DIR: dir, NEXUS_ADDR: `https://127.0.0.1:${srv.port}` };
  const pilot = [path.join(ROOT, 'dist/bin/pilot.cjs'), 'secret', 'get', 'bench/startup'];
  try {
    timeRun([path.join(ROOT, 'dist/bin/pilot.cjs'), 'secret', 'put', 'bench/startup', 'k=v'], env);
    const rounds = Math.max(5, Math.round(10 * scale));
    const bare: number[] = [];
    const get: number[] = [];
    const floor: number[] = [];
    const version: number[] = [];
    const floorArgs = [path.join(ROOT, 'test/bench/floor-client.cjs'), 'bench/startup'];
    // The README's tip (NODE_OPTIONS=--use-openssl-ca): Node then skips parsing its bundled root certificates.
    const lazyCaEnv = { ...env, NODE_OPTIONS: '--use-openssl-ca' };
    const lazyCa: number[] = [];
    timeRun(['-e', '0'], env); // warm the file cache
    // Pilot runs as users run it (npx pilot, pilot on PATH): the bin itself, through its shebang.
    timeRun(pilot, env, true);
    for (let i = 0; i < rounds; i++) {
      bare.push(timeRun(['-e', '0'], env));
      get.push(timeRun(pilot, env, true));
      floor.push(timeRun(floorArgs, env));
      version.push(timeRun([pilot[0]!, '--version'], env, true));
      lazyCa.push(timeRun(pilot, lazyCaEnv, true));
    }
    const b = median(bare);
    const g = median(get);
    const f = median(floor);
    const v = median(version);
    const l = median(lazyCa);
    return [
      { scenario: 'start-up: node -e 0 (baseline)', unit: 'ops/s', rate: 1000 / b, p50: b },
      { scenario: 'start-up: pilot --version (no request)', unit: 'ops/s', rate: 1000 / v, p50: v, baseline: { name: 'node -e 0', rate: 1000 / b }, aim: { minRatio: 0.667 } },
      { scenario: 'start-up: the same request from a minimal https client (floor)', unit: 'ops/s', rate: 1000 / f, p50: f, baseline: { name: 'node -e 0', rate: 1000 / b } },
      {
        scenario: `start-up: pilot secret get, fresh process (median of ${rounds})`,
        unit: 'ops/s',
        rate: 1000 / g,
        p50: g,
        baseline: { name: 'node -e 0', rate: 1000 / b },
        aim: { minRatio: 0.667 },
      },
      { scenario: 'start-up: pilot secret get, NODE_OPTIONS=--use-openssl-ca', unit: 'ops/s', rate: 1000 / l, p50: l, baseline: { name: 'node -e 0', rate: 1000 / b } },
      ...(await sealStartupRows(scale)),
    ];
  } finally {
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
}
