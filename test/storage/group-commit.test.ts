import { expect } from 'chai';
import crypto from 'node:crypto';
import fs from 'node:fs';
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

describe('exchanged tokens: written in groups, made durable off the event loop', function () {
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

  /** fs.fdatasync held until `hold` resolves (or failing with `fail`); `synced` gets the inode of each file it synced. */
  async function withHeldSync(hold: Promise<void>, fail: Error | null, fn: (synced: number[]) => Promise<void>): Promise<void> {
    const fdatasync = fs.fdatasync;
    const synced: number[] = [];
    fs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      void hold.then(() => {
        if (fail) return cb(fail);
        synced.push(fs.fstatSync(fd).ino);
        fdatasync(fd, cb);
      });
    }) as typeof fs.fdatasync;
    try {
      await fn(synced);
    } finally {
      fs.fdatasync = fdatasync;
    }
  }

  it('the WAL is fsynced off the event loop, and a caller hears of its write only once that fsync is done', async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    await withHeldSync(hold, null, async (synced) => {
      const h = crypto.randomBytes(32);
      let done = false;
      const insert = storage.oidc.insertToken(h, row(), new Date().toISOString()).then(() => (done = true));
      await sleep(50);
      expect(done, 'answered before its fsync').to.equal(false);
      // Committed meanwhile, and other statements ran: the event loop was not held.
      expect(await storage.oidc.token(h)).to.not.equal(undefined);
      release();
      await insert;
      expect(synced).to.deep.equal([fs.statSync(`${storage.db.name}-wal`).ino]);
    });
  });

  it('a failed fsync fails every write of its group, as a failed commit would', async () => {
    await withHeldSync(Promise.resolve(), Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }), async () => {
      const results = await Promise.allSettled([storage.oidc.insertToken(crypto.randomBytes(32), row(), new Date().toISOString()), storage.oidc.revokeToken(crypto.randomBytes(32))]);
      expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
      expect(String((results[0] as PromiseRejectedResult).reason)).to.match(/EIO/);
    });
  });
});
