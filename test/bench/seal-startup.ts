import fs from 'node:fs';
import path from 'node:path';
import type { Env } from '../../nexus/config/index.js';
import { tempDir, testEnv } from '../helpers/env.js';
import { call, type ClientCreds } from '../helpers/server.js';
import { operatorInit } from '../helpers/seal.js';
import { initSoftToken } from '../helpers/softhsm.js';
import { spawnNexus } from './nexus-process.js';
import type { BenchRow } from './report.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function admin(dir: string): ClientCreds {
  const pki = path.join(dir, 'pki');
  return { cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8'), ca: fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8') };
}

/** ms from spawning the compiled server to its first /readyz 200 (shamir: its shares given as soon as it listens). */
async function timeToReady(dir: string, env: Env, shares: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const srv = await spawnNexus(testEnv(dir, env));
  try {
    const creds = admin(dir);
    for (const key of shares) await call(srv.port, creds, 'PUT', '/v1/sys/unseal', { key });
    for (;;) {
      if ((await call(srv.port, creds, 'GET', '/readyz')).status === 200) return Number(process.hrtime.bigint() - t0) / 1e6;
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
}

/**
 * Start-up to ready per seal, `file` the baseline, interleaved in one run so
 * every mode sees the same machine. The aim: pkcs11 (SoftHSM2) within +200 ms of file.
 */
export async function sealStartupRows(scale: number): Promise<BenchRow[]> {
  const token = initSoftToken();
  const modes: Array<{ name: string; env: Env; dir: string; shares: string[] }> = [];
  const fileDir = tempDir('nexus-bench-seal-file');
  modes.push({ name: 'file', env: {}, dir: fileDir, shares: [] });
  const shamirDir = tempDir('nexus-bench-seal-shamir');
  modes.push({ name: 'shamir (3 shares given at once)', env: { NEXUS_SEAL: 'shamir' }, dir: shamirDir, shares: (await operatorInit(shamirDir, { NEXUS_SEAL: 'shamir' })).shares.slice(0, 3) });
  const pkcs11Dir = tempDir('nexus-bench-seal-pkcs11');
  await operatorInit(pkcs11Dir, token.env);
  modes.push({ name: 'pkcs11 (SoftHSM2)', env: token.env, dir: pkcs11Dir, shares: [] });
  // A first start of each makes its PKI (and the file mode's key): not what is measured.
  for (const m of modes) await timeToReady(m.dir, m.env, m.shares);
  const rounds = Math.max(3, Math.round(5 * scale));
  const times = modes.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) for (const [j, m] of modes.entries()) times[j]!.push(await timeToReady(m.dir, m.env, m.shares));
  const file = median(times[0]!);
  return modes.map((m, j) => {
    const ms = median(times[j]!);
    const row: BenchRow = { scenario: `start-up to ready: NEXUS_SEAL=${m.name} (median of ${rounds})`, unit: 'ops/s', rate: 1000 / ms, p50: ms };
    if (j > 0) row.baseline = { name: 'file', rate: 1000 / file };
    if (m.name.startsWith('pkcs11')) row.aim = { text: 'within +200 ms of file', met: ms - file <= 200 };
    return row;
  });
}
