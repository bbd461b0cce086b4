import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call, type ClientCreds, type Res } from '../helpers/server.js';

interface Rec {
  request_id?: string;
  port: string;
  action: string;
  path?: string;
  version?: number;
  versions?: number[];
  phase?: string;
  decision: string;
  status: number;
}

describe('secret operations: patch, rollback, purge, several versions (both ports)', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let writer: ClientCreds;
  let readWriter: ClientCreds;
  /** The request's outcome record; a change that was allowed also has its intent recorded before it. */
  const record = (r: Res): Rec => {
    const id = r.headers['x-request-id'];
    const recs = fs.readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec).filter((x) => x.request_id === id);
    const outcome = recs.filter((x) => x.phase !== 'intent');
    expect(outcome, `one outcome record for ${id}`).to.have.length(1);
    if (r.status < 300) {
      const intent = recs.filter((x) => x.phase === 'intent');
      expect(intent, `an intent record before the change ${id}`).to.have.length(1);
      expect(recs.indexOf(intent[0]!)).to.be.lessThan(recs.indexOf(outcome[0]!));
      expect(intent[0]).to.deep.include({ action: outcome[0]!.action, path: outcome[0]!.path });
    }
    return outcome[0]!;
  };
  const as = (creds: ClientCreds, method: string, p: string, body?: unknown) => call(e.t.port, creds, method, p, body);

  before(async () => {
    e = await startOidcEnv();
    const policy = async (name: string, spiffeId: string, permissions: string[]) =>
      expect((await e.admin('PUT', `/v1/policies/${name}`, { spiffe_id: spiffeId, paths: ['ops/**'], permissions })).status).to.equal(201);
    await policy('writer', 'spiffe://nexus.local/writer', ['write']);
    await policy('rw', 'spiffe://nexus.local/rw', ['read', 'write']);
    writer = await e.t.svid('spiffe://nexus.local/writer');
    readWriter = await e.t.svid('spiffe://nexus.local/rw');
    await e.admin('PUT', '/v1/oidc/roles/ci-rw', { issuer: 'ci', bound_claims: { repository: 'org/rw' }, paths: ['ops/ci/*'], permissions: ['read', 'write'] });
    await e.admin('PUT', '/v1/oidc/roles/ci-w', { issuer: 'ci', bound_claims: { repository: 'org/w' }, paths: ['ops/ci/*'], permissions: ['write'] });
    await e.admin('PUT', '/v1/oidc/roles/ci-r', { issuer: 'ci', bound_claims: { repository: 'org/r' }, paths: ['ops/ci/*'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('PATCH merges (null removes) as a new version with cas; needs write and read; audited as patch', async () => {
    await e.admin('PUT', '/v1/secrets/ops/p', { data: { user: 'u', pass: 'p', old: 'o' } });
    const writeOnly = await as(writer, 'PATCH', '/v1/secrets/ops/p', { data: { pass: 'p2' } });
    expect(writeOnly.status).to.equal(403);
    expect(record(writeOnly)).to.deep.include({ action: 'patch', path: 'ops/p', decision: 'deny' });
    const r = await as(readWriter, 'PATCH', '/v1/secrets/ops/p', { data: { pass: 'p2', old: null }, cas: 1 });
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.deep.equal({ path: 'ops/p', version: 2 });
    expect(record(r)).to.deep.include({ port: 'mtls', action: 'patch', path: 'ops/p', decision: 'allow', status: 200 });
    expect((await e.admin('GET', '/v1/secrets/ops/p')).body.data).to.deep.equal({ user: 'u', pass: 'p2' });
    const stale = await as(readWriter, 'PATCH', '/v1/secrets/ops/p', { data: { pass: 'lost' }, cas: 1 });
    expect(stale.status).to.equal(409);
    expect((await as(readWriter, 'PATCH', '/v1/secrets/ops/p', { data: { n: 1 } })).status).to.equal(400);
    expect((await as(readWriter, 'PATCH', '/v1/secrets/ops/none', { data: { a: '1' } })).status).to.equal(404);
    const outsider = await e.t.svid('spiffe://nexus.local/outsider');
    const denied = await as(outsider, 'PATCH', '/v1/secrets/ops/p', { data: { pass: 'x' } });
    expect(denied.status).to.equal(403);
    expect(record(denied)).to.deep.include({ action: 'patch', path: 'ops/p', decision: 'deny' });
    expect((await e.admin('GET', '/v1/secrets/ops/p:metadata')).body.current_version).to.equal(2);
  });

  it('POST :rollback writes version N as a new version; needs write and read; audited with the version', async () => {
    await e.admin('PUT', '/v1/secrets/ops/r', { data: { v: 'one' } });
    await e.admin('PUT', '/v1/secrets/ops/r', { data: { v: 'two' } });
    const writeOnly = await as(writer, 'POST', '/v1/secrets/ops/r:rollback', { version: 1 });
    expect(writeOnly.status).to.equal(403);
    const r = await as(readWriter, 'POST', '/v1/secrets/ops/r:rollback', { version: 1 });
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.deep.equal({ path: 'ops/r', version: 3 });
    expect(record(r)).to.deep.include({ action: 'rollback', path: 'ops/r', version: 1, decision: 'allow' });
    expect((await e.admin('GET', '/v1/secrets/ops/r')).body.data).to.deep.equal({ v: 'one' });
    expect((await as(readWriter, 'POST', '/v1/secrets/ops/r:rollback', { version: 'x' })).status).to.equal(400);
    expect((await as(readWriter, 'POST', '/v1/secrets/ops/r:rollback', { version: 42 })).status).to.equal(404);
  });

  it('DELETE :metadata purges the path (permission delete); it is no longer listed; audited as purge', async () => {
    await e.admin('PUT', '/v1/secrets/ops/gone', { data: { v: '1' } });
    await e.admin('PUT', '/v1/secrets/ops/gone', { data: { v: '2' } });
    // Read first, so the server holds the rows in its read cache.
    expect((await e.admin('GET', '/v1/secrets/ops/gone')).status).to.equal(200);
    expect((await e.admin('GET', '/v1/secrets/ops/gone?version=1')).status).to.equal(200);
    expect((await as(readWriter, 'DELETE', '/v1/secrets/ops/gone:metadata')).status).to.equal(403);
    const r = await e.admin('DELETE', '/v1/secrets/ops/gone:metadata');
    expect(r.status, r.text).to.equal(204);
    expect(record(r)).to.deep.include({ port: 'mtls', action: 'purge', path: 'ops/gone', decision: 'allow', status: 204 });
    expect((await e.admin('GET', '/v1/secrets/ops/gone:metadata')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/secrets/ops/gone')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/secrets/ops/gone?version=1')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/secrets?prefix=ops/')).body.paths).to.not.include('ops/gone');
    expect((await e.admin('DELETE', '/v1/secrets/ops/gone:metadata')).status).to.equal(404);
  });

  it('DELETE ?versions=, :undelete and :destroy take several versions; 204 when all done, 200 naming those left alone', async () => {
    for (const v of ['1', '2', '3']) await e.admin('PUT', '/v1/secrets/ops/m', { data: { v } });
    const del = await e.admin('DELETE', '/v1/secrets/ops/m?versions=1,2');
    expect(del.status, del.text).to.equal(204);
    expect(record(del)).to.deep.include({ action: 'delete', path: 'ops/m', versions: [1, 2] });
    const again = await e.admin('DELETE', '/v1/secrets/ops/m?versions=2,3');
    expect(again.status).to.equal(200);
    expect(again.body).to.deep.equal({ path: 'ops/m', done: [3], skipped: [{ version: 2, reason: 'already_deleted' }] });
    expect((await e.admin('POST', '/v1/secrets/ops/m:destroy', { versions: [1] })).status).to.equal(204);
    const und = await e.admin('POST', '/v1/secrets/ops/m:undelete', { versions: [1, 2, 7] });
    expect(und.status).to.equal(200);
    expect(und.body).to.deep.equal({ path: 'ops/m', done: [2], skipped: [{ version: 1, reason: 'destroyed' }, { version: 7, reason: 'not_found' }] });
    expect(record(und)).to.deep.include({ action: 'undelete', versions: [1, 2, 7] });
    const des = await e.admin('POST', '/v1/secrets/ops/m:destroy', { versions: [1, 2] });
    expect(des.body).to.deep.equal({ path: 'ops/m', done: [2], skipped: [{ version: 1, reason: 'already_destroyed' }] });
    for (const bad of ['?versions=', '?versions=1,x', '?versions=1&version=2', '?versions=1&versions=2']) {
      expect((await e.admin('DELETE', `/v1/secrets/ops/m${bad}`)).status, bad).to.equal(400);
    }
    expect((await as(readWriter, 'DELETE', '/v1/secrets/ops/m?versions=3')).status).to.equal(403);
  });

  it('OIDC port: PATCH and :rollback need write and read grants; purge and delete do not exist there', async () => {
    await e.admin('PUT', '/v1/secrets/ops/ci/x', { data: { a: '1', b: '2' } });
    const token = async (repo: string) => e.idp.token(github(repo));
    const rw = await token('org/rw');
    const p = await e.oidc(rw, 'PATCH', '/v1/secrets/ops/ci/x', { data: { b: null, c: '3' } });
    expect(p.status, p.text).to.equal(200);
    expect(p.body).to.deep.equal({ path: 'ops/ci/x', version: 2 });
    expect(record(p)).to.deep.include({ port: 'oidc', action: 'patch', path: 'ops/ci/x', decision: 'allow' });
    expect((await e.admin('GET', '/v1/secrets/ops/ci/x')).body.data).to.deep.equal({ a: '1', c: '3' });
    const readOnly = await e.oidc(await token('org/r'), 'PATCH', '/v1/secrets/ops/ci/x', { data: { a: 'x' } });
    expect(readOnly.status).to.equal(403);
    expect(record(readOnly)).to.deep.include({ port: 'oidc', action: 'patch', decision: 'deny' });
    expect((await e.oidc(await token('org/w'), 'PATCH', '/v1/secrets/ops/ci/x', { data: { a: 'x' } })).status).to.equal(403);
    expect((await e.oidc(await token('org/w'), 'POST', '/v1/secrets/ops/ci/x:rollback', { version: 1 })).status).to.equal(403);
    const rb = await e.oidc(rw, 'POST', '/v1/secrets/ops/ci/x:rollback', { version: 1 });
    expect(rb.status, rb.text).to.equal(200);
    expect(record(rb)).to.deep.include({ port: 'oidc', action: 'rollback', version: 1, decision: 'allow' });
    expect((await e.admin('GET', '/v1/secrets/ops/ci/x')).body.data).to.deep.equal({ a: '1', b: '2' });
    expect((await e.oidc(rw, 'DELETE', '/v1/secrets/ops/ci/x:metadata')).status).to.be.oneOf([404, 405]);
    expect((await e.oidc(rw, 'POST', '/v1/secrets/ops/ci/x:destroy', { versions: [1] })).status).to.be.oneOf([400, 403, 404, 405]);
    expect((await e.admin('GET', '/v1/secrets/ops/ci/x:metadata')).body.current_version).to.equal(3);
  });
});
