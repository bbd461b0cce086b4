import { expect } from 'chai';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call, type ClientCreds } from '../helpers/server.js';

// A caller who may write a path but not read it must not learn its current
// version from a check-and-set conflict.
describe('CAS conflicts name the current version only to readers', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  let writer: ClientCreds;
  let readerWriter: ClientCreds;

  before(async () => {
    e = await startOidcEnv();
    for (let i = 0; i < 3; i++) expect((await e.admin('PUT', '/v1/secrets/app/x', { data: { v: String(i) } })).status).to.be.oneOf([200, 201]);
    expect((await e.admin('PUT', '/v1/policies/w', { spiffe_id: 'spiffe://nexus.local/writer', paths: ['app/**'], permissions: ['write'] })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/policies/rw', { spiffe_id: 'spiffe://nexus.local/rw', paths: ['app/**'], permissions: ['read', 'write'] })).status).to.equal(201);
    writer = await e.t.svid('spiffe://nexus.local/writer');
    readerWriter = await e.t.svid('spiffe://nexus.local/rw');
    const roleBase = { issuer: 'ci', paths: ['app/**'] };
    expect((await e.admin('PUT', '/v1/oidc/roles/w', { ...roleBase, bound_claims: { repository: 'org/w' }, permissions: ['write'] })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/rw', { ...roleBase, bound_claims: { repository: 'org/rw' }, permissions: ['read', 'write'] })).status).to.equal(201);
  });
  after(() => e.stop());

  const mentionsVersion = (message: string) => /\b3\b|version 3/.test(message);

  it('mTLS port', async () => {
    const w = await call(e.t.port, writer, 'PUT', '/v1/secrets/app/x', { data: { v: 'w' }, cas: 1 });
    expect(w.status, w.text).to.equal(409);
    expect(mentionsVersion(w.body.error.message), w.body.error.message).to.equal(false);
    const rw = await call(e.t.port, readerWriter, 'PUT', '/v1/secrets/app/x', { data: { v: 'rw' }, cas: 1 });
    expect(rw.status).to.equal(409);
    expect(mentionsVersion(rw.body.error.message), rw.body.error.message).to.equal(true);
  });

  it('OIDC port', async () => {
    const w = await e.oidc(await e.idp.token(github('org/w')), 'PUT', '/v1/secrets/app/x', { data: { v: 'w' }, cas: 1 });
    expect(w.status, w.text).to.equal(409);
    expect(mentionsVersion(w.body.error.message), w.body.error.message).to.equal(false);
    const rw = await e.oidc(await e.idp.token(github('org/rw')), 'PUT', '/v1/secrets/app/x', { data: { v: 'rw' }, cas: 1 });
    expect(rw.status).to.equal(409);
    expect(mentionsVersion(rw.body.error.message), rw.body.error.message).to.equal(true);
  });
});
