import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { openCore, type Core } from '../../nexus/core.js';
import { silentLogger } from '../../nexus/log.js';
import type { BenchRow } from './report.js';

async function core(fsync: 'off' | 'batch'): Promise<Core> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nexus-bench-audit-${fsync}-`));
  return openCore(loadConfig({ NEXUS_DATA_DIR: dir, NEXUS_AUDIT_FSYNC: fsync }), silentLogger());
}

/** Records/s when `concurrency` requests at a time each await their record (one batch per event-loop turn). */
async function recordsPerSecond(c: Core, n: number, concurrency: number): Promise<number> {
  const entry = { port: 'mtls' as const, action: 'read', path: 'bench/s1', decision: 'allow' as const, status: 200 };
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < n; done += concurrency) {
    const ok = await Promise.all(Array.from({ length: concurrency }, () => c.audit.record(entry)));
    if (!ok.every(Boolean)) throw new Error('audit write failed');
  }
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** What NEXUS_AUDIT_FSYNC=batch costs against the page-cache default, one request at a time and 32 at once. */
export async function auditBench(scale: number): Promise<BenchRow[]> {
  const off = await core('off');
  const batch = await core('batch');
  const rows: BenchRow[] = [];
  try {
    for (const concurrency of [1, 32]) {
      const n = Math.round((concurrency === 1 ? 500 : 4000) * scale);
      await recordsPerSecond(off, 100, concurrency);
      await recordsPerSecond(batch, 100, concurrency);
      const base = await recordsPerSecond(off, n, concurrency);
      const synced = await recordsPerSecond(batch, n, concurrency);
      rows.push({
        scenario: `audit: records, NEXUS_AUDIT_FSYNC=batch, ${concurrency} concurrent`,
        unit: 'ops/s',
        rate: synced,
        baseline: { name: 'page cache (default)', rate: base },
        aim: { text: 'measured', met: true },
      });
    }
  } finally {
    off.close();
    batch.close();
  }
  return rows;
}
