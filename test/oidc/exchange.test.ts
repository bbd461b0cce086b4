import { expect } from 'chai';
import { dbBytes } from '../helpers/env.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { LEEWAY_S } from '../../plugins/oidc/verify.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('OIDC port: token exchange', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  before(async () => {
    e = await startOidcEnv();
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } });
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read', 'list'] });
    await e.admin('PUT', '/v1/oidc/roles/short', { issuer: 'ci', bound_claims: { repository: 'org/short' }, paths: ['ci/org/short/*'], permissions: ['read'], token_ttl_s: 1 });
  });
  after(() => e.stop());

  it('trades a JWT for an opaque token with the same grants, stored only as a hash', async () => {
    const jwt = await e.idp.token(github('org/repo'));
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt });
    expect(r.status, r.text).to.equal(200);
    expect(r.body.expires_in).to.equal(900);
    expect(r.body.token).to.match(/^nxo_[A-Za-z0-9_-]{43}$/);
    const viaJwt = await e.oidc(jwt, 'GET', '/v1/whoami');
    const viaToken = await e.oidc(r.body.token, 'GET', '/v1/whoami');
    expect(viaToken.body.via).to.equal('exchanged_token');
    for (const k of ['issuer', 'subject', 'roles', 'grants']) expect(viaToken.body[k], k).to.deep.equal(viaJwt.body[k]);
    expect((await e.oidc(r.body.token, 'GET', '/v1/secrets/ci/org/repo/db')).body.data).to.deep.equal({ v: 'x' });
    e.t.server.core.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(dbBytes(e.t.server.core.config.dbFile).includes(Buffer.from(r.body.token))).to.equal(false);
    expect(e.logs()).to.not.include(r.body.token);
  });

  it('honours the role TTL', async () => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/short')) });
    expect(r.body.expires_in).to.equal(1);
    expect((await e.oidc(r.body.token, 'GET', '/v1/whoami')).status).to.equal(200);
    await sleep(1200);
    const after = await e.oidc(r.body.token, 'GET', '/v1/whoami');
    expect(after.status).to.equal(401);
    expect(e.logs().split('\n').find((l) => l.includes(after.body.error.request_id))).to.match(/exchanged_token_expired/);
  });

  it('revoking a role revokes its tokens', async () => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/repo')) });
    expect((await e.oidc(r.body.token, 'GET', '/v1/whoami')).status).to.equal(200);
    const rev = await e.admin('POST', '/v1/oidc/roles/main:revoke-tokens');
    expect(rev.status, rev.text).to.equal(200);
    expect(rev.body.revoked).to.be.greaterThan(0);
    expect((await e.oidc(r.body.token, 'GET', '/v1/whoami')).status).to.equal(401);
  });

  it('refuses an exchange without a valid JWT, or with no matching role', async () => {
    expect((await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: 'x.y.z' })).status).to.equal(401);
    expect((await e.oidc(undefined, 'POST', '/v1/auth/token', {})).status).to.equal(401);
    expect((await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/nobody')) })).status).to.equal(403);
    expect((await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: 'a'.repeat(40 * 1024) })).status).to.equal(413);
    expect((await e.oidc('nxo_' + 'A'.repeat(43), 'GET', '/v1/whoami')).status).to.equal(401);
  });
});

describe('OIDC port: rate limits', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  before(async () => {
    e = await startOidcEnv({ NEXUS_OIDC_FAILED_AUTH_RPS: '1', NEXUS_OIDC_SUBJECT_RPS: '2' });
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/**'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('failed authentications per IP: 429 with Retry-After, valid tokens unaffected, then recovery', async () => {
    const statuses: number[] = [];
    let retry: string | undefined;
    for (let i = 0; i < 7; i++) {
      const r = await e.oidc('bad.token.here', 'GET', '/v1/whoami');
      statuses.push(r.status);
      if (r.status === 429) retry = r.headers['retry-after'] as string;
    }
    expect(statuses.slice(0, 5)).to.deep.equal([401, 401, 401, 401, 401]); // burst = 5 x 1/s
    expect(statuses.slice(5)).to.deep.equal([429, 429]);
    expect(Number(retry)).to.be.within(1, 30);
    expect(Number.isInteger(Number(retry))).to.equal(true);
    // The same IP with a valid token is not throttled by the failure budget.
    expect((await e.oidc(await e.idp.token(github('org/repo', 'refs/heads/a')), 'GET', '/v1/whoami')).status).to.equal(200);
    await sleep(1100 * Number(retry));
    expect((await e.oidc('bad.token.here', 'GET', '/v1/whoami')).status).to.equal(401);
  });

  it('requests per tenant (the repository the role binds): 429 past the burst, shared by every ref of the repository, not by another repository behind the same address; then recovery', async () => {
    await e.admin('PUT', '/v1/oidc/roles/other', { issuer: 'ci', bound_claims: { repository: 'org/other' }, paths: ['ci/**'], permissions: ['read'] });
    const jwt = await e.idp.token(github('org/repo', 'refs/heads/busy'));
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await e.oidc(jwt, 'GET', '/v1/whoami')).status);
    expect(statuses.filter((s) => s === 200).length).to.be.within(10, 11); // burst = 5 x 2/s (+ refill while we send)
    expect(statuses.at(-1)).to.equal(429);
    // Another repository from the same client address keeps its own budget ...
    expect((await e.oidc(await e.idp.token(github('org/other', 'refs/heads/busy')), 'GET', '/v1/whoami')).status).to.equal(200);
    // ... while another ref (another subject) of the same repository spends the same one.
    const sameRepo = await e.oidc(await e.idp.token(github('org/repo', 'refs/heads/quiet')), 'GET', '/v1/whoami');
    expect(sameRepo.status).to.equal(429);
    expect(Number(sameRepo.headers['retry-after'])).to.be.within(1, 30);
    await sleep(1100);
    expect((await e.oidc(jwt, 'GET', '/v1/whoami')).status).to.equal(200);
  });
});

describe('OIDC port: clock skew', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  before(async () => {
    e = await startOidcEnv();
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/**'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('a token whose iat is a little ahead of the server clock: 401 token_not_yet_valid with Retry-After (the clocks disagree); far ahead: a plain 401', async () => {
    const ahead = (s: number) => e.idp.token({ ...github('org/repo', 'refs/heads/skew'), iat: Math.floor(Date.now() / 1000) + LEEWAY_S + s });
    const early = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await ahead(2) });
    expect(early.status).to.equal(401);
    expect(early.body.error.code).to.equal('token_not_yet_valid');
    // Redacted like every 401 here: the code is all it says.
    expect(early.body.error.message).to.equal('the token was not accepted');
    const wait = Number(early.headers['retry-after']);
    expect(wait).to.be.within(1, 3);
    const far = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await ahead(3600) });
    expect(far.status).to.equal(401);
    expect(far.body.error.code).to.equal('unauthorized');
    expect(far.headers['retry-after']).to.equal(undefined);
  });
});
