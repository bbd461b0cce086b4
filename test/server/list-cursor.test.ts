import { expect } from 'chai';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';
import { call, type ClientCreds, type Res, type TestServer, startTestServer } from '../helpers/server.js';

// More hidden rows than the scan budget the first fix had (10,000 rows a call).
const HIDDEN = 10_050;
const LONG = `team/${'l'.repeat(400)}`;
const VISIBLE = ['team/a', 'team/b', 'team/c/d', LONG, 'ops/a/public', 'ops/y/public'];

/** A server with the visible paths and, if `hidden`, 2 x 10,050 paths no lister may list. */
async function world(hidden: boolean, databaseUrl?: string): Promise<TestServer> {
  const t = await startTestServer(databaseUrl ? { NEXUS_DATABASE_URL: databaseUrl } : {});
  const now = new Date().toISOString();
  // Paths only (listing never reads a value), straight through the storage layer.
  await t.server.core.storage.tx(async (r) => {
    for (const p of VISIBLE) await r.secrets.insertSecret(p, 1, now);
    if (!hidden) return;
    for (let i = 0; i < HIDDEN; i++) {
      const n = String(i).padStart(5, '0');
      // Outside every grant's literal prefix, and inside one (`ops/` of `ops/*/public`).
      await r.secrets.insertSecret(`hr/salaries/employee-${n}`, 1, now);
      await r.secrets.insertSecret(`ops/x/private/p${n}`, 1, now);
    }
  });
  const policy = async (name: string, paths: string[]) =>
    expect((await call(t.port, t.admin, 'PUT', `/v1/policies/${name}`, { spiffe_id: `spiffe://nexus.local/${name}`, paths, permissions: ['list'] })).status).to.equal(201);
  await policy('team', ['team/**']);
  await policy('ops', ['ops/*/public']);
  return t;
}

/** What a caller sees of a whole listing, page by page: paths, whether a cursor came, its length. */
async function walk(t: TestServer, who: ClientCreds, prefix: string, limit: number): Promise<Array<{ paths: string[]; cursor: number | null }>> {
  const pages = [];
  let cursor: string | null = null;
  do {
    const r: Res = await call(t.port, who, 'GET', `/v1/secrets?prefix=${prefix}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(r.status, r.text).to.equal(200);
    cursor = r.body.next_cursor;
    pages.push({ paths: r.body.paths as string[], cursor: cursor === null ? null : cursor.length });
    expect(pages.length).to.be.lessThan(20);
  } while (cursor);
  return pages;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`list cursors reveal nothing of paths the caller may not list (${engine})`, function () {
    this.timeout(180_000);
    let withHidden: TestServer;
    let without: TestServer;
    const dbs: TestDatabase[] = [];
    const creds = new Map<TestServer, { team: ClientCreds; ops: ClientCreds }>();
    const as = (t: TestServer, who: 'team' | 'ops') => creds.get(t)![who];

    before(async function () {
      const url = engine === 'postgres' ? await requirePg(this) : undefined;
      if (url) dbs.push(await createTestDatabase(url), await createTestDatabase(url));
      withHidden = await world(true, dbs[0]?.url);
      without = await world(false, dbs[1]?.url);
      for (const t of [withHidden, without]) creds.set(t, { team: await t.svid('spiffe://nexus.local/team'), ops: await t.svid('spiffe://nexus.local/ops') });
    });
    after(async () => {
      for (const t of [withHidden, without]) await t?.stop();
      for (const db of dbs) await db.drop();
    });

    it('a listing is the same, page for page and cursor length for length, with or without hidden rows', async () => {
      const cases: Array<['team' | 'ops', string]> = [
        ['team', ''],
        ['team', 'hr'],
        ['team', 'hr/salaries/employee-'],
        ['team', 'h'],
        ['team', 'team'],
        ['team', 'team/'],
        ['ops', ''],
        ['ops', 'ops'],
        ['ops', 'ops/x'],
        ['ops', 'ops/x/private'],
      ];
      for (const [who, prefix] of cases) {
        for (const limit of [1, 2, 3, 100]) {
          const seen = await walk(withHidden, as(withHidden, who), prefix, limit);
          expect(seen, `${who} prefix=${prefix} limit=${limit}`).to.deep.equal(await walk(without, as(without, who), prefix, limit));
        }
      }
      expect((await walk(withHidden, as(withHidden, 'team'), '', 100)).flatMap((p) => p.paths)).to.deep.equal(['team/a', 'team/b', 'team/c/d', LONG]);
      expect((await walk(withHidden, as(withHidden, 'ops'), '', 100)).flatMap((p) => p.paths)).to.deep.equal(['ops/a/public', 'ops/y/public']);
    });

    it('every cursor has one length, whatever path it stops at', async () => {
      const pages = await walk(withHidden, as(withHidden, 'team'), 'team/', 1);
      expect(pages.map((p) => p.paths[0])).to.deep.equal(['team/a', 'team/b', 'team/c/d', LONG]);
      const lengths = new Set(pages.map((p) => p.cursor).filter((n) => n !== null));
      expect(lengths.size, [...lengths].join(' ')).to.equal(1);
    });

    it('a prefix no grant can match is an empty page, answered without reading storage; a hidden subtree in range costs a seek', async () => {
      const secrets = withHidden.server.core.storage.secrets;
      const listPaths = secrets.listPaths;
      let reads = 0;
      let rows = 0;
      secrets.listPaths = async (...args) => {
        reads++;
        const found = await listPaths.apply(secrets, args);
        rows += found.length;
        return found;
      };
      try {
        for (const prefix of ['hr', 'hr/salaries/employee-', 'x', 'tea/']) {
          const r = await call(withHidden.port, as(withHidden, 'team'), 'GET', `/v1/secrets?prefix=${prefix}`);
          expect(r.status, r.text).to.equal(200);
          expect(r.body).to.deep.equal({ paths: [], next_cursor: null });
        }
        expect(reads).to.equal(0);
        // Inside a grant's range (`ops/` of `ops/*/public`) the 10,050 hidden rows are one subtree: one seek passes it.
        const r = await call(withHidden.port, as(withHidden, 'ops'), 'GET', '/v1/secrets?limit=100');
        expect(r.body).to.deep.equal({ paths: ['ops/a/public', 'ops/y/public'], next_cursor: null });
        expect(rows).to.be.lessThan(500);
      } finally {
        delete (secrets as Partial<typeof secrets>).listPaths;
        if (secrets.listPaths !== listPaths) secrets.listPaths = listPaths;
      }
    });
  });
}

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

describe('OIDC port: a list reveals nothing of paths no role lets the job list', function () {
  this.timeout(60_000);
  let e: OidcEnv;

  before(async () => {
    e = await startOidcEnv();
    const now = new Date().toISOString();
    await e.t.server.core.storage.tx(async (r) => {
      for (const p of VISIBLE) await r.secrets.insertSecret(p, 1, now);
      for (let i = 0; i < HIDDEN; i++) await r.secrets.insertSecret(`hr/salaries/employee-${String(i).padStart(5, '0')}`, 1, now);
    });
    expect((await e.admin('PUT', '/v1/oidc/roles/lister', { issuer: 'ci', bound_claims: { repository: 'org/l' }, paths: ['team/**'], permissions: ['list'] })).status).to.equal(201);
  });
  after(() => e.stop());

  it('the hidden subtree neither fills a page with nothing nor shows in the cursor', async () => {
    const token = await e.idp.token(github('org/l'));
    const list = async (query: string) => (await e.oidc(token, 'GET', `/v1/secrets?${query}`)).body;
    expect(await list('prefix=hr')).to.deep.equal({ paths: [], next_cursor: null });
    expect(await list('prefix=hr/salaries/employee-&limit=1')).to.deep.equal({ paths: [], next_cursor: null });
    expect(await list('limit=100')).to.deep.equal({ paths: ['team/a', 'team/b', 'team/c/d', LONG], next_cursor: null });
    const first = await list('limit=3');
    expect(first.paths).to.deep.equal(['team/a', 'team/b', 'team/c/d']);
    expect(await list(`limit=3&cursor=${first.next_cursor}`)).to.deep.equal({ paths: [LONG], next_cursor: null });
  });
});
