import { expect } from 'chai';
import Database from 'better-sqlite3';
import path from 'node:path';
import type { Core } from '../../nexus/core.js';
import { loadMigrations, migrateUp } from '../../nexus/storage/migrator.js';
import { COUNT_SQL } from '../../nexus/storage/secrets-repo.js';
import { openTestCore, tempDir } from '../helpers/env.js';

// A million secrets: count() (the nexus_secrets gauge, read on every /metrics
// scrape) must not walk the secrets table, which on SQLite runs on the event loop.
describe('secret count (SQLite)', () => {
  let core: Core | undefined;
  afterEach(async () => {
    await core?.close();
    core = undefined;
  });

  it('reads one row of secret_count, never a scan of secrets', () => {
    const db = new Database(':memory:');
    migrateUp(db);
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${COUNT_SQL}`).all() as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    db.close();
    expect(plan).to.not.match(/\bsecrets\b/);
    expect(plan).to.match(/SEARCH secret_count USING INTEGER PRIMARY KEY/);
  });

  it('follows creates and purges, not new versions of a path', async () => {
    const dir = tempDir();
    core = await openTestCore(dir);
    const s = core.secrets;
    expect(await s.count()).to.equal(0);
    await s.put('a/one', { v: '1' });
    await s.put('a/two', { v: '1' });
    await s.put('a/two', { v: '2' });
    await s.put('a/three', { v: '1' });
    expect(await s.count()).to.equal(3);
    await s.delete('a/one');
    expect(await s.count()).to.equal(3);
    await s.purge('a/two');
    expect(await s.count()).to.equal(2);
    // A rolled-back create leaves the count as it was.
    await core.storage.tx(async (r) => {
      await r.secrets.insertSecret('a/rolled-back', 1, new Date().toISOString());
      throw new Error('roll back');
    }).catch(() => undefined);
    expect(await s.count()).to.equal(2);
    const raw = new Database(path.join(dir, 'nexus.db'), { readonly: true });
    expect((raw.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n).to.equal(2);
    raw.close();
  });

  it('starts from the secrets a database already holds when the migration runs', () => {
    const db = new Database(':memory:');
    const all = loadMigrations();
    migrateUp(db, all.filter((m) => m.version < 15));
    const now = new Date().toISOString();
    const insert = db.prepare('INSERT INTO secrets (path, current_version, created_at, updated_at) VALUES (?, 1, ?, ?)');
    for (let i = 0; i < 5; i++) insert.run(`pre/s${i}`, now, now);
    migrateUp(db, all);
    expect((db.prepare(COUNT_SQL).get() as { n: number }).n).to.equal(5);
    db.close();
  });
});
