import { expect } from 'chai';
import { compileGlob } from '../../nexus/policy/glob.js';
import { call, type ClientCreds, type TestServer, startTestServer } from '../helpers/server.js';

describe('policies over the mTLS port', function () {
  this.timeout(30_000);
  let t: TestServer;
  let alice: ClientCreds;
  let bob: ClientCreds;
  let ci: ClientCreds;

  const put = (c: ClientCreds, p: string, data: Record<string, string>) => call(t.port, c, 'PUT', `/v1/secrets/${p}`, { data });
  const get = (c: ClientCreds, p: string) => call(t.port, c, 'GET', `/v1/secrets/${p}`);
  const policy = async (name: string, spiffe_id: string, paths: string[], permissions: string[]) => {
    const r = await call(t.port, t.admin, 'PUT', `/v1/policies/${name}`, { spiffe_id, paths, permissions });
    expect(r.status, r.text).to.be.oneOf([200, 201]);
  };

  before(async () => {
    t = await startTestServer();
    alice = await t.svid('spiffe://nexus.local/team/alice');
    bob = await t.svid('spiffe://nexus.local/team/bob');
    ci = await t.svid('spiffe://nexus.local/ci/runner/7');
    for (const p of ['app/one/db', 'app/one/deep/x', 'app/two/db', 'acl', 'system/acl', 'team/shared', 'ci/build/token']) {
      expect((await put(t.admin, p, { v: p })).status).to.equal(201);
    }
    await policy('alice-app', 'spiffe://nexus.local/team/alice', ['app/*/db'], ['read', 'list']);
    await policy('team-shared', 'spiffe://nexus.local/team/*', ['team/**'], ['read']);
    await policy('team-writer', 'spiffe://nexus.local/team/bob', ['team/**'], ['write']);
    await policy('acl-only', 'spiffe://nexus.local/team/bob', ['acl'], ['read']);
    await policy('ci', 'spiffe://nexus.local/ci/**', ['ci/**'], ['read', 'list']);
  });
  after(() => t.stop());

  it('allows what a policy grants and denies everything else (default deny)', async () => {
    expect((await get(alice, 'app/one/db')).body.data).to.deep.equal({ v: 'app/one/db' });
    expect((await get(alice, 'app/two/db')).status).to.equal(200);
    expect((await put(alice, 'app/one/db', { v: 'x' })).status).to.equal(403);
    expect((await call(t.port, alice, 'DELETE', '/v1/secrets/app/one/db')).status).to.equal(403);
    expect((await get(alice, 'ci/build/token')).status).to.equal(403);
  });

  it('`*` stays within one segment; `**` crosses segments', async () => {
    expect((await get(alice, 'app/one/deep/x')).status).to.equal(403); // app/*/db does not reach deeper
    expect((await get(ci, 'ci/build/token')).status).to.equal(200); // ci/** and spiffe .../ci/** across segments
  });

  it('permissions are the union of every matching policy', async () => {
    expect((await get(bob, 'team/shared')).status).to.equal(200); // team-shared: read
    const w = await put(bob, 'team/shared', { v: 'bob' }); // team-writer: write
    expect(w.status).to.equal(200);
    expect((await get(bob, 'team/shared')).body.data).to.deep.equal({ v: 'bob' });
    expect((await put(alice, 'team/shared', { v: 'alice' })).status).to.equal(403);
  });

  it('a denied caller gets the same 403 whether or not the path exists', async () => {
    const existing = await get(alice, 'ci/build/token');
    const missing = await get(alice, 'ci/build/missing');
    expect(existing.status).to.equal(403);
    expect(missing.status).to.equal(403);
    expect(existing.body.error.message).to.equal(missing.body.error.message.replace('missing', 'token'));
    expect(existing.body.error.code).to.equal(missing.body.error.code);
    // and for metadata
    expect((await call(t.port, alice, 'GET', '/v1/secrets/ci/build/token:metadata')).status).to.equal(403);
    expect((await call(t.port, alice, 'GET', '/v1/secrets/ci/nothing:metadata')).status).to.equal(403);
  });

  it('a pattern never matches by substring', async () => {
    expect((await get(bob, 'acl')).status).to.equal(200);
    expect((await get(bob, 'system/acl')).status).to.equal(403);
    const evil = await t.svid('spiffe://nexus.local/team/alice-evil');
    expect((await get(evil, 'app/one/db')).status).to.equal(403);
    const prefixed = await t.svid('spiffe://nexus.local/x/team/alice');
    expect((await get(prefixed, 'app/one/db')).status).to.equal(403);
  });

  it('a list shows only the paths the caller may list', async () => {
    const r = await call(t.port, alice, 'GET', '/v1/secrets');
    expect(r.status).to.equal(200);
    expect(r.body.paths).to.deep.equal(['app/one/db', 'app/two/db']);
    expect((await call(t.port, ci, 'GET', '/v1/secrets?prefix=ci/')).body.paths).to.deep.equal(['ci/build/token']);
    expect((await call(t.port, bob, 'GET', '/v1/secrets')).status).to.equal(403); // bob may not list anything
    const all = await call(t.port, t.admin, 'GET', '/v1/secrets?limit=3');
    expect(all.body.paths).to.have.length(3);
    expect(all.body.next_cursor).to.be.a('string');
  });

  it('admin routes need the admin permission; the built-in admin policy cannot be deleted or changed', async () => {
    expect((await call(t.port, alice, 'GET', '/v1/policies')).status).to.equal(403);
    expect((await call(t.port, alice, 'PUT', '/v1/policies/mine', { spiffe_id: 'spiffe://nexus.local/**', paths: ['**'], permissions: ['admin'] })).status).to.equal(403);
    const list = await call(t.port, t.admin, 'GET', '/v1/policies');
    expect(list.body.policies.map((p: { name: string }) => p.name)).to.include.members(['builtin-admin', 'alice-app', 'ci']);
    expect((await call(t.port, t.admin, 'DELETE', '/v1/policies/builtin-admin')).status).to.equal(403);
    expect((await call(t.port, t.admin, 'PUT', '/v1/policies/builtin-admin', { spiffe_id: 'spiffe://nexus.local/x', paths: ['**'], permissions: ['read'] })).status).to.equal(403);
    expect((await call(t.port, t.admin, 'GET', '/v1/policies/builtin-admin')).body.spiffe_id).to.equal('spiffe://nexus.local/pilot');
  });

  it('policy CRUD validates input and takes effect at once', async () => {
    const bad = [
      { spiffe_id: 'not-spiffe', paths: ['a'], permissions: ['read'] },
      { spiffe_id: 'spiffe://nexus.local/x', paths: [], permissions: ['read'] },
      { spiffe_id: 'spiffe://nexus.local/x', paths: ['../x'], permissions: ['read'] },
      { spiffe_id: 'spiffe://nexus.local/x', paths: ['a'], permissions: ['root'] },
      { spiffe_id: 'spiffe://nexus.local/x', paths: ['a'], permissions: ['read'], extra: 1 },
    ];
    for (const b of bad) expect((await call(t.port, t.admin, 'PUT', '/v1/policies/p1', b)).status, JSON.stringify(b)).to.equal(400);
    const dave = await t.svid('spiffe://nexus.local/team2/dave');
    expect((await get(dave, 'app/two/db')).status).to.equal(403);
    expect((await call(t.port, t.admin, 'PUT', '/v1/policies/dave', { spiffe_id: 'spiffe://nexus.local/team2/dave', paths: ['app/two/*'], permissions: ['read'] })).status).to.equal(201);
    expect((await get(dave, 'app/two/db')).status).to.equal(200);
    expect((await call(t.port, t.admin, 'GET', '/v1/policies/dave')).body.paths).to.deep.equal(['app/two/*']);
    expect((await call(t.port, t.admin, 'DELETE', '/v1/policies/dave')).status).to.equal(204);
    expect((await get(dave, 'app/two/db')).status).to.equal(403);
    expect((await call(t.port, t.admin, 'GET', '/v1/policies/dave')).status).to.equal(404);
  });

  it('compiles globs anchored, with literal dots', () => {
    expect(compileGlob('a/*').test('a/b')).to.equal(true);
    expect(compileGlob('a/*').test('a/b/c')).to.equal(false);
    expect(compileGlob('a/**').test('a/b/c')).to.equal(true);
    expect(compileGlob('a.b').test('aXb')).to.equal(false);
    expect(compileGlob('acl').test('system/acl')).to.equal(false);
    expect(compileGlob('acl').test('acl2')).to.equal(false);
    expect(compileGlob('spiffe://td/*').test('spiffe://td/a/b')).to.equal(false);
  });
});
