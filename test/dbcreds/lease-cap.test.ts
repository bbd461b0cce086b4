import { expect } from 'chai';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg } from '../helpers/pg.js';
import { call } from '../helpers/server.js';

// Each lease is a real user on someone's database: one token (or one SPIFFE
// ID) holds at most NEXUS_DB_MAX_LEASES_PER_CALLER of them at a time.
describe('database credentials: a cap on the leases one caller holds', function () {
  this.timeout(120_000);
  let e: OidcEnv;
  let target: Target;
  let role: string;
  const exchange = async () => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/repo', 'refs/heads/main')) });
    expect(r.status, r.text).to.equal(200);
    return r.body.token as string;
  };

  before(async function () {
    const server = await requirePg(this);
    target = await createTarget(server);
    role = `c${target.tag}`;
    e = await startOidcEnv({ NEXUS_DB_MAX_LEASES_PER_CALLER: '3' });
    expect((await e.admin('PUT', '/v1/db/connections/main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: ['*'] })).status).to.equal(201);
    expect((await e.admin('PUT', `/v1/db/roles/${role}`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'], default_ttl_s: 600, max_ttl_s: 600 })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/dep', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${role}`], permissions: ['read'] })).status).to.equal(201);
  });
  after(async () => {
    await e?.stop();
    await target?.drop();
  });

  it('an exchanged token gets 3 leases, then a 429 saying why; another token is counted apart; giving one back makes room', async () => {
    const token = await exchange();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await e.oidc(token, 'GET', `/v1/db/creds/${role}`);
      expect(r.status, r.text).to.equal(200);
      ids.push(r.body.lease_id);
    }
    const refused = await e.oidc(token, 'GET', `/v1/db/creds/${role}`);
    expect(refused.status, refused.text).to.equal(429);
    expect(refused.body.error.message).to.match(/3 active leases/).and.match(/revoke/);
    expect(await target.users(`v_${role}_`)).to.have.length(3);
    const other = await exchange();
    expect((await e.oidc(other, 'GET', `/v1/db/creds/${role}`)).status).to.equal(200);
    expect((await e.oidc(token, 'PUT', '/v1/leases/revoke', { lease_id: ids[0] })).status).to.equal(204);
    expect((await e.oidc(token, 'GET', `/v1/db/creds/${role}`)).status).to.equal(200);
    expect((await e.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
    expect((await e.oidc(other, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
    expect(await target.users(`v_${role}_`)).to.deep.equal([]);
  });

  it('a burst of concurrent requests from one token never leaves more than the cap of users', async () => {
    const token = await exchange();
    const rs = await Promise.all(Array.from({ length: 12 }, () => e.oidc(token, 'GET', `/v1/db/creds/${role}`)));
    const ok = rs.filter((r) => r.status === 200).length;
    expect(rs.every((r) => r.status === 200 || r.status === 429), rs.map((r) => r.status).join()).to.equal(true);
    expect(ok).to.be.within(1, 3);
    expect(await target.users(`v_${role}_`)).to.have.length(ok);
    expect((await e.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
  });

  it('an mTLS SPIFFE ID is capped the same way', async () => {
    expect((await e.admin('PUT', '/v1/policies/worker', { spiffe_id: 'spiffe://nexus.local/worker', paths: [`db/creds/${role}`], permissions: ['read'] })).status).to.equal(201);
    const worker = await e.t.svid('spiffe://nexus.local/worker');
    for (let i = 0; i < 3; i++) expect((await call(e.t.port, worker, 'GET', `/v1/db/creds/${role}`)).status).to.equal(200);
    const refused = await call(e.t.port, worker, 'GET', `/v1/db/creds/${role}`);
    expect(refused.status, refused.text).to.equal(429);
    expect(refused.body.error.message).to.match(/spiffe:\/\/nexus.local\/worker/);
    const all = await e.admin('PUT', '/v1/leases/revoke-prefix', { prefix: `db/creds/${role}` });
    expect(all.body).to.deep.equal({ revoked: 3, failed: 0 });
  });
});
