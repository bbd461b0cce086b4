import { expect } from 'chai';
import { call, type ClientCreds, type TestServer, startTestServer } from '../helpers/server.js';

const HIDDEN = 10_050;

describe('list cursors never name a path the caller may not list', function () {
  this.timeout(60_000);
  let t: TestServer;
  let lister: ClientCreds;
  const list = (query: string) => call(t.port, lister, 'GET', `/v1/secrets?${query}`);

  before(async () => {
    t = await startTestServer();
    const now = new Date().toISOString();
    // Paths only (listing never reads a value), in one transaction: more hidden rows than one call may scan.
    await t.server.core.storage.tx(async (r) => {
      for (let i = 0; i < HIDDEN; i++) await r.secrets.insertSecret(`hidden/p${String(i).padStart(5, '0')}`, 1, now);
    });
    for (const p of ['team/a', 'team/b', 'team/c/d']) expect((await call(t.port, t.admin, 'PUT', `/v1/secrets/${p}`, { data: { v: p } })).status).to.equal(201);
    expect((await call(t.port, t.admin, 'PUT', '/v1/policies/lister', { spiffe_id: 'spiffe://nexus.local/lister', paths: ['team/**'], permissions: ['list'] })).status).to.equal(201);
    lister = await t.svid('spiffe://nexus.local/lister');
  });
  after(() => t.stop());

  const revealsNothing = (cursor: string) => {
    for (const decoded of [Buffer.from(cursor, 'base64url').toString('latin1'), Buffer.from(cursor, 'base64').toString('latin1'), cursor]) {
      expect(decoded).to.not.match(/hidden|p\d{5}|team/);
    }
  };

  it('pages past 10,050 hidden paths to exactly the listable ones; every cursor is opaque', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await list(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status, r.text).to.equal(200);
      seen.push(...r.body.paths);
      cursor = r.body.next_cursor;
      if (cursor) revealsNothing(cursor);
      expect(++pages).to.be.lessThan(20);
    } while (cursor);
    expect(seen).to.deep.equal(['team/a', 'team/b', 'team/c/d']);
  });

  it('a forged, altered or transplanted cursor is 400', async () => {
    const first = await list('limit=1');
    expect(first.body.next_cursor).to.be.a('string');
    const real: string = first.body.next_cursor;
    const forged = [
      Buffer.from('hidden/p00007').toString('base64url'),
      Buffer.from('team/a').toString('base64url'),
      `${real.slice(0, -2)}${real.endsWith('AA') ? 'BB' : 'AA'}`,
      real.slice(1),
      'not a cursor!',
    ];
    for (const c of forged) {
      const r = await list(`cursor=${encodeURIComponent(c)}`);
      expect(r.status, c).to.equal(400);
      expect(r.body.error.code).to.equal('bad_request');
    }
    // A cursor belongs to the listing (prefix) it came from.
    expect((await list(`prefix=team&cursor=${real}`)).status).to.equal(400);
    expect((await list(`cursor=${real}`)).status).to.equal(200);
  });
});
