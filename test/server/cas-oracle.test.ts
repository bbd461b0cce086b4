import { expect } from 'chai';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call, type ClientCreds, type Res } from '../helpers/server.js';

// A caller who may write a path but not read it must learn nothing about the
// path from a write: not its current version, not even whether it exists.
describe('writes tell a write-only caller nothing about the path', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  let writer: ClientCreds;
  let readerWriter: ClientCreds;
  let fresh = 0;

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

  /** An existing path with 3 versions (one of them deleted) and a path never written. */
  async function pair(): Promise<[string, string]> {
    const n = ++fresh;
    for (let i = 0; i < 3; i++) expect((await e.admin('PUT', `/v1/secrets/app/old${n}`, { data: { v: String(i) } })).status).to.be.oneOf([200, 201]);
    expect((await e.admin('DELETE', `/v1/secrets/app/old${n}`)).status).to.be.oneOf([200, 204]);
    return [`app/old${n}`, `app/new${n}`];
  }

  /** Status and body, with the path and the request id taken out. */
  const seen = (r: Res, path: string) => {
    const body = JSON.parse(r.text.split(path).join('PATH')) as { error?: { request_id?: string } };
    delete body.error?.request_id;
    return { status: r.status, body };
  };

  type Send = (method: string, path: string, body: unknown) => Promise<Res>;
  async function sameEitherWay(send: Send): Promise<void> {
    const bodies: Array<[string, Record<string, unknown>]> = [];
    for (const cas of [undefined, 0, 1, 3, 4, 99]) {
      bodies.push(['PATCH', { data: { k: 'v' }, ...(cas === undefined ? {} : { cas }) }]);
      bodies.push(['PUT', { data: { k: 'v' }, ...(cas === undefined ? {} : { cas }) }]);
    }
    for (const [method, body] of bodies) {
      const [old, none] = await pair();
      const a = seen(await send(method, `/v1/secrets/${old}`, body), old);
      const b = seen(await send(method, `/v1/secrets/${none}`, body), none);
      expect(a, `${method} ${JSON.stringify(body)}`).to.deep.equal(b);
    }
  }

  it('mTLS port: PATCH and PUT, with any cas or none, answer alike whether or not the path exists', async () => {
    await sameEitherWay((method, path, body) => call(e.t.port, writer, method, path, body));
  });

  it('OIDC port: the same for a role that grants write without read', async () => {
    const token = await e.idp.token(github('org/w'));
    await sameEitherWay((method, path, body) => e.oidc(token, method, path, body));
  });

  it('a write-only caller may overwrite blind; a reader-writer keeps cas, PATCH and the version', async () => {
    const [old] = await pair();
    const blind = await call(e.t.port, writer, 'PUT', `/v1/secrets/${old}`, { data: { v: 'w' } });
    expect(blind.status, blind.text).to.equal(200);
    expect(blind.body).to.deep.equal({ path: old });
    expect((await e.admin('GET', `/v1/secrets/${old}`)).body.data).to.deep.equal({ v: 'w' });
    const cas = await call(e.t.port, writer, 'PUT', `/v1/secrets/${old}`, { data: { v: 'w' }, cas: 4 });
    expect(cas.status, cas.text).to.equal(403);
    expect(cas.body.error.message).to.match(/cas/);
    const patch = await call(e.t.port, writer, 'PATCH', `/v1/secrets/${old}`, { data: { v: 'w' } });
    expect(patch.status, patch.text).to.equal(403);
    const rw = await call(e.t.port, readerWriter, 'PATCH', `/v1/secrets/${old}`, { data: { k: 'rw' }, cas: 4 });
    expect(rw.status, rw.text).to.equal(200);
    expect(rw.body).to.deep.equal({ path: old, version: 5 });
  });

  it('mTLS port: a cas conflict names the version to a reader-writer', async () => {
    const rw = await call(e.t.port, readerWriter, 'PUT', '/v1/secrets/app/x', { data: { v: 'rw' }, cas: 1 });
    expect(rw.status).to.equal(409);
    expect(mentionsVersion(rw.body.error.message), rw.body.error.message).to.equal(true);
  });

  it('OIDC port: a cas conflict names the version to a reader-writer', async () => {
    const rw = await e.oidc(await e.idp.token(github('org/rw')), 'PUT', '/v1/secrets/app/x', { data: { v: 'rw' }, cas: 1 });
    expect(rw.status).to.equal(409);
    expect(mentionsVersion(rw.body.error.message), rw.body.error.message).to.equal(true);
  });
});
