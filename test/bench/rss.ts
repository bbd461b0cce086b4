import autocannon from 'autocannon';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnNexus } from './nexus-process.js';
import { call } from '../helpers/server.js';
import { CONNECTIONS } from './mtls.js';
import type { BenchRow } from './report.js';

/** Resident set size of a process, KiB (VmRSS in /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

async function run(url: string, tls: object, amount: number): Promise<number> {
  const r = await autocannon({ url, connections: CONNECTIONS, amount, tlsOptions: tls } as autocannon.Options);
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`rss load had ${r.non2xx} non-2xx and ${r.errors} errors`);
  return r.requests.average;
}

/**
 * Memory over a long run of mTLS secret reads: RSS after 100k requests and
 * after 1M (BENCH_SCALE scales both). Every cache on the path is bounded, so
 * the second figure should stay within 10% of the first.
 */
export async function rssBench(scale: number): Promise<BenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-rss-'));
  const srv = await spawnNexus({ NEXUS_DATA_DIR: dir, NEXUS_LOG_LEVEL: 'warn' });
  const pki = path.join(dir, 'pki');
  const tls = { ca: fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
  const pid = srv.child.pid!;
  try {
    // 64 secrets, so the row and key caches hold more than one entry.
    for (let i = 0; i < 64; i++) await call(srv.port, tls, 'PUT', `/v1/secrets/bench/rss/${i}`, { data: { password: 'x'.repeat(200) } });
    const url = `https://127.0.0.1:${srv.port}/v1/secrets/bench/rss/7`;
    const first = Math.round(100_000 * scale);
    const rate1 = await run(url, tls, first);
    const at100k = rssKiB(pid);
    const rate2 = await run(url, tls, first * 9);
    const at1m = rssKiB(pid);
    const growth = at1m / at100k - 1;
    const mib = (k: number) => (k / 1024).toFixed(1);
    return [
      { scenario: `mTLS read: RSS after ${first.toLocaleString('en-US')} requests`, unit: 'req/s', rate: rate1, aim: { text: `${mib(at100k)} MiB`, met: true } },
      {
        scenario: `mTLS read: RSS after ${(first * 10).toLocaleString('en-US')} requests`,
        unit: 'req/s',
        rate: rate2,
        aim: { text: `${mib(at1m)} MiB, ${growth >= 0 ? '+' : ''}${(100 * growth).toFixed(1)}% over ${first.toLocaleString('en-US')}; aim within 10%`, met: Math.abs(growth) <= 0.1 },
      },
    ];
  } finally {
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
}
