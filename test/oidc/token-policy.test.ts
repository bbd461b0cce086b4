import { expect } from 'chai';
import { github, startIdp, type TestIdp } from '../helpers/idp.js';
import { GITHUB_TENANT_CLAIMS, startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

const now = () => Math.floor(Date.now() / 1000);

describe('OIDC token policy (RFC 8725, CI-aware)', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  let plainIdp: TestIdp;
  const read = async (claims: Record<string, unknown>, opts: { header?: Record<string, unknown>; expiresIn?: number } = {}) =>
    e.oidc(await e.idp.token(claims, opts), 'GET', '/v1/secrets/ci/org/repo/db');
  const putIssuer = async (body: Record<string, unknown>) => {
    const r = await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: GITHUB_TENANT_CLAIMS, ...body });
    expect(r.status, r.text).to.equal(200);
    return r;
  };

  before(async () => {
    e = await startOidcEnv();
    plainIdp = await startIdp();
    expect((await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read'] })).status).to.equal(201);
  });
  after(async () => {
    await e.stop();
    await plainIdp.stop();
  });
  afterEach(() => putIssuer({}));

  describe('maximum token lifetime (default 1 h)', () => {
    it('refuses exp - iat over an hour, accepts under', async () => {
      expect((await read(github('org/repo'), { expiresIn: 2 * 3600 })).status).to.equal(401);
      expect((await read(github('org/repo'), { expiresIn: 3000 })).status).to.equal(200);
    });

    it('without iat, measures exp - now', async () => {
      expect((await read({ ...github('org/repo'), iat: undefined, exp: now() + 2 * 3600 })).status).to.equal(401);
      expect((await read({ ...github('org/repo'), iat: undefined, exp: now() + 600 })).status).to.equal(200);
    });

    it('is configurable per issuer, and shows in the issuer', async () => {
      const r = await putIssuer({ max_token_lifetime_s: 3 * 3600 });
      expect(r.body.max_token_lifetime_s).to.equal(3 * 3600);
      expect((await read(github('org/repo'), { expiresIn: 2 * 3600 })).status).to.equal(200);
      expect((await e.admin('GET', '/v1/oidc/issuers/ci')).body.max_token_lifetime_s).to.equal(3 * 3600);
      await putIssuer({});
      expect((await e.admin('GET', '/v1/oidc/issuers/ci')).body.max_token_lifetime_s).to.equal(3600);
    });

    it('a lowered limit also refuses tokens exchanged before', async () => {
      const x = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/repo'), { expiresIn: 1800 }) });
      expect(x.status, x.text).to.equal(200);
      expect((await e.oidc(x.body.token, 'GET', '/v1/secrets/ci/org/repo/db')).status).to.equal(200);
      await putIssuer({ max_token_lifetime_s: 900 });
      expect((await e.oidc(x.body.token, 'GET', '/v1/secrets/ci/org/repo/db')).status).to.equal(401);
    });
  });

  describe('typ', () => {
    it('JWT in any case, or absent, is accepted; at+jwt and others are refused by default', async () => {
      expect((await read(github('org/repo'), { header: { typ: 'JWT' } })).status).to.equal(200);
      expect((await read(github('org/repo'), { header: { typ: 'jwt' } })).status).to.equal(200);
      expect((await read(github('org/repo'), { header: { typ: undefined } })).status).to.equal(200);
      for (const typ of ['at+jwt', 'application/at+jwt', 'secevent+jwt', 'JOSE', 7]) {
        expect((await read(github('org/repo'), { header: { typ } })).status, String(typ)).to.equal(401);
      }
      expect(e.logs()).to.match(/typ_not_allowed/);
    });

    it('an issuer may allow other types', async () => {
      await putIssuer({ allowed_types: ['at+jwt'] });
      expect((await read(github('org/repo'), { header: { typ: 'at+JWT' } })).status).to.equal(200);
      expect((await read(github('org/repo'), { header: { typ: 'secevent+jwt' } })).status).to.equal(401);
    });
  });

  describe('azp with several audiences', () => {
    it('azp must be one of the issuer audiences when aud has more than one entry', async () => {
      expect((await read(github('org/repo', 'refs/heads/main', { aud: ['nexus', 'other'], azp: 'other' }))).status).to.equal(401);
      expect((await read(github('org/repo', 'refs/heads/main', { aud: ['nexus', 'other'], azp: 'nexus' }))).status).to.equal(200);
      expect((await read(github('org/repo', 'refs/heads/main', { aud: ['nexus', 'other'] }))).status).to.equal(200);
      expect((await read(github('org/repo', 'refs/heads/main', { aud: 'nexus', azp: 'someone' }))).status).to.equal(200);
    });
  });

  describe('tenant claims', () => {
    before(async () => {
      expect((await e.admin('PUT', '/v1/oidc/issuers/plain', { issuer: plainIdp.url, audiences: ['nexus'] })).status).to.equal(201);
    });

    it('an issuer declares its tenant claims, default ["sub"]', async () => {
      expect((await e.admin('GET', '/v1/oidc/issuers/plain')).body.tenant_claims).to.deep.equal(['sub']);
    });

    it('a role that binds none of them is refused, saying why', async () => {
      for (const body of [
        { bound_claims: { ref: 'refs/heads/main' } },
        { bound_claims: { repository: 'org/repo' } },
        { bound_claims_glob: { sub: '*' } },
        { bound_claims_glob: { sub: '**' } },
      ]) {
        const r = await e.admin('PUT', '/v1/oidc/roles/loose', { issuer: 'plain', ...body, paths: ['x/**'], permissions: ['read'] });
        expect(r.status, JSON.stringify(body)).to.equal(400);
        expect(r.body.error.message).to.match(/tenant/).and.to.match(/sub/);
      }
      expect((await e.admin('GET', '/v1/oidc/roles/loose')).status).to.equal(404);
    });

    it('binding a tenant claim exactly or by a glob with a literal start is enough', async () => {
      expect((await e.admin('PUT', '/v1/oidc/roles/exact', { issuer: 'plain', bound_claims: { sub: 'repo:org/repo:ref:refs/heads/main' }, paths: ['x/**'], permissions: ['read'] })).status).to.equal(201);
      expect((await e.admin('PUT', '/v1/oidc/roles/globbed', { issuer: 'plain', bound_claims_glob: { sub: 'repo:org/*' }, paths: ['x/**'], permissions: ['read'] })).status).to.equal(201);
    });

    it('an issuer change that would leave a role without a tenant binding is refused, naming the role', async () => {
      const r = await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, audiences: ['nexus'], algorithms: ['RS256'] });
      expect(r.status).to.equal(409);
      expect(r.body.error.message).to.match(/main/);
    });

    it('the GitLab preset', async () => {
      const r = await e.admin('PUT', '/v1/oidc/issuers/gl', { issuer: 'https://gitlab.example.com', audiences: ['nexus'], tenant_claims: ['project_path', 'namespace_path', 'project_id', 'sub'], verify: false });
      expect(r.status, r.text).to.equal(201);
      expect((await e.admin('PUT', '/v1/oidc/roles/gl', { issuer: 'gl', bound_claims: { ref: 'main', project_path: 'grp/app' }, paths: ['gl/**'], permissions: ['read'] })).status).to.equal(201);
    });
  });
});
