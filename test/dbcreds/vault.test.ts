import { expect } from 'chai';
import nodeVault from 'node-vault';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg } from '../helpers/pg.js';

// hashicorp/vault-action's `database/creds/ROLE username | DB_USER` and the
// lease calls, through node-vault, unmodified: Vault's shapes over the same service.
describe('Vault-compatible database credentials and leases (node-vault, unmodified)', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let target: Target;
  let role: string;

  before(async function () {
    target = await createTarget(await requirePg(this));
    role = `w${target.tag}`;
    e = await startOidcEnv();
    expect((await e.admin('PUT', '/v1/db/connections/main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: [role] })).status).to.equal(201);
    expect((await e.admin('PUT', `/v1/db/roles/${role}`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'] })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/deploy', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${role}`], permissions: ['read'] })).status).to.equal(201);
  });
  after(async () => {
    await e?.stop();
    await target?.drop();
  });

  it('login, database/creds read, lease renew and revoke; revoke-self ends the rest', async () => {
    const vault = nodeVault({ endpoint: `https://127.0.0.1:${e.port}`, requestOptions: { ca: e.t.caPem } });
    await vault.jwtLogin({ role: 'deploy', jwt: await e.idp.token(github('org/repo')) });
    const c = await vault.read(`database/creds/${role}`);
    // Vault's shape for a dynamic secret: what vault-action's `database/creds/ROLE username | VAR` picks from.
    expect(c).to.include.all.keys('lease_id', 'lease_duration', 'renewable', 'data');
    expect(c.data).to.have.all.keys('username', 'password');
    expect(c.data.username).to.match(new RegExp(`^v_${role}_org_repo_`));
    expect(c.data.password).to.be.a('string').with.length.greaterThan(20);
    // The role's default 900 s, which is also the token's own end: not renewable past it.
    expect(c.lease_duration).to.be.within(890, 900);
    expect(c.renewable).to.equal(false);
    expect(c.lease_id).to.match(new RegExp(`^db/creds/${role}/`));
    const login = await target.login(c.data.username, c.data.password);
    await login.end();
    const renewed = await vault.write('sys/leases/renew', { lease_id: c.lease_id, increment: 60 });
    expect(renewed).to.include({ lease_id: c.lease_id, lease_duration: 60 });
    await vault.write('sys/leases/revoke', { lease_id: c.lease_id });
    expect(await target.users(c.data.username)).to.deep.equal([]);
    const other = await vault.read(`database/creds/${role}`);
    expect(await target.users(other.data.username)).to.deep.equal([other.data.username]);
    // node-vault's own revoke-self (a POST with a `{}` body, which the route accepts and ignores).
    await vault.tokenRevokeSelf();
    expect(await target.users(other.data.username)).to.deep.equal([]);
    // Refusals in Vault's error shape.
    let refused: { response?: { statusCode: number; body: { errors: string[] } } } = {};
    await vault.read(`database/creds/${role}`).catch((err: typeof refused) => (refused = err));
    expect(refused.response?.statusCode).to.equal(401);
    expect(refused.response?.body).to.have.property('errors');
  });
});
