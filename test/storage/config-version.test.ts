import { expect } from 'chai';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { within } from '../helpers/replicas.js';
import { startTestServer, call, type TestServer } from '../helpers/server.js';

describe('configuration version: every change bumps it, and a committed change is answered as committed', function () {
  this.timeout(60_000);
  let s: TestServer;
  const admin = (method: string, p: string, body?: unknown) => call(s.port, s.admin, method, p, body);
  const versions = async () => Object.fromEntries(await s.server.core.storage.configVersions.all());

  beforeEach(async () => {
    s = await startTestServer({ NEXUS_OIDC_ADDR: '127.0.0.1:0' }, { plugins: [new OidcPlugin()] });
  });
  afterEach(async () => {
    await s?.stop();
  });

  it('policies, issuers, roles and token revocations each bump their topic', async () => {
    const v0 = await versions();
    expect((await admin('PUT', '/v1/policies/app', { spiffe_id: 'spiffe://nexus.local/app', paths: ['app/**'], permissions: ['read'] })).status).to.equal(201);
    const v1 = await versions();
    expect(v1.policies).to.equal(v0.policies! + 1);
    expect((await admin('PUT', '/v1/oidc/issuers/ci', { issuer: 'http://127.0.0.1:9/', audiences: ['nexus'], algorithms: ['RS256'], verify: false })).status).to.equal(201);
    const v2 = await versions();
    expect(v2.oidc).to.equal(v1.oidc! + 1);
    expect(v2.policies).to.equal(v1.policies);
    expect((await admin('PUT', '/v1/oidc/roles/deploy', { issuer: 'ci', bound_claims: { sub: 'x' }, paths: ['ci/**'], permissions: ['read'] })).status).to.equal(201);
    expect((await admin('POST', '/v1/oidc/roles/deploy:revoke-tokens')).status).to.equal(200);
    const v3 = await versions();
    expect(v3.oidc).to.equal(v2.oidc! + 1);
    expect(v3.tokens).to.equal(v2.tokens! + 1);
    expect((await admin('DELETE', '/v1/oidc/roles/deploy')).status).to.equal(204);
    expect((await admin('DELETE', '/v1/policies/app')).status).to.be.oneOf([200, 204]);
    const v4 = await versions();
    expect([v4.oidc, v4.tokens, v4.policies]).to.deep.equal([v3.oidc! + 1, v3.tokens! + 1, v3.policies! + 1]);
  });

  it('a refused change bumps nothing', async () => {
    const v0 = await versions();
    expect((await admin('PUT', '/v1/oidc/roles/deploy', { issuer: 'nope', bound_claims: { sub: 'x' }, paths: ['ci/**'], permissions: ['read'] })).status).to.equal(400);
    expect((await admin('DELETE', '/v1/policies/none')).status).to.equal(404);
    expect(await versions()).to.deep.equal(v0);
  });

  it('a policy change whose reload fails after the commit answers 201, and the poll brings the engine in step', async () => {
    const app = await s.svid('spiffe://nexus.local/app');
    expect((await admin('PUT', '/v1/secrets/app/db', { data: { pw: 'x' } })).status).to.equal(201);
    // A row the engine cannot load: every reload fails until it is repaired.
    s.server.core.db
      .prepare("INSERT INTO policies (name, spiffe_id, paths, permissions, created_at, updated_at) VALUES ('broken', 'spiffe://nexus.local/x', 'not json', '[]', 't', 't')")
      .run();
    const put = await admin('PUT', '/v1/policies/app', { spiffe_id: 'spiffe://nexus.local/app', paths: ['app/**'], permissions: ['read'] });
    expect(put.status, put.text).to.equal(201);
    expect((await call(s.port, app, 'GET', '/v1/secrets/app/db')).status).to.equal(403);
    s.server.core.db.prepare("UPDATE policies SET paths = '[]' WHERE name = 'broken'").run();
    await within(1000, async () => (await call(s.port, app, 'GET', '/v1/secrets/app/db')).status === 200, 'the poll reloads the policies');
  });

  it('a role change whose reload fails after the commit answers 201', async () => {
    expect((await admin('PUT', '/v1/oidc/issuers/ci', { issuer: 'http://127.0.0.1:9/', audiences: ['nexus'], algorithms: ['RS256'], verify: false })).status).to.equal(201);
    s.server.core.db
      .prepare(
        `INSERT INTO oidc_issuers (name, issuer, audiences, algorithms, created_at, updated_at) VALUES ('broken', 'http://127.0.0.1:8/', 'not json', '["RS256"]', 't', 't')`,
      )
      .run();
    const put = await admin('PUT', '/v1/oidc/roles/deploy', { issuer: 'ci', bound_claims: { sub: 'x' }, paths: ['ci/**'], permissions: ['read'] });
    expect(put.status, put.text).to.equal(201);
    expect(put.body.name).to.equal('deploy');
  });
});
