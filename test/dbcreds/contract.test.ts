import { expect } from 'chai';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg } from '../helpers/pg.js';

// Two promises of the contract the configuration must not let an admin break
// by accident: every user has VALID UNTIL (so a Nexus that is down cannot
// extend it), and a lease is revoked on the database it was minted on.
describe('database credentials: configuration that would break a lease is refused', function () {
  this.timeout(120_000);
  let e: OidcEnv;
  let target: Target;
  let role: string;
  const conn = (over: Record<string, unknown> = {}) => ({ url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: ['*'], ...over });

  before(async function () {
    const server = await requirePg(this);
    target = await createTarget(server);
    role = `k${target.tag}`;
    e = await startOidcEnv();
    expect((await e.admin('PUT', '/v1/db/connections/main', conn())).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/dep', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${role}`], permissions: ['read'] })).status).to.equal(201);
  });
  after(async () => {
    await e?.stop();
    await target?.drop();
  });

  it('a role whose creation statements never use {{expiration}} is a 400 naming creation_statements', async () => {
    const r = await e.admin('PUT', `/v1/db/roles/${role}`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}}', 'GRANT SELECT ON t TO {{name}}'] });
    expect(r.status, r.text).to.equal(400);
    expect(r.body.error.message).to.match(/creation_statements/).and.match(/\{\{expiration\}\}/).and.match(/VALID UNTIL/);
    expect((await e.admin('GET', `/v1/db/roles/${role}`)).status).to.equal(404);
    // In any statement: ALTER ROLE after CREATE ROLE does as well.
    const ok = await e.admin('PUT', `/v1/db/roles/${role}`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}}', 'ALTER ROLE {{name}} VALID UNTIL {{expiration}}'] });
    expect(ok.status, ok.text).to.equal(201);
  });

  it('while a lease stands, a connection PUT that changes url or username is a 409; other changes go through; after the lease, so does the url', async () => {
    const token = (await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/repo', 'refs/heads/main')) })).body.token as string;
    const c = await e.oidc(token, 'GET', `/v1/db/creds/${role}`);
    expect(c.status, c.text).to.equal(200);
    const moved = await e.admin('PUT', '/v1/db/connections/main', conn({ url: `${target.url}?sslmode=disable` }));
    expect(moved.status, moved.text).to.equal(409);
    expect(moved.body.error.message).to.match(/1 lease/).and.match(/url or username/);
    const renamed = await e.admin('PUT', '/v1/db/connections/main', conn({ username: `other_${target.tag}` }));
    expect(renamed.status, renamed.text).to.equal(409);
    expect((await e.admin('GET', '/v1/db/connections/main')).body.url).to.equal(target.url);
    // The same database and admin, a new allowed_roles (and password) stays possible.
    expect((await e.admin('PUT', '/v1/db/connections/main', conn({ allowed_roles: [role] }))).status).to.equal(200);
    expect((await e.oidc(token, 'PUT', '/v1/leases/revoke', { lease_id: c.body.lease_id })).status).to.equal(204);
    expect(await target.users(c.body.username)).to.deep.equal([]);
    expect((await e.admin('PUT', '/v1/db/connections/main', conn({ url: `${target.url}?sslmode=disable` }))).status).to.equal(200);
  });
});
