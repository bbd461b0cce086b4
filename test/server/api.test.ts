import { expect } from 'chai';
import { call, type TestServer, startTestServer } from '../helpers/server.js';

describe('mTLS HTTP API', function () {
  this.timeout(30_000);
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    await call(t.port, t.admin, 'PUT', '/v1/secrets/app/db', { data: { user: 'u', pass: 'p' } });
    await call(t.port, t.admin, 'PUT', '/v1/secrets/b', { data: { other: 'secret-b' } });
  });
  after(() => t.stop());
  const admin = (method: string, path: string, body?: unknown) => call(t.port, t.admin, method, path, body);

  it('writes (201 then 200), reads, versions, cas 409 with nothing written', async () => {
    const c = await admin('PUT', '/v1/secrets/x/y', { data: { a: '1' } });
    expect(c.status).to.equal(201);
    expect(c.body).to.deep.equal({ path: 'x/y', version: 1 });
    expect((await admin('PUT', '/v1/secrets/x/y', { data: { a: '2' }, cas: 1 })).status).to.equal(200);
    const conflict = await admin('PUT', '/v1/secrets/x/y', { data: { a: 'lost' }, cas: 1 });
    expect(conflict.status).to.equal(409);
    expect(conflict.body.error.code).to.equal('conflict');
    const r = await admin('GET', '/v1/secrets/x/y');
    expect(r.body).to.include({ path: 'x/y', version: 2 });
    expect(r.body.data).to.deep.equal({ a: '2' });
    expect((await admin('GET', '/v1/secrets/x/y?version=1')).body.data).to.deep.equal({ a: '1' });
    expect((await admin('GET', '/v1/secrets/x/y?version=abc')).status).to.equal(400);
  });

  it('delete, undelete, destroy and metadata', async () => {
    await admin('PUT', '/v1/secrets/d/x', { data: { a: '1' } });
    await admin('PUT', '/v1/secrets/d/x', { data: { a: '2' } });
    expect((await admin('DELETE', '/v1/secrets/d/x')).status).to.equal(204);
    expect((await admin('GET', '/v1/secrets/d/x')).status).to.equal(404);
    expect((await admin('POST', '/v1/secrets/d/x:undelete', { versions: [2] })).status).to.equal(204);
    expect((await admin('GET', '/v1/secrets/d/x')).body.data).to.deep.equal({ a: '2' });
    expect((await admin('POST', '/v1/secrets/d/x:destroy', { versions: [1] })).status).to.equal(204);
    expect((await admin('GET', '/v1/secrets/d/x?version=1')).status).to.equal(404);
    const md = await admin('GET', '/v1/secrets/d/x:metadata');
    expect(md.body.current_version).to.equal(2);
    expect(md.body.versions.map((v: { destroyed: boolean }) => v.destroyed)).to.deep.equal([true, false]);
    expect((await admin('POST', '/v1/secrets/d/x:explode', { versions: [1] })).status).to.equal(400);
    expect((await admin('POST', '/v1/secrets/d/x')).status).to.equal(405);
  });

  const badPaths = [
    '/v1/secrets/app/../b',
    '/v1/secrets/%2e%2e/b',
    '/v1/secrets/app/%2e%2e/b',
    '/v1/secrets/app%2fdb',
    '/v1/secrets/app/./db',
    '/v1/secrets/app//db',
    '/v1/secrets/app/db/',
    '/v1/secrets//app/db',
    '/v1/secrets/',
    `/v1/secrets/${'x'.repeat(513)}`,
    `/v1/secrets/${Array(33).fill('s').join('/')}`,
    '/v1/secrets/caf%C3%A9',
    '/v1/secrets/a%00b',
  ];
  for (const p of badPaths) {
    it(`refuses ${p.length > 60 ? `${p.slice(0, 40)}... (${p.length} chars)` : p} with 400 and never another secret`, async () => {
      for (const method of ['GET', 'PUT']) {
        const r = await admin(method, p, method === 'PUT' ? { data: { v: 'x' } } : undefined);
        expect(r.status, r.text).to.equal(400);
        expect(r.body.error.code).to.equal('bad_request');
        expect(r.text).to.not.include('secret-b');
      }
    });
  }

  it('bodies: over 1 MiB -> 413, malformed JSON -> 400, wrong shapes -> 400', async () => {
    const big = Buffer.alloc(1024 * 1024 + 10, 'a');
    const r = await admin('PUT', '/v1/secrets/big', big);
    expect(r.status).to.equal(413);
    expect(r.body.error.code).to.equal('too_large');
    expect((await admin('PUT', '/v1/secrets/j', '{"data": {')).status).to.equal(400);
    expect((await admin('PUT', '/v1/secrets/j', '[1,2]')).status).to.equal(400);
    expect((await admin('PUT', '/v1/secrets/j', { data: { n: 1 } })).status).to.equal(400);
    expect((await admin('PUT', '/v1/secrets/j', { data: { v: 'x'.repeat(70_000) } })).status).to.equal(400);
    expect((await admin('PUT', '/v1/secrets/j', { data: { v: 'x' }, cas: 'one' })).status).to.equal(400);
    expect((await admin('GET', '/v1/secrets/j')).status).to.equal(404); // nothing was written
  });

  it('every response has Cache-Control: no-store and a request id, errors carry it too', async () => {
    for (const [m, p] of [['GET', '/v1/secrets/app/db'], ['GET', '/v1/secrets/none'], ['GET', '/nope'], ['GET', '/healthz'], ['PUT', '/v1/secrets/%2e']] as const) {
      const r = await admin(m, p, m === 'PUT' ? { data: {} } : undefined);
      expect(r.headers['cache-control'], p).to.equal('no-store');
      expect(r.headers['x-request-id'], p).to.match(/^req_/);
      if (r.status >= 400) expect(r.body.error.request_id).to.equal(r.headers['x-request-id']);
    }
  });

  it('health and readiness', async () => {
    expect((await admin('GET', '/healthz')).body).to.deep.equal({ status: 'ok' });
    const ready = await admin('GET', '/readyz');
    expect(ready.status).to.equal(200);
    expect(ready.body.checks).to.deep.equal({ db: true, root_key: true, audit: true, listeners: true });
  });
});
