import { expect } from 'chai';
import { call, startTestServer, type ClientCreds, type TestServer } from '../helpers/server.js';

// Reads on the mTLS port come from the ciphertext row cache once a path has
// been read: every change that matters must still be seen on the next read.
describe('mTLS reads served from the row cache: changes are seen on the next request', function () {
  this.timeout(30_000);
  let t: TestServer;
  let reader: ClientCreds;
  const admin = (method: string, p: string, body?: unknown) => call(t.port, t.admin, method, p, body);
  const read = () => call(t.port, reader, 'GET', '/v1/secrets/cached/db');
  const policy = (paths: string[]) => admin('PUT', '/v1/policies/reader', { spiffe_id: 'spiffe://nexus.local/reader', paths, permissions: ['read'] });

  before(async () => {
    t = await startTestServer();
    reader = await t.svid('spiffe://nexus.local/reader');
  });
  after(() => t.stop());
  beforeEach(async () => {
    expect((await policy(['cached/**'])).status).to.be.oneOf([200, 201]);
    expect((await admin('PUT', '/v1/secrets/cached/db', { data: { v: 'one' } })).status).to.be.oneOf([200, 201]);
    for (let i = 0; i < 2; i++) expect((await read()).status).to.equal(200);
  });

  it('a write', async () => {
    await admin('PUT', '/v1/secrets/cached/db', { data: { v: 'two' } });
    expect((await read()).body.data).to.deep.equal({ v: 'two' });
  });

  it('a policy narrowing', async () => {
    expect((await policy(['cached/other'])).status).to.equal(200);
    expect((await read()).status).to.equal(403);
  });

  it('a revocation (the policy deleted)', async () => {
    expect((await admin('DELETE', '/v1/policies/reader')).status).to.be.oneOf([200, 204]);
    expect((await read()).status).to.equal(403);
  });

  it('a delete and a destroy', async () => {
    await admin('DELETE', '/v1/secrets/cached/db');
    expect((await read()).status).to.equal(404);
    await admin('POST', '/v1/secrets/cached/db:undelete', { versions: [await currentVersion()] });
    expect((await read()).status).to.equal(200);
    await admin('POST', '/v1/secrets/cached/db:destroy', { versions: [await currentVersion()] });
    expect((await read()).status).to.equal(404);
  });

  const currentVersion = async (): Promise<number> => (await admin('GET', '/v1/secrets/cached/db:metadata')).body.current_version as number;
});
