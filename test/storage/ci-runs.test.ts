import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Core } from '../../nexus/core.js';
import type { TokenRow } from '../../nexus/storage/storage.js';
import { openTestCore, tempDir } from '../helpers/env.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';

// The repository side of CI end-of-work events, on both engines: tokens
// found and deleted by issuer and run, deliveries remembered until expiry.
const token = (issuer: string, ciRun: string | null): TokenRow => ({
  issuer,
  issuer_url: 'https://idp.example.com',
  jwks_uri: null,
  header: '{"alg":"RS256"}',
  subject: 's',
  roles: '["r"]',
  claims: '{}',
  key_kid: null,
  key_thumbprint: 'x',
  expires_at: Date.now() + 600_000,
  ci_run: ciRun,
});

function engineCases(open: () => Promise<Core>): void {
  let core: Core;
  beforeEach(async () => {
    core = await open();
  });
  afterEach(async () => core.close());

  it('revokeCiRun deletes exactly the tokens of that issuer and run, and returns their hashes', async () => {
    const run = 'github:org/repo:1:1';
    const mine = [randomBytes(32), randomBytes(32)];
    const others: Array<[Buffer, TokenRow]> = [
      [randomBytes(32), token('gh', 'github:org/repo:1:2')],
      [randomBytes(32), token('gh', 'github:org/other:1:1')],
      [randomBytes(32), token('other-issuer', run)],
      [randomBytes(32), token('gh', null)],
    ];
    const now = new Date().toISOString();
    for (const h of mine) await core.storage.oidc.insertToken(h, token('gh', run), now);
    for (const [h, t] of others) await core.storage.oidc.insertToken(h, t, now);
    const gone = await core.storage.tx((r) => r.oidc.revokeCiRun('gh', run));
    expect(gone.map((h) => Buffer.from(h).toString('hex')).sort()).to.deep.equal(mine.map((h) => h.toString('hex')).sort());
    for (const h of mine) expect(await core.storage.oidc.token(h)).to.equal(undefined);
    for (const [h] of others) expect(await core.storage.oidc.token(h)).to.not.equal(undefined);
    expect((await core.storage.oidc.token(others[0]![0]))!.ci_run).to.equal('github:org/repo:1:2');
  });

  it('claimDelivery: a key seen before (any of them) is a replay until it expires; purgeExpired forgets it', async () => {
    const t0 = 1_000_000;
    expect(await core.storage.tx((r) => r.oidc.claimDelivery(['gh:body:a', 'gh:id:1'], t0, t0 + 100))).to.equal(true);
    expect(await core.storage.tx((r) => r.oidc.claimDelivery(['gh:body:a', 'gh:id:2'], t0 + 1, t0 + 101))).to.equal(false);
    expect(await core.storage.tx((r) => r.oidc.claimDelivery(['gh:body:b', 'gh:id:1'], t0 + 1, t0 + 101))).to.equal(false);
    // Nothing of a refused claim was remembered.
    expect(await core.storage.tx((r) => r.oidc.claimDelivery(['gh:id:2'], t0 + 2, t0 + 102))).to.equal(true);
    // Expired: claimable again, whether or not it was purged yet.
    expect(await core.storage.tx((r) => r.oidc.claimDelivery(['gh:body:a'], t0 + 100, t0 + 200))).to.equal(true);
    await core.storage.oidc.purgeExpired(t0 + 10_000, 500);
    expect(await core.storage.tx((r) => r.oidc.claimDelivery(['gh:body:a', 'gh:id:1', 'gh:id:2'], t0 + 10_001, t0 + 20_000))).to.equal(true);
  });
}

describe('CI runs in storage: tokens by run, deliveries against replay', function () {
  describe('SQLite', function () {
    engineCases(() => openTestCore(tempDir()));
  });

  describe('PostgreSQL', function () {
    let db: TestDatabase;
    before(async function () {
      db = await createTestDatabase(await requirePg(this));
    });
    after(async () => db?.drop());
    let rootKey: string | undefined;
    engineCases(async () => {
      const core = await openTestCore(tempDir(), { NEXUS_DATABASE_URL: db.url, ...(rootKey ? { NEXUS_ROOT_KEY: rootKey } : {}) });
      rootKey ??= core.rootKey.bytes.toString('base64');
      return core;
    });
  });
});
