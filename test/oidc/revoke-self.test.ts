import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

// A job gives its exchanged token back when it ends: POST (or PUT, as the
// vault CLI sends) /v1/auth/token/revoke-self, with the token as Bearer or as
// X-Vault-Token. And an admin ends every token of an issuer (a leaked IdP key).
describe('OIDC port: revoke-self, and bulk revocation by issuer', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  const exchange = async (repo = 'org/repo') => (await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github(repo)) })).body.token as string;
  const login = async (role = 'main', repo = 'org/repo') =>
    (await e.oidc(undefined, 'POST', '/v1/auth/jwt/login', { role, jwt: await e.idp.token(github(repo)) })).body.auth.client_token as string;
  const read = (token: string) => e.oidc(token, 'GET', '/v1/secrets/ci/org/repo/db');

  before(async () => {
    e = await startOidcEnv();
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } });
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read', 'list'] });
    await e.admin('PUT', '/v1/oidc/roles/other', { issuer: 'ci', bound_claims: { repository: 'org/other' }, paths: ['ci/org/other/**'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('native: a Bearer exchanged token revokes itself (204); its next request is 401; a sibling token of the same job lives on', async () => {
    const token = await exchange();
    const sibling = await exchange();
    expect((await read(token)).status).to.equal(200);
    const r = await e.oidc(token, 'POST', '/v1/auth/token/revoke-self');
    expect(r.status, r.text).to.equal(204);
    expect(r.text).to.equal('');
    expect((await read(token)).status).to.equal(401);
    expect((await e.oidc(token, 'GET', '/v1/whoami')).status).to.equal(401);
    // Twice: the token is gone, so this is an unknown token.
    expect((await e.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(401);
    expect((await read(sibling)).status).to.equal(200);
  });

  for (const method of ['PUT', 'POST']) {
    it(`Vault-compatible: ${method} with X-Vault-Token revokes the login's token; lookup-self then answers 401 in Vault's shape`, async () => {
      const token = await login();
      const headers = { 'X-Vault-Token': token };
      expect((await e.oidc(undefined, 'GET', '/v1/auth/token/lookup-self', undefined, headers)).status).to.equal(200);
      const r = await e.oidc(undefined, method, '/v1/auth/token/revoke-self', undefined, headers);
      expect(r.status, r.text).to.equal(204);
      const after = await e.oidc(undefined, 'GET', '/v1/auth/token/lookup-self', undefined, headers);
      expect(after.status).to.equal(401);
      expect(after.body).to.have.property('errors');
      expect((await e.oidc(undefined, 'GET', '/v1/secret/data/ci/org/repo/db', undefined, headers)).status).to.equal(401);
    });
  }

  it('an empty JSON body ({} or nothing, as node-vault\'s tokenRevokeSelf sends) is accepted and ignored; any other body is refused unread or unused, the token kept', async () => {
    for (const body of ['{}', ' { } ', '']) {
      const token = await exchange();
      const r = await e.oidc(token, 'POST', '/v1/auth/token/revoke-self', body === '' ? Buffer.alloc(0) : body);
      expect(r.status, `${JSON.stringify(body)}: ${r.text}`).to.equal(204);
      expect((await read(token)).status).to.equal(401);
    }
    const token = await exchange();
    for (const body of ['{"token":"x"}', '[]', 'null', '{}{}', '{', 'x'.repeat(100), JSON.stringify({ pad: 'x'.repeat(64 * 1024) })]) {
      const r = await e.oidc(token, 'POST', '/v1/auth/token/revoke-self', body);
      expect(r.status, `${body.slice(0, 20)}: ${r.text}`).to.equal(413);
      expect(r.text).to.match(/this route takes no request body/);
      expect((await read(token)).status, 'the token lives on').to.equal(200);
    }
    // Other bodiless routes keep refusing even {}.
    expect((await e.oidc(token, 'GET', '/v1/whoami', '{}')).status).to.equal(413);
  });

  it('a JWT cannot be revoked (400, it ends at its exp); no credential is 401; the revocation is audited', async () => {
    const jwt = await e.idp.token(github('org/repo'));
    const r = await e.oidc(jwt, 'POST', '/v1/auth/token/revoke-self');
    expect(r.status).to.equal(400);
    expect(JSON.stringify(r.body)).to.match(/only an exchanged token can be revoked/);
    expect((await e.oidc(undefined, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(401);
    expect((await e.oidc('nxo_' + 'A'.repeat(43), 'POST', '/v1/auth/token/revoke-self')).status).to.equal(401);
    const token = await exchange();
    expect((await e.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
    expect(e.logs()).to.not.include(token);
    const trail = fs.readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8');
    expect(trail).to.include('"token.revoke-self"');
    expect(trail).to.not.include(token);
  });

  it('admin: POST /v1/oidc/issuers/{name}:revoke-tokens ends every token of the issuer, or of one role with {"role"}', async () => {
    const a = await exchange();
    const b = await exchange('org/other');
    const c = await exchange();
    const one = await e.admin('POST', '/v1/oidc/issuers/ci:revoke-tokens', { role: 'other' });
    expect(one.status, one.text).to.equal(200);
    expect(one.body).to.deep.equal({ issuer: 'ci', role: 'other', revoked: 1 });
    expect((await e.oidc(b, 'GET', '/v1/whoami')).status).to.equal(401);
    expect((await read(a)).status).to.equal(200);
    const all = await e.admin('POST', '/v1/oidc/issuers/ci:revoke-tokens');
    expect(all.status, all.text).to.equal(200);
    expect(all.body.issuer).to.equal('ci');
    expect(all.body.revoked).to.be.at.least(2);
    expect((await read(a)).status).to.equal(401);
    expect((await read(c)).status).to.equal(401);
    expect((await e.admin('POST', '/v1/oidc/issuers/nope:revoke-tokens')).status).to.equal(404);
    const nobody = await e.t.svid('spiffe://nexus.local/nobody');
    const { call } = await import('../helpers/server.js');
    expect((await call(e.t.port, nobody, 'POST', '/v1/oidc/issuers/ci:revoke-tokens')).status).to.equal(403);
  });
});
