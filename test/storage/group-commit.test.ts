import { expect } from 'chai';
import crypto from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStorage } from '../../nexus/storage/sqlite.js';
import type { TokenRow } from '../../nexus/storage/storage.js';
import { tempDir } from '../helpers/env.js';

const row = (): TokenRow => ({
  issuer: 'ci',
  issuer_url: 'https://idp.example',
  jwks_uri: null,
  header: '{"alg":"ES256"}',
  subject: 'repo:org/repo',
  roles: '["bench"]',
  claims: '{"repository":"org/repo"}',
  key_kid: 'k',
  key_thumbprint: 't',
  expires_at: Date.now() + 60_000,
  ci_run: null,
});

describe('exchanged tokens: written in groups, one commit for a turn', function () {
  this.timeout(20_000);
  let storage: SqliteStorage;
  let commits = 0;

  before(async () => {
    storage = SqliteStorage.open(path.join(tempDir('nexus-group'), 'nexus.db'));
    await storage.migrateUp();
    // Counts the transactions better-sqlite3 runs (each its own commit, and its own WAL fsync).
    const transaction = storage.db.transaction.bind(storage.db);
    storage.db.transaction = ((fn: (...a: unknown[]) => unknown) => {
      const tx = transaction(fn);
      return Object.assign((...a: unknown[]) => {
        commits++;
        return tx(...a);
      }, tx);
    }) as typeof storage.db.transaction;
  });
  after(() => storage.close());

  it('inserts and revocations made in one turn commit together, and each caller hears only once its write is committed', async () => {
    const old = Array.from({ length: 10 }, () => crypto.randomBytes(32));
    for (const h of old) await storage.oidc.insertToken(h, row(), new Date().toISOString());
    const fresh = Array.from({ length: 40 }, () => crypto.randomBytes(32));
    commits = 0;
    const now = new Date().toISOString();
    const done = await Promise.all([...fresh.map((h) => storage.oidc.insertToken(h, row(), now).then(() => 'inserted')), ...old.map((h) => storage.oidc.revokeToken(h))]);
    expect(commits, 'one commit for the turn').to.equal(1);
    expect(done.filter((d) => d === 'inserted')).to.have.length(40);
    expect(done.filter((d) => d === true)).to.have.length(10);
    for (const h of fresh) expect(await storage.oidc.token(h)).to.not.equal(undefined);
    for (const h of old) expect(await storage.oidc.token(h)).to.equal(undefined);
  });

  it('a write that fails fails alone: the rest of its group is committed', async () => {
    const taken = crypto.randomBytes(32);
    await storage.oidc.insertToken(taken, row(), new Date().toISOString());
    const others = Array.from({ length: 5 }, () => crypto.randomBytes(32));
    const now = new Date().toISOString();
    const results = await Promise.allSettled([storage.oidc.insertToken(others[0]!, row(), now), storage.oidc.insertToken(taken, row(), now), ...others.slice(1).map((h) => storage.oidc.insertToken(h, row(), now))]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).to.match(/UNIQUE|PRIMARY KEY/);
    for (const h of others) expect(await storage.oidc.token(h)).to.not.equal(undefined);
  });

  it('a group waits for another caller’s open transaction, and is not rolled back with it', async () => {
    const h = crypto.randomBytes(32);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const rolledBack = storage.tx(async (r) => {
      await r.meta.set('group-commit-probe', 'x');
      await held;
      throw new Error('roll back');
    });
    await sleep(10);
    // While that transaction is open, a token is exchanged (outside it).
    let inserted = false;
    const insert = storage.oidc.insertToken(h, row(), new Date().toISOString()).then(() => (inserted = true));
    await sleep(50);
    expect(inserted, 'the grouped write waited for the open transaction').to.equal(false);
    release();
    await rolledBack.catch(() => undefined);
    await insert;
    expect(await storage.oidc.token(h), 'the token outlived the rollback').to.not.equal(undefined);
    expect(await storage.meta.get('group-commit-probe')).to.equal(null);
  });
});
