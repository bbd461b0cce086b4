import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import nodeVault from 'node-vault';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

/** node-vault pointed at the OIDC port, trusting the dev CA: an unmodified third-party Vault client. */
function vaultClient(env: OidcEnv, token?: string) {
  return nodeVault({ endpoint: `https://127.0.0.1:${env.port}`, requestOptions: { ca: env.t.caPem }, ...(token ? { token } : {}) });
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; body: any; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { response?: { statusCode: number; body: any } };
    if (!e.response) throw err;
    return { status: e.response.statusCode, body: e.response.body, message: e.message };
  }
  throw new Error('expected the Vault client to fail');
}

function auditLines(env: OidcEnv): Array<Record<string, any>> {
  return fs
    .readFileSync(path.join(env.t.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, any>);
}

describe('Vault-compatible CI subset on the OIDC port (node-vault, unmodified)', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let jwt: string;
  let n = 0;
  // A subject of its own per job; every job spends the one budget of its tenant (the repository), which is ample here.
  const job = () => env.idp.token(github('acme/api', 'refs/heads/main', { sub: `repo:acme/api:job-${++n}` }));

  before(async () => {
    env = await startOidcEnv({ NEXUS_OIDC_SUBJECT_RPS: '50' });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'vault-pw-1', user: 'svc' } });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'vault-pw-2', user: 'svc' } });
    await env.admin('PUT', '/v1/secrets/ci/acme/other/db', { data: { password: 'other-pw' } });
    let r = await env.admin('PUT', '/v1/oidc/roles/api-main', { issuer: 'ci', bound_claims: { repository: 'acme/api', ref: 'refs/heads/main' }, paths: ['ci/{{claims.repository}}/*'], permissions: ['read'], token_ttl_s: 600 });
    expect(r.status, r.text).to.equal(201);
    r = await env.admin('PUT', '/v1/oidc/roles/api-list', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['ci/acme/**'], permissions: ['list'] });
    expect(r.status, r.text).to.equal(201);
    jwt = await job();
  });
  after(() => env?.stop());

  it('jwt login returns a Vault auth block with a token usable as X-Vault-Token; kv v2 reads return data and metadata', async () => {
    const vault = vaultClient(env);
    const login = await vault.jwtLogin({ role: 'api-main', jwt });
    expect(login.auth).to.include({ renewable: false, lease_duration: 600 });
    expect(login.auth.client_token).to.match(/^nxo_/);
    expect(login.auth.accessor).to.be.a('string').and.not.equal(login.auth.client_token);
    expect(login.auth.policies).to.deep.equal(['api-main']);
    // node-vault keeps the token from the login for later calls.
    expect(vault.token).to.equal(login.auth.client_token);

    const s = await vault.read('secret/data/ci/acme/api/db');
    expect(s.data.data).to.deep.equal({ password: 'vault-pw-2', user: 'svc' });
    expect(s.data.metadata).to.include({ version: 2, deletion_time: '', destroyed: false });
    expect(Date.parse(s.data.metadata.created_time)).to.be.greaterThan(0);
    const v1 = await vault.read('secret/data/ci/acme/api/db?version=1');
    expect(v1.data.data.password).to.equal('vault-pw-1');

    const self = await vault.tokenLookupSelf();
    expect(self.data.policies).to.deep.equal(['api-main']);
    expect(self.data.ttl).to.be.within(1, 600);
    expect(self.data.renewable).to.equal(false);
    expect(self.data.accessor).to.equal(login.auth.accessor);
    expect(JSON.stringify(self)).to.not.include(login.auth.client_token);
  });

  it('the login is restricted to its role: grants of other matching roles are not carried', async () => {
    const vault = vaultClient(env);
    await vault.jwtLogin({ role: 'api-list', jwt: await job() });
    const denied = await refusal(vault.read('secret/data/ci/acme/api/db'));
    expect(denied.status).to.equal(403);
    expect(denied.body).to.have.all.keys('errors');
    expect(denied.message).to.match(/permission denied/);
  });

  it('errors are Vault-shaped {"errors":[...]} and say why: not found, denied, token refused, unknown role', async () => {
    const vault = vaultClient(env);
    await vault.jwtLogin({ role: 'api-main', jwt: await job() });
    const missing = await refusal(vault.read('secret/data/ci/acme/api/absent'));
    expect(missing.status).to.equal(404);
    expect(missing.body.errors).to.be.an('array');
    const other = await refusal(vault.read('secret/data/ci/acme/other/db'));
    expect(other.status).to.equal(403);
    expect(JSON.stringify(other.body)).to.not.include('other-pw');

    const bogus = await refusal(vaultClient(env, 'nxo_' + 'A'.repeat(43)).read('secret/data/ci/acme/api/db'));
    expect(bogus.status).to.equal(401);
    expect(bogus.body).to.deep.equal({ errors: ['the token was not accepted'] });
    const noToken = await refusal(vaultClient(env).read('secret/data/ci/acme/api/db'));
    expect(noToken.status).to.equal(401);

    const badJwt = await refusal(vaultClient(env).jwtLogin({ role: 'api-main', jwt: jwt.slice(0, -4) + 'AAAA' }));
    expect(badJwt.status).to.equal(401);
    expect(badJwt.body).to.deep.equal({ errors: ['the token was not accepted'] });
    const wrongRole = await refusal(vaultClient(env).jwtLogin({ role: 'no-such-role', jwt: await job() }));
    expect(wrongRole.status).to.equal(403);
    expect(wrongRole.body.errors[0]).to.match(/no-such-role/);
    const noRole = await refusal(vaultClient(env).write('auth/jwt/login', { jwt }));
    expect(noRole.status).to.equal(400);
    expect(noRole.body.errors[0]).to.match(/role/);

    // The native routes keep the native shape.
    const native = await env.oidc('nxo_' + 'A'.repeat(43), 'GET', '/v1/secrets/ci/acme/api/db');
    expect(native.body.error.message).to.equal('the token was not accepted');
  });

  it('sys/health answers unauthenticated, as Vault does', async () => {
    const h = await vaultClient(env).health();
    expect(h).to.include({ initialized: true, sealed: false, standby: false });
  });

  it('same audit trail as the native routes: logins and reads are recorded, with no token or value', async () => {
    const vault = vaultClient(env);
    const login = await vault.jwtLogin({ role: 'api-main', jwt: await job() });
    await vault.read('secret/data/ci/acme/api/db');
    const lines = auditLines(env);
    const read = lines.filter((l) => l.port === 'oidc' && l.action === 'read' && l.path === 'ci/acme/api/db' && l.status === 200);
    expect(read.length).to.be.greaterThan(0);
    expect(lines.some((l) => l.action === 'token.exchange' && l.status === 200)).to.equal(true);
    const text = fs.readFileSync(path.join(env.t.dir, 'audit.jsonl'), 'utf8');
    for (const s of [login.auth.client_token, jwt, 'vault-pw-2']) expect(text).to.not.include(s);
  });

  it('same per-tenant rate limit as the native routes: 429, Vault-shaped', async () => {
    const vault = vaultClient(env);
    await vault.jwtLogin({ role: 'api-main', jwt: await job() });
    let limited: { status: number; body: any } | null = null;
    // Burst 5 x 50/s, plus what refills while the reads go out.
    for (let i = 0; i < 2000 && !limited; i++) {
      try {
        await vault.read('secret/data/ci/acme/api/db');
      } catch (err) {
        limited = { status: (err as any).response.statusCode, body: (err as any).response.body };
      }
    }
    expect(limited?.status).to.equal(429);
    expect(limited?.body.errors[0]).to.match(/too many/);
  });

  it('NEXUS_OIDC_VAULT_COMPAT=off removes the routes (404 in the native shape); the OpenAPI document follows', async () => {
    const on = await env.oidc(undefined, 'GET', '/openapi.json');
    expect(Object.keys(on.body.paths)).to.include.members(['/v1/auth/jwt/login', '/v1/secret/data/{path}', '/v1/auth/token/lookup-self', '/v1/sys/health']);
    const off = await startOidcEnv({ NEXUS_OIDC_VAULT_COMPAT: 'off' });
    try {
      for (const [m, p] of [['POST', '/v1/auth/jwt/login'], ['GET', '/v1/secret/data/ci/acme/api/db'], ['GET', '/v1/auth/token/lookup-self'], ['GET', '/v1/sys/health']] as const) {
        const r = await off.oidc(undefined, m, p);
        expect(r.status, `${m} ${p}`).to.equal(404);
        expect(r.body.error.code).to.equal('not_found');
      }
      const doc = await off.oidc(undefined, 'GET', '/openapi.json');
      expect(Object.keys(doc.body.paths).filter((p) => p.startsWith('/v1/secret/') || p.startsWith('/v1/sys') || p.startsWith('/v1/auth/jwt'))).to.deep.equal([]);
    } finally {
      await off.stop();
    }
  });
});
