import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { openCore, type Core } from '../../nexus/core.js';
import { rotateRootKey } from '../../nexus/crypto/rotation.js';
import { silentLogger } from '../../nexus/log.js';
import { parseSecretData, parseSecretPath } from '../../nexus/secrets/rules.js';
import { SecretsRepo } from '../../nexus/storage/secrets-repo.js';
import { measure, type BenchRow } from './report.js';

async function freshCore(label: string): Promise<Core> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nexus-bench-${label}-`));
  return openCore(loadConfig({ NEXUS_DATA_DIR: dir }), silentLogger());
}

/**
 * The same SQLite work as SecretsService.get/put (same tables, statements,
 * transaction and pragmas) with the value stored in clear: the baseline that
 * isolates what encryption costs.
 */
class PlainStore {
  private readonly repo: SecretsRepo;
  constructor(core: Core) {
    this.repo = new SecretsRepo(core.db);
    core.db.prepare("INSERT INTO data_keys VALUES ('plain', x'00', x'00', 'none', 0, '')").run();
  }
  put(p: string, data: unknown): void {
    const path = parseSecretPath(p);
    const { encoded } = parseSecretData(data);
    this.repo.tx(() => {
      const row = this.repo.secret(path);
      const version = (row?.current_version ?? 0) + 1;
      const now = new Date().toISOString();
      if (row) this.repo.bumpSecret(path, version, now);
      else this.repo.insertSecret(path, version, now);
      this.repo.insertVersion({ path, version, key_id: 'plain', nonce: Buffer.alloc(24), ciphertext: encoded, created_at: now });
      if (version > 10) this.repo.pruneUpTo(path, version - 10);
    });
  }
  get(p: string): unknown {
    const path = parseSecretPath(p);
    const row = this.repo.lookup(path, null)!.row!;
    return JSON.parse(row.ciphertext!.toString('utf8'));
  }
}

const VALUE = { username: 'service-account', password: 'x'.repeat(200), url: 'postgres://db.internal:5432/app' };

export async function storageBench(scale: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const enc = await freshCore('enc');
  const plain = new PlainStore(await freshCore('plain'));
  const N = 1000;
  enc.db.transaction(() => {
    for (let i = 0; i < N; i++) enc.secrets.put(`bench/s${i}`, VALUE);
  })();
  for (let i = 0; i < N; i++) plain.put(`bench/s${i}`, VALUE);

  const reads = Math.round(100_000 * scale);
  // Warm up both, then interleave two rounds each so drift hits both sides.
  measure(5000, (i) => enc.secrets.get(`bench/s${i % N}`));
  measure(5000, (i) => plain.get(`bench/s${i % N}`));
  // Interleaved rounds, best of each: drift and noise on a shared box hit both sides.
  let pg = measure(reads, (i) => plain.get(`bench/s${i % N}`));
  let eg = measure(reads, (i) => enc.secrets.get(`bench/s${i % N}`));
  for (let round = 1; round < 3; round++) {
    const p = measure(reads, (i) => plain.get(`bench/s${i % N}`));
    const e = measure(reads, (i) => enc.secrets.get(`bench/s${i % N}`));
    if (p.rate > pg.rate) pg = p;
    if (e.rate > eg.rate) eg = e;
  }
  rows.push({ scenario: 'storage: encrypted get (~300 B value)', unit: 'ops/s', ...eg, baseline: { name: 'plaintext get', rate: pg.rate }, aim: { minRatio: 0.7 } });

  const writes = Math.round(2000 * scale);
  const pp = measure(writes, (i) => plain.put(`bench/s${i % N}`, VALUE));
  const ep = measure(writes, (i) => enc.secrets.put(`bench/s${i % N}`, VALUE));
  rows.push({ scenario: 'storage: encrypted put (durable commit)', unit: 'ops/s', ...ep, baseline: { name: 'plaintext put', rate: pp.rate } });
  enc.close();

  // Rotation of 100k secrets (scaled), timed as a whole.
  const count = Math.round(100_000 * scale);
  const rot = await freshCore('rot');
  rot.db.transaction(() => {
    for (let i = 0; i < count; i++) rot.secrets.put(`rot/s${i}`, VALUE);
  })();
  for (const reencrypt of [false, true]) {
    const t0 = process.hrtime.bigint();
    rotateRootKey({ db: rot.db, rootKeyFile: rot.config.rootKeyFile, reencrypt, batchSize: 1000 });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    rows.push({
      scenario: `rotation of ${count.toLocaleString('en-US')} secrets${reencrypt ? ' --reencrypt' : ' (re-wrap only)'}`,
      unit: 's',
      rate: secs,
      aim: { text: 'measured', met: true },
    });
  }
  rot.close();
  return rows;
}
