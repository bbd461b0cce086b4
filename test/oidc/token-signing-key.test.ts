import { expect } from 'chai';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { randomBytes } from 'node:crypto';
import { github, type TestIdp } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { createTestDatabase, requirePg, sql, type TestDatabase } from '../helpers/pg.js';
import { until } from '../helpers/wait.js';

// Rotating a key out of the IdP's JWKS is the standard answer to a leaked
// signing key. Once Nexus has fetched a key set without that key, tokens
// exchanged from JWTs it signed must stop working too, not live out their TTL.

/**
 * The mock IdP's key store has no remove: keys in `hidden` are left out of the
 * published JWKS, yet the IdP can still sign with them (as a thief could).
 */
function publishing(idp: TestIdp): Set<string> {
  const keys = idp.server.issuer.keys;
  const all = keys.toJSON.bind(keys);
  const hidden = new Set<string>();
  keys.toJSON = (priv?: boolean) => all(priv).filter((k) => !hidden.has(k.kid as string));
  return hidden;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`OIDC port: an exchanged token dies with its signing key (${backend})`, function () {
    this.timeout(90_000);
    let e: OidcEnv;
    let db: TestDatabase | undefined;
    let hidden: Set<string>;
    const ROLE = 'main';
    const PATH = 'ci/org/repo/db';

    before(async function () {
      const env: Record<string, string> = { NEXUS_OIDC_FAILED_AUTH_RPS: '1000' };
      if (backend === 'postgres') {
        db = await createTestDatabase(await requirePg(this));
        env.NEXUS_DATABASE_URL = db.url;
      }
      // A short refresh period, so that rotation is seen by the period alone too; the defaults are 60 s and 30 s.
      e = await startOidcEnv(env, { maxAgeMs: 1500, cooldownMs: 500, timeoutMs: 2000 });
      hidden = publishing(e.idp);
      const r = await e.admin('PUT', `/v1/oidc/roles/${ROLE}`, { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read', 'write'] });
      expect(r.status, r.text).to.equal(201);
      expect((await e.admin('PUT', `/v1/secrets/${PATH}`, { data: { v: 'one' } })).status).to.equal(201);
    });
    after(async () => {
      await e?.stop();
      await db?.drop();
    });

    /** A fresh IdP signing key (Nexus learns it on the first JWT that names it). */
    const newKey = async (): Promise<string> => {
      const kid = `k-${randomBytes(4).toString('hex')}`;
      await e.idp.server.issuer.keys.generate('RS256', { kid });
      return kid;
    };
    const jwt = (kid: string) => e.idp.token(github('org/repo', 'refs/heads/main', { jti: randomBytes(8).toString('hex') }), { kid });

    /** Native and Vault exchanges of JWTs signed by `kid`; an unknown kid is refetched once per cooldown, hence the polling. */
    const exchange = async (kid: string): Promise<{ native: string; vault: string }> => {
      let native = '';
      await until(async () => {
        const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await jwt(kid) });
        native = r.body?.token;
        return r.status === 200;
      }, `an exchange of a JWT signed by ${kid}`, 10_000);
      const r = await e.oidc(undefined, 'POST', '/v1/auth/jwt/login', { role: ROLE, jwt: await jwt(kid) });
      expect(r.status, r.text).to.equal(200);
      return { native, vault: r.body.auth.client_token };
    };

    const vaultHeader = (t: string) => ({ 'X-Vault-Token': t });
    /** Every use of a token this port has: native read, whoami and write; Vault read and lookup-self. */
    const uses = async (t: { native: string; vault: string }): Promise<number[]> => {
      const statuses = [
        (await e.oidc(t.native, 'GET', `/v1/secrets/${PATH}`)).status,
        (await e.oidc(t.native, 'GET', '/v1/whoami')).status,
        (await e.oidc(t.native, 'PUT', '/v1/secrets/ci/org/repo/written', { data: { v: 'x' } })).status,
        (await e.oidc(undefined, 'GET', `/v1/secret/data/${PATH}`, undefined, vaultHeader(t.vault))).status,
        (await e.oidc(undefined, 'GET', '/v1/auth/token/lookup-self', undefined, vaultHeader(t.vault))).status,
        // The Vault login's token is a Bearer on the native routes too.
        (await e.oidc(t.vault, 'PUT', '/v1/secrets/ci/org/repo/written', { data: { v: 'y' } })).status,
      ];
      // A write answers 201 for a new path, 200 for a new version.
      return statuses.map((s) => (s === 201 ? 200 : s));
    };
    const WORKING = [200, 200, 200, 200, 200, 200];
    const REFUSED = [401, 401, 401, 401, 401, 401];

    it('a key dropped from the JWKS ends its tokens on every route once a new kid makes Nexus refetch; tokens of the new key work', async () => {
      const a = await newKey();
      const fromA = await exchange(a);
      expect(await uses(fromA)).to.deep.equal(WORKING);

      hidden.add(a);
      const b = await newKey();
      // A JWT naming B is an unknown kid: Nexus refetches before accepting it, and that set lacks A.
      const fromB = await exchange(b);
      expect(await uses(fromA)).to.deep.equal(REFUSED);
      expect((await e.oidc(await jwt(a), 'GET', '/v1/whoami')).status).to.equal(401);
      expect(await uses(fromB)).to.deep.equal(WORKING);
      expect(e.logs()).to.match(/exchanged_token_signing_key_removed/);
    });

    it('the refresh period alone is enough: tokens of a dropped key are refused without any new JWT', async () => {
      const a = await newKey();
      const fromA = await exchange(a);
      expect(await uses(fromA)).to.deep.equal(WORKING);
      hidden.add(a);
      // Only the exchanged token is used: each use may start a background refresh when the keys are stale.
      await until(async () => (await e.oidc(fromA.native, 'GET', `/v1/secrets/${PATH}`)).status === 401, 'the dropped key to be seen', 15_000);
      expect(await uses(fromA)).to.deep.equal(REFUSED);
    });

    it('a new key set that still holds the key keeps its tokens', async () => {
      const a = await newKey();
      const fromA = await exchange(a);
      const b = await newKey();
      await exchange(b); // a refetch, with A still published
      expect(await uses(fromA)).to.deep.equal(WORKING);
      // Several refresh periods later, still the same.
      const keys = e.plugin['registry']!.all()[0]!;
      const fetches = keys.fetches;
      await until(async () => {
        expect((await e.oidc(fromA.native, 'GET', `/v1/secrets/${PATH}`)).status).to.equal(200);
        return keys.fetches >= fetches + 2;
      }, 'two more key-set fetches', 15_000);
      expect(await uses(fromA)).to.deep.equal(WORKING);
    });

    it('a failed refresh revokes nothing: an unreachable IdP is not a key set without the key', async () => {
      const a = await newKey();
      const fromA = await exchange(a);
      const failures = () => (e.logs().match(/could not refresh issuer keys/g) ?? []).length;
      const before = failures();
      await e.idp.server.stop();
      try {
        await until(async () => (await e.oidc(fromA.native, 'GET', `/v1/secrets/${PATH}`)).status === 200 && failures() > before, 'a failed refresh', 15_000);
        expect(await uses(fromA)).to.deep.equal(WORKING);
      } finally {
        await e.idp.server.start(Number(new URL(e.idp.url).port), '127.0.0.1');
      }
    });

    it('a token stored without its signing key (minted before migration 006) is refused', async () => {
      const { native } = await exchange(await newKey());
      // Before its first use, so no copy of the row is kept in memory.
      const strip = 'UPDATE oidc_tokens SET key_kid = NULL, key_thumbprint = NULL';
      if (db) await sql(db.url, strip);
      else e.t.server.core.db.prepare(strip).run();
      expect((await e.oidc(native, 'GET', `/v1/secrets/${PATH}`)).status).to.equal(401);
    });

    it('stores the kid and the RFC 7638 thumbprint of the key that verified the JWT', async () => {
      const a = await newKey();
      await exchange(a);
      type Row = { key_kid: string; key_thumbprint: string };
      const rows = db
        ? await sql<Row>(db.url, 'SELECT key_kid, key_thumbprint FROM oidc_tokens WHERE key_kid = $1', [a])
        : (e.t.server.core.db.prepare('SELECT key_kid, key_thumbprint FROM oidc_tokens WHERE key_kid = ?').all(a) as Row[]);
      expect(rows).to.have.length(2);
      const jwk = e.idp.server.issuer.keys.toJSON().find((k) => k.kid === a)!;
      const thumbprint = await calculateJwkThumbprint(jwk as JWK, 'sha256');
      for (const row of rows) expect(row.key_thumbprint).to.equal(thumbprint);
    });
  });
}
