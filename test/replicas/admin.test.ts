import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Core } from '../../nexus/core.js';
import { ROOT, openTestCore, runBin, tempDir, testEnv } from '../helpers/env.js';
import { codeOf } from '../helpers/errors.js';
import { createTestDatabase, requirePg, sql, type TestDatabase } from '../helpers/pg.js';

const run = promisify(execFile);

async function seed(core: Core, n: number, prefix: string): Promise<Map<string, string>> {
  const expected = new Map<string, string>();
  for (let i = 0; i < n; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, n - i) }, (_, k) => {
        const p = `${prefix}/s${i + k}`;
        expected.set(p, `v-${i + k}`);
        return core.secrets.put(p, { v: `v-${i + k}` });
      }),
    );
  }
  return expected;
}

/** nexus-rotate-key, SIGKILLed after `killAt` progress lines (if it gets that far). */
function rotateKilledAt(env: NodeJS.ProcessEnv, killAt: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/bin/nexus-rotate-key.js'), '--reencrypt', '--batch-size', '20'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      lines += d.toString().split('\n').length - 1;
      if (lines >= killAt) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve(false) : code === 0 ? resolve(true) : reject(new Error(`nexus-rotate-key exited ${code}: ${out}`))));
  });
}

describe('admin scripts on PostgreSQL', function () {
  this.timeout(240_000);
  let server: string;
  let db: TestDatabase;

  before(async function () {
    server = await requirePg(this);
  });
  beforeEach(async () => {
    db = await createTestDatabase(server);
  });
  afterEach(async () => {
    await db?.drop();
  });

  it('nexus-rotate-key --reencrypt, killed part-way and run again, loses nothing', async () => {
    const dir = tempDir();
    const core = await openTestCore(dir, { NEXUS_DATABASE_URL: db.url });
    const expected = await seed(core, 600, 'rot');
    const oldKcv = core.rootKey.kcv;
    await core.close();
    const env = { ...process.env, ...testEnv(dir, { NEXUS_DATABASE_URL: db.url }) } as NodeJS.ProcessEnv;
    let finished = false;
    for (const killAt of [3, 12, 25]) {
      finished = await rotateKilledAt(env, killAt);
      if (finished) break;
      // Killed while the database says a rotation is under way: Nexus refuses to start until it is finished.
      if ((await sql(db.url, "SELECT 1 FROM meta WHERE key = 'rotation_kcv'")).length > 0) {
        expect(await codeOf(() => openTestCore(dir, { NEXUS_DATABASE_URL: db.url }))).to.equal('startup');
      }
    }
    if (!finished) {
      const done = await runBin('nexus-rotate-key', ['--reencrypt', '--batch-size', '40'], testEnv(dir, { NEXUS_DATABASE_URL: db.url }));
      expect(done.code, done.stderr).to.equal(0);
    }
    const after = await openTestCore(dir, { NEXUS_DATABASE_URL: db.url });
    try {
      expect(after.rootKey.kcv).to.not.equal(oldKcv);
      for (const [p, v] of expected) expect((await after.secrets.get(p)).data, p).to.deep.equal({ v });
      expect(await sql(db.url, 'SELECT id FROM data_keys')).to.have.length(1);
      expect(await sql(db.url, "SELECT 1 FROM meta WHERE key = 'rotation_kcv'")).to.have.length(0);
    } finally {
      await after.close();
    }
    // The run that finished is in the scripts' chain, anchored in PostgreSQL under this data dir's replica id.
    expect(fs.readFileSync(path.join(dir, 'audit-scripts.jsonl'), 'utf8')).to.match(/nexus-rotate-key --reencrypt/);
    expect((await sql<{ chain: string }>(db.url, 'SELECT chain FROM audit_anchor')).map((r) => r.chain).some((c) => c.startsWith('scripts@'))).to.equal(true);
    const verify = await runBin('nexus-audit', ['verify'], testEnv(dir, { NEXUS_DATABASE_URL: db.url }));
    expect(verify.code, verify.stderr).to.equal(0);
  });

  it('backup is pg_dump plus the root key: a restore into a new database reads back, only with that key', async () => {
    const dir = tempDir();
    const core = await openTestCore(dir, { NEXUS_DATABASE_URL: db.url });
    const expected = await seed(core, 50, 'bk');
    await core.secrets.destroy('bk/s0', [1]);
    expected.delete('bk/s0');
    const key = core.rootKey.bytes.toString('base64');
    await core.close();
    const dump = path.join(tempDir(), 'nexus.dump');
    await run('pg_dump', ['-Fc', '-f', dump, '-d', db.url]);
    const restored = await createTestDatabase(server);
    try {
      await run('pg_restore', ['--no-owner', '-d', restored.url, dump]);
      const r = await openTestCore(tempDir(), { NEXUS_DATABASE_URL: restored.url, NEXUS_ROOT_KEY: key });
      try {
        for (const [p, v] of expected) expect((await r.secrets.get(p)).data, p).to.deep.equal({ v });
        expect(await codeOf(() => r.secrets.get('bk/s0', 1))).to.equal('not_found');
      } finally {
        await r.close();
      }
      const wrong = await codeOf(() => openTestCore(tempDir(), { NEXUS_DATABASE_URL: restored.url, NEXUS_ROOT_KEY: randomBytes(32).toString('base64') }));
      expect(wrong).to.equal('startup');
    } finally {
      await restored.drop();
    }
  });

  it('nexus-backup refuses on PostgreSQL and names pg_dump', async () => {
    const res = await runBin('nexus-backup', [path.join(tempDir(), 'x.db')], testEnv(tempDir(), { NEXUS_DATABASE_URL: db.url }));
    expect(res.code).to.equal(1);
    expect(res.stderr).to.match(/pg_dump/);
  });
});
