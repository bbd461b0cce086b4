import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { silentLogger } from '../../nexus/log.js';
import { Lru } from '../../nexus/lru.js';
import { IssuerRegistry } from '../../plugins/oidc/issuers.js';
import { VerifiedJwtCache } from '../../plugins/oidc/jwt-cache.js';
import type { IssuerConfig } from '../../plugins/oidc/types.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

const ISS = 'https://ci.example.test';

describe('verified-JWT cache', function () {
  this.timeout(30_000);
  let server: http.Server;
  let jwks: { keys: JWK[] } = { keys: [] };
  let keyA: CryptoKey;
  let keyB: CryptoKey;
  let config: IssuerConfig;
  let registry: IssuerRegistry;
  let cache: VerifiedJwtCache;
  let verifications = 0;
  const now = Math.floor(Date.now() / 1000);

  const sign = (claims: Record<string, unknown>, key = keyA, kid = 'a') =>
    new SignJWT({ iss: ISS, aud: 'nexus', sub: 's', iat: now, exp: now + 600, ...claims }).setProtectedHeader({ alg: 'ES256', kid }).sign(key);

  /** A fresh registry and cache over the current JWKS; getKey counts full verifications. */
  const setup = async (issuer: Partial<IssuerConfig> = {}, opts = { capS: 3600, max: 100 }) => {
    registry = new IssuerRegistry(silentLogger(), { maxAgeMs: 60_000, cooldownMs: 0, timeoutMs: 2_000 });
    config = { ...config, ...issuer };
    await sync(config);
    cache = new VerifiedJwtCache(registry, opts);
  };
  const sync = async (...configs: IssuerConfig[]) => {
    for (const k of registry.sync(configs)) {
      await k.preload();
      const getKey = k.getKey;
      k.getKey = (h, t) => {
        verifications++;
        return getKey(h, t);
      };
    }
  };
  const refusal = async (token: string, at = now): Promise<string> => {
    try {
      await cache.verify(token, at);
    } catch (err) {
      return (err as { reason: string }).reason;
    }
    return 'accepted';
  };

  before(async () => {
    let kp = await generateKeyPair('ES256');
    keyA = kp.privateKey;
    jwks = { keys: [{ ...(await exportJWK(kp.publicKey)), kid: 'a', alg: 'ES256' }] };
    kp = await generateKeyPair('ES256');
    keyB = kp.privateKey;
    server = http.createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify(jwks)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    config = { name: 'ci', issuer: ISS, audiences: ['nexus'], algorithms: ['ES256'], jwks_uri: `http://127.0.0.1:${port}/jwks`, max_token_age_s: null, max_token_lifetime_s: 86400, tenant_claims: ['sub'], allowed_types: [], jwks: null, jwks_file: null, jwks_stale_s: 86400, rate_limit: null, created_at: '', updated_at: '' } as IssuerConfig;
  });
  after(() => new Promise((r) => server.close(r)));
  beforeEach(async () => {
    verifications = 0;
    await setup();
  });

  it('verifies a repeated JWT once, and each distinct JWT', async () => {
    const t1 = await sign({ sub: 'one' });
    const t2 = await sign({ sub: 'two' });
    for (let i = 0; i < 5; i++) expect((await cache.verify(t1, now)).claims.sub).to.equal('one');
    expect(verifications).to.equal(1);
    expect((await cache.verify(t2, now)).claims.sub).to.equal('two');
    expect(verifications).to.equal(2);
  });

  it('never keeps a failed JWT as good', async () => {
    const forged = await sign({}, keyB, 'a');
    expect(await refusal(forged)).to.equal('bad_signature');
    expect(await refusal(forged)).to.equal('bad_signature');
    expect(verifications).to.equal(2);
    expect(cache.size).to.equal(0);
  });

  it('applies exp, max age and nbf on every use, cached or not', async () => {
    const t = await sign({ exp: now + 30 });
    expect(await refusal(t)).to.equal('accepted');
    expect(await refusal(t, now + 30 + 61)).to.equal('expired');
    await setup({ max_token_age_s: 100 });
    const aged = await sign({});
    expect(await refusal(aged)).to.equal('accepted');
    expect(await refusal(aged, now + 100 + 61)).to.equal('too_old');
    // A clock stepped back (NTP) must not let a not-yet-valid token through the cache.
    const early = await sign({ nbf: now + 30 });
    expect(await refusal(early)).to.equal('accepted');
    expect(await refusal(early, now - 100)).to.equal('not_yet_valid');
  });

  it('forgets an issuer whose keys changed: a token of a removed key is refused on the next use', async () => {
    const t = await sign({});
    expect(await refusal(t)).to.equal('accepted');
    const pub = jwks.keys;
    const kp = await generateKeyPair('ES256');
    jwks = { keys: [{ ...(await exportJWK(kp.publicKey)), kid: 'b', alg: 'ES256' }] };
    try {
      await registry.all()[0]!.preload();
      expect(await refusal(t)).to.equal('unknown_kid');
    } finally {
      jwks = { keys: pub };
    }
  });

  it('keeps entries across a refetch of the same keys', async () => {
    const t = await sign({});
    await cache.verify(t, now);
    await registry.all()[0]!.preload();
    await cache.verify(t, now);
    expect(verifications).to.equal(1);
  });

  it('sees an issuer change or removal on the next use', async () => {
    const t = await sign({});
    expect(await refusal(t)).to.equal('accepted');
    await sync({ ...config, audiences: ['someone-else'] });
    expect(await refusal(t)).to.equal('wrong_audience');
    await sync({ ...config, algorithms: ['RS256'] });
    expect(await refusal(t)).to.match(/alg_not_allowed/);
    await sync();
    expect(await refusal(t)).to.equal('unknown_issuer');
  });

  it('clear(issuer) is the invalidation hook for other replicas', async () => {
    const t = await sign({});
    await cache.verify(t, now);
    cache.clear('https://other.example');
    await cache.verify(t, now);
    expect(verifications).to.equal(1);
    cache.clear(ISS);
    await cache.verify(t, now);
    expect(verifications).to.equal(2);
    cache.clear();
    expect(cache.size).to.equal(0);
  });

  it('holds an entry no longer than the cap, and a bounded number of entries', async () => {
    await setup({}, { capS: 10, max: 2 });
    const [a, b, c] = [await sign({ sub: 'a' }), await sign({ sub: 'b' }), await sign({ sub: 'c' })];
    await cache.verify(a, now);
    await cache.verify(a, now + 11);
    expect(verifications).to.equal(2);
    await cache.verify(b, now);
    await cache.verify(c, now);
    expect(cache.size).to.equal(2);
    verifications = 0;
    await cache.verify(c, now);
    await cache.verify(a, now + 11);
    expect(verifications, 'the least recently used entry went first').to.equal(1);
  });
});

describe('LRU', () => {
  it('drops the least recently used entry', () => {
    const l = new Lru<string, number>(2);
    l.set('a', 1);
    l.set('b', 2);
    l.get('a');
    l.set('c', 3);
    expect([l.get('a'), l.get('b'), l.get('c')]).to.deep.equal([1, undefined, 3]);
    l.clear((v) => v === 3);
    expect(l.size).to.equal(1);
  });
});

describe('OIDC port with a repeated JWT: changes are seen on the next request', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let jwt: string;
  const read = () => e.oidc(jwt, 'GET', '/v1/secrets/ci/org/repo/db');
  const role = (body: Record<string, unknown> = {}) =>
    e.admin('PUT', '/v1/oidc/roles/r', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read'], ...body });

  before(async () => {
    e = await startOidcEnv();
    jwt = await e.idp.token(github('org/repo'));
  });
  after(() => e.stop());
  beforeEach(async () => {
    await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, audiences: ['nexus'], algorithms: ['RS256', 'ES256'], tenant_claims: ['repository'] });
    expect((await role()).status).to.be.oneOf([200, 201]);
    expect((await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'one' } })).status).to.be.oneOf([200, 201]);
    expect((await read()).status).to.equal(200);
    expect((await read()).status).to.equal(200);
  });

  it('a write', async () => {
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'two' } });
    expect((await read()).body.data).to.deep.equal({ v: 'two' });
  });

  it('a role narrowing', async () => {
    expect((await role({ paths: ['ci/org/repo/other'] })).status).to.equal(200);
    expect((await read()).status).to.equal(403);
  });

  it('a revocation (the role deleted)', async () => {
    expect((await e.admin('DELETE', '/v1/oidc/roles/r')).status).to.be.oneOf([200, 204]);
    expect((await read()).status).to.equal(403);
  });

  it('an issuer change', async () => {
    expect((await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, audiences: ['someone-else'], algorithms: ['RS256'], tenant_claims: ['repository'] })).status).to.equal(200);
    expect((await read()).status).to.equal(401);
  });
});
