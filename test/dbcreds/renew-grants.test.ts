import { expect } from 'chai';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg } from '../helpers/pg.js';
import { call } from '../helpers/server.js';

// A renewal is a new grant of time on a database user: it needs what issuing
// needs, read on db/creds/ROLE, under the caller's grants as they are now
// (a role narrowed since, X-Nexus-Role), not as they were at issue.
describe('database credentials: renewing a lease needs read on its db/creds path now', function () {
  this.timeout(120_000);
  let e: OidcEnv;
  let target: Target;
  let role: string;
  const deployer = () => ({ issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${role}`], permissions: ['read'] });
  const exchange = async () => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/repo', 'refs/heads/main')) });
    expect(r.status, r.text).to.equal(200);
    return r.body.token as string;
  };

  before(async function () {
    const server = await requirePg(this);
    target = await createTarget(server);
    role = `r${target.tag}`;
    e = await startOidcEnv();
    expect((await e.admin('PUT', '/v1/db/connections/main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: ['*'] })).status).to.equal(201);
    const r = await e.admin('PUT', `/v1/db/roles/${role}`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'], default_ttl_s: 60, max_ttl_s: 3000 });
    expect(r.status, r.text).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/deployer', deployer())).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/plain', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/**'], permissions: ['read'] })).status).to.equal(201);
  });
  after(async () => {
    await e?.stop();
    await target?.drop();
  });

  it('OIDC: narrowed by X-Nexus-Role to a role without db/creds, renew is a 403; with its grant, a 200', async () => {
    const token = await exchange();
    const c = await e.oidc(token, 'GET', `/v1/db/creds/${role}`);
    expect(c.status, c.text).to.equal(200);
    const narrowed = await e.oidc(token, 'PUT', '/v1/leases/renew', { lease_id: c.body.lease_id, increment: 100 }, { 'X-Nexus-Role': 'plain' });
    expect(narrowed.status, narrowed.text).to.equal(403);
    expect(narrowed.body.error.message).to.include(`read on db/creds/${role}`);
    const ok = await e.oidc(token, 'PUT', '/v1/leases/renew', { lease_id: c.body.lease_id, increment: 100 }, { 'X-Nexus-Role': 'deployer' });
    expect(ok.status, ok.text).to.equal(200);
    expect((await e.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
  });

  it('OIDC and its Vault twin: once the role no longer grants db/creds, renew is a 403 and the lease keeps its end', async () => {
    const token = await exchange();
    const c = await e.oidc(token, 'GET', `/v1/db/creds/${role}`);
    expect(c.status, c.text).to.equal(200);
    const before = (await e.admin('GET', `/v1/leases?prefix=db/creds/${role}`)).body.leases.find((l: { lease_id: string }) => l.lease_id === c.body.lease_id);
    try {
      expect((await e.admin('PUT', '/v1/oidc/roles/deployer', { ...deployer(), paths: ['ci/org/repo/**'] })).status).to.equal(200);
      const renew = await e.oidc(token, 'PUT', '/v1/leases/renew', { lease_id: c.body.lease_id, increment: 3000 });
      expect(renew.status, renew.text).to.equal(403);
      const vault = await e.oidc(undefined, 'PUT', '/v1/sys/leases/renew', { lease_id: c.body.lease_id, increment: 3000 }, { 'X-Vault-Token': token });
      expect(vault.status, vault.text).to.equal(403);
      const after = (await e.admin('GET', `/v1/leases?prefix=db/creds/${role}`)).body.leases.find((l: { lease_id: string }) => l.lease_id === c.body.lease_id);
      expect(after.expires_at).to.equal(before.expires_at);
      // Revoking one's own lease needs no grant: giving a credential back is always allowed.
      expect((await e.oidc(token, 'PUT', '/v1/leases/revoke', { lease_id: c.body.lease_id })).status).to.equal(204);
    } finally {
      await e.admin('PUT', '/v1/oidc/roles/deployer', deployer());
    }
  });

  it('mTLS: a workload whose policy lost db/creds/ROLE cannot renew; an admin still may', async () => {
    expect((await e.admin('PUT', '/v1/policies/worker', { spiffe_id: 'spiffe://nexus.local/worker', paths: [`db/creds/${role}`, 'db/creds/other'], permissions: ['read'] })).status).to.equal(201);
    const worker = await e.t.svid('spiffe://nexus.local/worker');
    const c = await call(e.t.port, worker, 'GET', `/v1/db/creds/${role}`);
    expect(c.status, c.text).to.equal(200);
    expect((await e.admin('PUT', '/v1/policies/worker', { spiffe_id: 'spiffe://nexus.local/worker', paths: ['db/creds/other'], permissions: ['read'] })).status).to.equal(200);
    const renew = await call(e.t.port, worker, 'PUT', '/v1/leases/renew', { lease_id: c.body.lease_id, increment: 100 });
    expect(renew.status, renew.text).to.equal(403);
    const admin = await e.admin('PUT', '/v1/leases/renew', { lease_id: c.body.lease_id, increment: 100 });
    expect(admin.status, admin.text).to.equal(200);
    expect((await call(e.t.port, worker, 'PUT', '/v1/leases/revoke', { lease_id: c.body.lease_id })).status).to.equal(204);
  });
});
