import { expect } from 'chai';
import type { Core } from '../../nexus/core.js';
import { NexusError } from '../../nexus/errors.js';
import { codeOf } from '../helpers/errors.js';
import { loadMigrations, PG_MIGRATIONS_DIR, MIGRATIONS_DIR } from '../../nexus/storage/migrator.js';
import { PgStorage } from '../../nexus/storage/postgres.js';
import { openTestCore, runBin, tempDir, testEnv } from '../helpers/env.js';
import { createTestDatabase, requirePg, sql, type TestDatabase } from '../helpers/pg.js';
import fs from 'node:fs';
import path from 'node:path';
import { call, startTestServer } from '../helpers/server.js';

describe('PostgreSQL migrations (no server needed)', () => {
  it('every SQLite migration has a PostgreSQL port with the same number and name, and no other', () => {
    const names = (dir: string) => loadMigrations(dir).map((m) => `${m.version}_${m.name}`);
    // A new SQLite migration needs its PostgreSQL port beside it: migrations/postgres/<same file name>.
    expect(names(PG_MIGRATIONS_DIR), 'add the PostgreSQL port of each migration to migrations/postgres/ (same number and name)').to.deep.equal(names(MIGRATIONS_DIR));
  });
});

describe('PostgreSQL engine', function () {
  this.timeout(120_000);
  let server: string;
  let db: TestDatabase;
  let dir: string;
  let core: Core;

  before(async function () {
    server = await requirePg(this);
  });
  beforeEach(async () => {
    db = await createTestDatabase(server);
    dir = tempDir();
    core = await openTestCore(dir, { NEXUS_DATABASE_URL: db.url, NEXUS_MAX_VERSIONS: '3' });
  });
  afterEach(async () => {
    await core?.close();
    await db?.drop();
  });

  it('patch, rollback, purge and several versions per call, as on SQLite', async () => {
    const s = core.secrets;
    await s.put('ops/x', { a: '1', b: '2' });
    expect(await s.patch('ops/x', { b: null, c: '3' }, { cas: 1 })).to.deep.equal({ path: 'ops/x', version: 2, created: false });
    expect((await s.get('ops/x')).data).to.deep.equal({ a: '1', c: '3' });
    expect(await s.rollback('ops/x', 1)).to.deep.equal({ path: 'ops/x', version: 3, created: false });
    expect((await s.get('ops/x')).data).to.deep.equal({ a: '1', b: '2' });
    expect(await s.delete('ops/x', [1, 2, 9])).to.deep.equal({ path: 'ops/x', done: [1, 2], skipped: [{ version: 9, reason: 'not_found' }] });
    expect(await s.undelete('ops/x', [2, 3])).to.deep.equal({ path: 'ops/x', done: [2], skipped: [{ version: 3, reason: 'not_deleted' }] });
    expect(await s.destroy('ops/x', [1])).to.deep.equal({ path: 'ops/x', done: [1], skipped: [] });
    expect(await s.purge('ops/x')).to.deep.equal({ path: 'ops/x', versions: 3 });
    expect(await codeOf(() => s.metadata('ops/x'))).to.equal('not_found');
    expect(await sql(db.url, "SELECT * FROM secret_versions WHERE path = 'ops/x'")).to.deep.equal([]);
    expect((await s.list({ prefix: 'ops/' })).paths).to.deep.equal([]);
  });

  it('selected by NEXUS_DATABASE_URL: versions, cas, prune, soft delete, undelete, as on SQLite', async () => {
    expect(core.storage.engine).to.equal('postgres');
    const s = core.secrets;
    expect(await s.put('app/db', { user: 'u1' })).to.deep.equal({ path: 'app/db', version: 1, created: true });
    expect(await s.put('app/db', { user: 'u2' }, { cas: 1 })).to.deep.equal({ path: 'app/db', version: 2, created: false });
    expect(await codeOf(() => s.put('app/db', { user: 'x' }, { cas: 1 }))).to.equal('conflict');
    expect(await codeOf(() => s.put('app/db', { user: 'x' }, { cas: 0 }))).to.equal('conflict');
    expect((await s.get('app/db')).data).to.deep.equal({ user: 'u2' });
    expect((await s.get('app/db', 1)).data).to.deep.equal({ user: 'u1' });
    for (let i = 3; i <= 5; i++) await s.put('app/db', { user: `u${i}` });
    expect((await s.metadata('app/db')).versions.map((v) => v.version)).to.deep.equal([3, 4, 5]);
    await s.delete('app/db');
    expect(await codeOf(() => s.get('app/db'))).to.equal('not_found');
    expect(await codeOf(() => s.put('app/db', { user: 'x' }, { cas: 4 }))).to.equal('conflict');
    await s.undelete('app/db', [5]);
    expect((await s.get('app/db')).data).to.deep.equal({ user: 'u5' });
    // Nothing in clear in the database.
    const rows = await sql<{ ciphertext: Buffer }>(db.url, 'SELECT ciphertext FROM secret_versions');
    for (const r of rows) expect(r.ciphertext.includes(Buffer.from('u5'))).to.equal(false);
  });

  it('lists in byte order with cursors, exactly like SQLite', async () => {
    const paths = ['a/B', 'a/a', 'a/_', 'a/-', 'a/.x', 'a/9', 'a/b/c', 'a/Z', 'ab/1', 'a/zz'];
    const liteCore = await openTestCore(tempDir());
    for (const p of paths) {
      await core.secrets.put(p, { v: p });
      await liteCore.secrets.put(p, { v: p });
    }
    const walk = async (c: Core) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await c.secrets.list({ prefix: 'a/', limit: 3, cursor });
        seen.push(...page.paths);
        cursor = page.next_cursor;
      } while (cursor);
      return seen;
    };
    const onPg = await walk(core);
    expect(onPg).to.deep.equal(await walk(liteCore));
    expect(onPg).to.deep.equal(paths.filter((p) => p.startsWith('a/')).sort((x, y) => (Buffer.compare(Buffer.from(x), Buffer.from(y)))));
    await liteCore.close();
  });

  it('check-and-set is exact under concurrent writers from separate pools (as from separate replicas)', async () => {
    const other = await openTestCore(tempDir(), { NEXUS_DATABASE_URL: db.url, NEXUS_ROOT_KEY: core.rootKey.bytes.toString('base64') });
    try {
      await core.secrets.put('race/x', { v: '0' });
      for (let round = 1; round <= 15; round++) {
        const results = await Promise.allSettled([
          core.secrets.put('race/x', { v: `a${round}` }, { cas: round }),
          other.secrets.put('race/x', { v: `b${round}` }, { cas: round }),
          core.secrets.put('race/x', { v: `c${round}` }, { cas: round }),
        ]);
        const ok = results.filter((r) => r.status === 'fulfilled');
        expect(ok, `round ${round}`).to.have.length(1);
        for (const r of results) if (r.status === 'rejected') expect((r.reason as NexusError).code).to.equal('conflict');
        expect((await other.secrets.metadata('race/x')).current_version).to.equal(round + 1);
      }
      // Creation races too: cas 0 from both sides, one wins.
      const created = await Promise.allSettled([core.secrets.put('race/new', { v: 'a' }, { cas: 0 }), other.secrets.put('race/new', { v: 'b' }, { cas: 0 })]);
      expect(created.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    } finally {
      await other.close();
    }
  });

  it('destroy erases the ciphertext and VACUUM removes the dead row version from the table pages', async () => {
    await sql(db.url, 'CREATE EXTENSION IF NOT EXISTS pageinspect');
    await core.secrets.put('z/x', { k: 'destroy-me' });
    await core.secrets.put('z/x', { k: 'keep-me' });
    const [row] = await sql<{ ciphertext: Buffer }>(db.url, "SELECT ciphertext FROM secret_versions WHERE path = 'z/x' AND version = 1");
    const ct = row!.ciphertext;
    const pageBytes = async () => {
      const pages = await sql<{ n: number }>(db.url, "SELECT pg_relation_size('secret_versions') / current_setting('block_size')::int AS n");
      const all: Buffer[] = [];
      for (let p = 0; p < Number(pages[0]!.n); p++) {
        for (const t of await sql<{ t_data: Buffer | null }>(db.url, `SELECT t_data FROM heap_page_items(get_raw_page('secret_versions', ${p}))`)) if (t.t_data) all.push(t.t_data);
      }
      return Buffer.concat(all);
    };
    expect((await pageBytes()).includes(ct)).to.equal(true);
    await core.secrets.destroy('z/x', [1]);
    expect(await codeOf(() => core.secrets.get('z/x', 1))).to.equal('not_found');
    expect((await core.secrets.metadata('z/x')).versions[0]!.destroyed).to.equal(true);
    expect((await pageBytes()).includes(ct), 'a tuple still holds the destroyed ciphertext').to.equal(false);
    expect((await core.secrets.get('z/x')).data).to.deep.equal({ k: 'keep-me' });
  });

  it('migrations: same numbers and names as SQLite, checksummed, one migrator at a time', async () => {
    const lite = loadMigrations(MIGRATIONS_DIR).map((m) => `${m.version}_${m.name}`);
    const fresh = await createTestDatabase(server);
    const stores = [0, 1, 2].map(() => new PgStorage(fresh.url));
    try {
      // Three processes' worth of pools migrating at once: each migration applied exactly once.
      const applied = await Promise.all(stores.map((s) => s.migrateUp()));
      expect(applied.map((a) => a.length).reduce((x, y) => x + y)).to.equal(lite.length);
      const st = await stores[0]!.migrationStatus();
      expect(st.pending).to.have.length(0);
      expect(st.applied.map((a) => `${a.version}_${a.name}`)).to.deep.equal(lite);
      await sql(fresh.url, "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1");
      expect(await codeOf(() => stores[1]!.migrationStatus())).to.equal('startup');
    } finally {
      for (const s of stores) await s.close();
      await fresh.drop();
    }
  });

  it('nexus-migrate status and up work against PostgreSQL', async () => {
    const fresh = await createTestDatabase(server);
    try {
      const env = testEnv(tempDir(), { NEXUS_DATABASE_URL: fresh.url });
      const before = await runBin('nexus-migrate', ['status'], env);
      expect(before.code, before.stderr).to.equal(0);
      expect(before.stdout).to.match(/0 applied, \d+ pending/);
      const up = await runBin('nexus-migrate', ['up'], env);
      expect(up.code, up.stderr).to.equal(0);
      expect(up.stdout).to.match(/migration\(s\) applied/);
      const after = await runBin('nexus-migrate', ['status'], env);
      expect(after.stdout).to.match(/\d+ applied, 0 pending/);
      expect(after.stdout).to.include(path.basename('001_secrets'));
    } finally {
      await fresh.drop();
    }
  });

  it('a server on PostgreSQL serves the mTLS API (secrets, policies, readiness), its audit records carrying its replica id', async () => {
    const t = await startTestServer({ NEXUS_DATABASE_URL: db.url, NEXUS_ROOT_KEY: core.rootKey.bytes.toString('base64'), NEXUS_REPLICA_ID: 'replica-a' });
    try {
      expect((await call(t.port, t.admin, 'PUT', '/v1/secrets/app/db', { data: { pw: 'x' } })).status).to.equal(201);
      expect((await call(t.port, t.admin, 'GET', '/v1/secrets/app/db')).body.data).to.deep.equal({ pw: 'x' });
      expect((await call(t.port, t.admin, 'PUT', '/v1/policies/p1', { spiffe_id: 'spiffe://nexus.local/app', paths: ['app/**'], permissions: ['read'] })).status).to.equal(201);
      const ready = await call(t.port, t.admin, 'GET', '/readyz');
      expect(ready.status, ready.text).to.equal(200);
      expect(ready.body.checks.db).to.equal(true);
      // Written through the other core: the server reads it from the shared database.
      expect((await core.secrets.get('app/db')).data).to.deep.equal({ pw: 'x' });
    } finally {
      await t.stop();
    }
    const records = fs.readFileSync(path.join(t.dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).to.be.greaterThan(2);
    for (const r of records) expect(r.replica).to.equal('replica-a');
    const [anchor] = await sql<{ chain: string; count: number }>(db.url, 'SELECT chain, count FROM audit_anchor');
    expect(anchor?.chain).to.equal('server@replica-a');
  });

  it('a replica without the shared root key refuses to start rather than making its own', async () => {
    await core.secrets.put('k/x', { v: '1' });
    const err = await openTestCore(tempDir(), { NEXUS_DATABASE_URL: db.url }).then(
      () => null,
      (e: unknown) => e as NexusError,
    );
    expect(err?.code).to.equal('startup');
    expect(err?.message).to.match(/already has a root key; give every replica the same key/);
  });

  it('a transaction that keeps losing serialization races is retried, then answered unavailable (503), never 500', async () => {
    let attempts = 0;
    const lost = () => Object.assign(new Error('could not serialize access due to concurrent update'), { code: '40001' });
    expect(
      await codeOf(() =>
        core.storage.tx(async () => {
          attempts += 1;
          throw lost();
        }),
      ),
    ).to.equal('unavailable');
    expect(attempts).to.be.greaterThan(1);
    // A race lost once and then won is invisible to the caller.
    let tries = 0;
    expect(
      await core.storage.tx(async () => {
        tries += 1;
        if (tries === 1) throw lost();
        return 'ok';
      }),
    ).to.equal('ok');
  });

  it('database down: operations fail as unavailable (503), not as internal errors', async () => {
    const dead = new PgStorage('postgres://postgres@127.0.0.1:1/none', { connectionTimeoutMillis: 1000 });
    try {
      expect(await codeOf(() => dead.secrets.secret('a'))).to.equal('unavailable');
      expect(await codeOf(() => dead.tx((r) => r.meta.get('x')))).to.equal('unavailable');
      expect(await dead.ping()).to.equal(false);
    } finally {
      await dead.close();
    }
  });
});
