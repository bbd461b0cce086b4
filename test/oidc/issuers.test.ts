import { expect } from 'chai';
import { github, startIdp } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('OIDC issuers: trust, key rotation, outages', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  before(async () => {
    // Short cache and cooldown so rotation is observable in a test; the defaults are 60 s and 30 s.
    e = await startOidcEnv({}, { maxAgeMs: 1500, cooldownMs: 1000, timeoutMs: 1000 });
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/**'], permissions: ['read'] });
  });
  after(() => e.stop());

  const whoami = async (token: string) => (await e.oidc(token, 'GET', '/v1/whoami')).status;

  it('follows a new signing key without a restart', async () => {
    expect(await whoami(await e.idp.token(github('org/repo')))).to.equal(200);
    await e.idp.server.issuer.keys.generate('ES256', { kid: 'key-2' });
    await sleep(1100); // past the unknown-kid cooldown since the last fetch
    expect(await whoami(await e.idp.token(github('org/repo'), { kid: 'key-2' }))).to.equal(200);
  });

  it('a flood of unknown kids causes at most a handful of JWKS fetches', async () => {
    const keys = e.plugin['registry']!.all()[0]!;
    const before = keys.fetches;
    const good = await e.idp.token(github('org/repo'));
    const [h, p, s] = good.split('.');
    const header = JSON.parse(Buffer.from(h!, 'base64url').toString());
    const tasks: Array<Promise<number>> = [];
    const started = Date.now();
    for (let i = 0; i < 60; i++) {
      const forged = `${Buffer.from(JSON.stringify({ ...header, kid: `random-${i}` })).toString('base64url')}.${p}.${s}`;
      tasks.push(whoami(forged));
    }
    const statuses = await Promise.all(tasks);
    expect(statuses.every((x) => x === 401 || x === 429)).to.equal(true);
    // One fetch per 1 s cooldown (test timings), plus one stale-cache refresh:
    // on a loaded machine the flood can outlast a cooldown, which then allows one more.
    const cooldowns = Math.floor((Date.now() - started) / 1000);
    expect(keys.fetches - before).to.be.at.most(2 + cooldowns);
  });

  it('an IdP that is down leaves cached keys working', async () => {
    const token = await e.idp.token(github('org/repo'));
    // Another JWT, so its signature is checked against the keys (not found in the verified-JWT cache).
    const later = await e.idp.token(github('org/repo', 'refs/heads/main', { jti: 'later' }));
    expect(await whoami(token)).to.equal(200);
    await e.idp.server.stop();
    await sleep(1700); // cache is now stale: a refresh is attempted and fails
    expect(await whoami(later)).to.equal(200);
    // The refresh runs in the background (a valid token never waits for it): its failure is logged when it ends.
    for (let i = 0; i < 100 && !/could not refresh issuer keys/.test(e.logs()); i++) await sleep(100);
    expect(e.logs()).to.match(/could not refresh issuer keys; keeping the previous ones/);
    await e.idp.server.start(Number(new URL(e.idp.url).port), '127.0.0.1');
  });

  it('refuses a discovered issuer that differs from the configured one (trailing slash)', async () => {
    const other = await startIdp();
    try {
      const body = { issuer: `${other.url}/`, audiences: ['nexus'], algorithms: ['RS256'] };
      const refused = await e.admin('PUT', '/v1/oidc/issuers/slash', body);
      expect(refused.status).to.equal(400);
      expect(refused.body.error.message).to.match(/discovered issuer .* is not .*\//);
      // Saved unverified, it is still refused when used.
      expect((await e.admin('PUT', '/v1/oidc/issuers/slash', { ...body, verify: false })).status).to.equal(201);
      await e.admin('PUT', '/v1/oidc/roles/slash', { issuer: 'slash', bound_claims: { repository: 'org/repo' }, paths: ['ci/**'], permissions: ['read'] });
      await sleep(300);
      // Tokens say iss=<url> (no slash): not the configured issuer, so unknown; and discovery of <url>/ finds a mismatch.
      expect(await whoami(await other.token(github('org/repo')))).to.equal(401);
      expect(e.logs()).to.match(/discovered issuer .* is not .*\//);
    } finally {
      await e.admin('DELETE', '/v1/oidc/roles/slash');
      await e.admin('DELETE', '/v1/oidc/issuers/slash');
      await other.stop();
    }
  });

  it('validates issuer and role configuration', async () => {
    const bad: Array<[string, unknown]> = [
      ['http on a non-loopback host', { issuer: 'http://idp.example.com', audiences: ['a'], algorithms: ['RS256'] }],
      ['HMAC', { issuer: 'https://idp.example.com', audiences: ['a'], algorithms: ['HS256'] }],
      ['none', { issuer: 'https://idp.example.com', audiences: ['a'], algorithms: ['none'] }],
      ['no audiences', { issuer: 'https://idp.example.com', audiences: [], algorithms: ['RS256'] }],
      ['not a URL', { issuer: 'idp', audiences: ['a'] }],
    ];
    for (const [name, body] of bad) expect((await e.admin('PUT', '/v1/oidc/issuers/x', body)).status, name).to.equal(400);
    const badRoles: Array<[string, unknown]> = [
      ['unknown issuer', { issuer: 'nope', bound_claims: { a: 'b' }, paths: ['x'], permissions: ['read'] }],
      ['no bindings', { issuer: 'ci', bound_claims: {}, paths: ['x'], permissions: ['read'] }],
      ['admin permission', { issuer: 'ci', bound_claims: { a: 'b' }, paths: ['x'], permissions: ['admin'] }],
      ['bad template', { issuer: 'ci', bound_claims: { a: 'b' }, paths: ['x/{{repository}}'], permissions: ['read'] }],
      ['dot-dot path', { issuer: 'ci', bound_claims: { a: 'b' }, paths: ['x/../y'], permissions: ['read'] }],
      ['ttl over an hour', { issuer: 'ci', bound_claims: { a: 'b' }, paths: ['x'], permissions: ['read'], token_ttl_s: 7200 }],
    ];
    for (const [name, body] of badRoles) expect((await e.admin('PUT', '/v1/oidc/roles/x', body)).status, name).to.equal(400);
    // Non-admins cannot touch issuers or roles.
    const { call } = await import('../helpers/server.js');
    const nobody = await e.t.svid('spiffe://nexus.local/nobody');
    expect((await call(e.t.port, nobody, 'GET', '/v1/oidc/issuers')).status).to.equal(403);
    expect((await e.admin('DELETE', '/v1/oidc/issuers/ci')).status).to.equal(409); // still used by a role
  });
});
