import { expect } from 'chai';
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import path from 'node:path';
import { createLogger } from '../../nexus/log.js';
import { PgStorage } from '../../nexus/storage/postgres.js';
import { SqliteStorage } from '../../nexus/storage/sqlite.js';
import type { Storage } from '../../nexus/storage/storage.js';
import { OidcStore, type StoredToken } from '../../plugins/oidc/store.js';
import { TokenPurge } from '../../plugins/oidc/token-purge.js';
import { tempDir } from '../helpers/env.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { until } from '../helpers/wait.js';
import { createTestDatabase, requirePg, sql, type TestDatabase } from '../helpers/pg.js';

const NOW = Date.parse('2026-06-01T09:00:00Z');
const EXPIRED = 1000;
const BATCH = 100;

function token(expiresAt: number): StoredToken {
  return {
    issuer: 'ci',
    issuer_url: 'https://idp.example',
    jwks_uri: null,
    header: { alg: 'ES256' },
    subject: 'repo:org/repo',
    roles: ['bench'],
    claims: { repository: 'org/repo' },
    key: { kid: 'k', thumbprint: 't' },
    expires_at: expiresAt,
    created_at: expiresAt - 60_000,
  };
}

const hash = () => crypto.randomBytes(32);

async function count(storage: Storage, hashes: Buffer[]): Promise<number> {
  let n = 0;
  for (const h of hashes) if (await storage.oidc.token(h)) n++;
  return n;
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`expired exchanged tokens pruned in batches (${kind})`, function () {
    this.timeout(60_000);
    let storage: Storage;
    let db: TestDatabase | null = null;

    before(async function () {
      if (kind === 'postgres') {
        db = await createTestDatabase(await requirePg(this));
        storage = new PgStorage(db.url);
      } else {
        storage = SqliteStorage.open(path.join(tempDir('nexus-purge'), 'nexus.db'));
      }
      await storage.migrateUp();
    });
    after(async () => {
      await storage?.close();
      await db?.drop();
    });

    it('a round deletes every expired token in bounded batches, lookups run between the batches, and no valid token goes', async () => {
      const store = new OidcStore(storage);
      const expired: Buffer[] = [];
      for (let i = 0; i < EXPIRED; i++) {
        const h = hash();
        expired.push(h);
        // Expired a while ago, or at this very millisecond (refused from `now` on: exchange.ts checks expires_at <= now).
        await store.insertToken(h, token(i === 0 ? NOW : NOW - 1 - i));
      }
      const live = [hash(), hash()];
      await store.insertToken(live[0]!, token(NOW + 1)); // valid for one more millisecond
      await store.insertToken(live[1]!, token(NOW + 3_600_000));

      // A request stream beside the purge: live-token lookups, one after the other, until the round ends.
      const events: string[] = [];
      const purge = new TokenPurge(store, { intervalMs: 60_000, batch: BATCH, onBatch: (n) => events.push(`batch ${n}`) }, createLogger({ level: 'fatal' }));
      let done = false;
      const requests = (async () => {
        while (!done) {
          // Each request arrives as I/O does, on a later turn of the event loop.
          await new Promise((r) => setImmediate(r));
          expect(await store.token(live[1]!), 'a live token during the purge').to.not.equal(undefined);
          events.push('lookup');
        }
      })();
      const purged = await purge.round(NOW);
      done = true;
      await requests;

      expect(purged).to.equal(EXPIRED);
      const batches = events.filter((e) => e.startsWith('batch')).map((e) => Number(e.split(' ')[1]));
      expect(Math.max(...batches), 'no batch over its bound').to.be.at.most(BATCH);
      expect(batches.length).to.be.at.least(EXPIRED / BATCH);
      const first = events.findIndex((e) => e.startsWith('batch'));
      const last = events.findLastIndex((e) => e.startsWith('batch'));
      expect(events.slice(first, last).filter((e) => e === 'lookup').length, `requests interleaved with the batches: ${events.join(', ')}`).to.be.at.least(2);

      expect(await count(storage, expired)).to.equal(0);
      expect(await count(storage, live), 'valid tokens kept').to.equal(2);
      // The one that had a millisecond left goes once that millisecond has passed.
      expect(await purge.round(NOW + 1)).to.equal(1);
      expect(await count(storage, live)).to.equal(1);
      await purge.stop();
    });

    it('rounds never overlap: a second round asked for while one runs is that same round', async () => {
      const store = new OidcStore(storage);
      for (let i = 0; i < 3 * BATCH; i++) await store.insertToken(hash(), token(NOW - 10));
      const purge = new TokenPurge(store, { intervalMs: 60_000, batch: BATCH }, createLogger({ level: 'fatal' }));
      const [a, b] = await Promise.all([purge.round(NOW), purge.round(NOW)]);
      expect(a).to.equal(3 * BATCH);
      expect(b).to.equal(3 * BATCH);
      await purge.stop();
    });
  });
}

describe('the token table stays bounded on PostgreSQL with autovacuum off', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let storage: PgStorage;
  before(async function () {
    db = await createTestDatabase(await requirePg(this));
    storage = new PgStorage(db.url);
    await storage.migrateUp();
    // Whatever the server's setting, nothing but the purge may vacuum this table here.
    await sql(db.url, 'ALTER TABLE oidc_tokens SET (autovacuum_enabled = false)');
  });
  after(async () => {
    await storage?.close();
    await db?.drop();
  });

  it('each purge round vacuums the table, so a storm of exchanges and revocations reuses the space of the rows it deleted', async () => {
    const store = new OidcStore(storage);
    const purge = new TokenPurge(store, { intervalMs: 60_000, batch: BATCH }, createLogger({ level: 'fatal' }));
    const size = async () => Number((await sql<{ n: string }>(db.url, "SELECT pg_total_relation_size('oidc_tokens') AS n"))[0]!.n);
    // A wave of CI jobs: 2,000 tokens exchanged, half revoked by their jobs, half left to expire; then a purge round.
    const wave = async () => {
      const hashes = Array.from({ length: 2000 }, hash);
      for (const [i, h] of hashes.entries()) await store.insertToken(h, token(i % 2 ? NOW - 1 : NOW + 3_600_000));
      for (const [i, h] of hashes.entries()) if (i % 2 === 0) await store.revokeToken(h);
      expect(await purge.round(NOW)).to.equal(1000);
    };
    for (let i = 0; i < 3; i++) await wave();
    const settled = await size();
    for (let i = 0; i < 5; i++) await wave();
    const after = await size();
    // Vacuumed, the table and its indexes level off once a wave's rows fit in the space the last one freed; without, every wave adds its 2,000 dead rows' pages.
    expect(after, `${settled} bytes after three waves, ${after} after eight`).to.be.at.most(settled * 1.25);
    const stat = await sql<{ last_vacuum: Date | null }>(db.url, "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'oidc_tokens'");
    expect(stat[0]!.last_vacuum).to.not.equal(null);
    await purge.stop();
  });
});

describe('the purge runs on its schedule in the server (NEXUS_OIDC_TOKEN_PURGE_INTERVAL_MS)', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  before(async () => {
    e = await startOidcEnv({ NEXUS_OIDC_TOKEN_PURGE_INTERVAL_MS: '200' });
    await e.admin('PUT', '/v1/oidc/roles/short', { issuer: 'ci', bound_claims: { repository: 'org/short' }, paths: ['ci/org/short/*'], permissions: ['read'], token_ttl_s: 1 });
    await e.admin('PUT', '/v1/oidc/roles/long', { issuer: 'ci', bound_claims: { repository: 'org/long' }, paths: ['ci/org/long/*'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('expired tokens leave the table by themselves; a live one stays and keeps working', async () => {
    const exchange = async (repo: string) => (await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github(repo)) })).body.token as string;
    for (let i = 0; i < 5; i++) await exchange('org/short');
    const live = await exchange('org/long');
    const db = new Database(path.join(e.t.dir, 'nexus.db'), { readonly: true });
    try {
      const rows = () => (db.prepare('SELECT count(*) AS n FROM oidc_tokens').get() as { n: number }).n;
      expect(rows()).to.equal(6);
      await until(() => rows() === 1, 'the expired tokens to be purged');
      expect((await e.oidc(live, 'GET', '/v1/whoami')).status).to.equal(200);
    } finally {
      db.close();
    }
  });
});
