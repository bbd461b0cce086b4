import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

function auditLines(env: OidcEnv): Array<Record<string, any>> {
  return fs
    .readFileSync(path.join(env.t.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, any>);
}

describe('OIDC port: a subtree with its data in pages (GET /v1/secrets?prefix=P&include=data)', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let jwt: string;

  before(async () => {
    env = await startOidcEnv();
    // 25 the job may read, 5 under the same prefix it may not, 1 elsewhere.
    for (let i = 0; i < 25; i++) await env.admin('PUT', `/v1/secrets/ci/acme/api/app/s${String(i).padStart(2, '0')}`, { data: { v: `value-${i}` } });
    for (let i = 0; i < 5; i++) await env.admin('PUT', `/v1/secrets/ci/acme/api/ops/o${i}`, { data: { v: `hidden-${i}` } });
    await env.admin('PUT', '/v1/secrets/ci/acme/web/x', { data: { v: 'other' } });
    // A deleted latest version has no data to hand out: passed over.
    await env.admin('PUT', '/v1/secrets/ci/acme/api/app/zz-deleted', { data: { v: 'gone' } });
    await env.admin('DELETE', '/v1/secrets/ci/acme/api/app/zz-deleted');
    // Read only (no list grant): the usual CI role.
    const r = await env.admin('PUT', '/v1/oidc/roles/api-read', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['ci/{{claims.repository}}/app/**'], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
    jwt = await env.idp.token(github('acme/api'));
  });
  after(() => env?.stop());

  it('returns exactly the readable secrets with their latest data, paged by cursor, and writes one read record per secret', async () => {
    const before = auditLines(env).length;
    const got: Array<{ path: string; version: number; data: Record<string, string> }> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/v1/secrets?prefix=ci/acme/api/&include=data&limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await env.oidc(jwt, 'GET', q);
      expect(res.status, res.text).to.equal(200);
      got.push(...res.body.secrets);
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).to.be.within(3, 4);
    expect(got.map((s) => s.path)).to.deep.equal(Array.from({ length: 25 }, (_, i) => `ci/acme/api/app/s${String(i).padStart(2, '0')}`));
    expect(got[7]).to.deep.equal({ path: 'ci/acme/api/app/s07', version: 1, data: { v: 'value-7' } });
    expect(JSON.stringify(got)).to.not.match(/hidden|other|gone/);

    const records = auditLines(env).slice(before);
    const reads = records.filter((l) => l.action === 'read');
    expect(reads.map((l) => l.path).sort()).to.deep.equal(got.map((s) => s.path));
    for (const r of reads) {
      expect(r).to.include({ port: 'oidc', decision: 'allow', status: 200, version: 1, route: '/v1/secrets' });
      expect(r.principal.subject).to.equal('repo:acme/api:ref:refs/heads/main');
    }
    // Each page's own record beside its reads; never a value.
    expect(records.filter((l) => l.action === 'list.data')).to.have.length(pages);
    expect(JSON.stringify(records)).to.not.include('value-');
  });

  it('a prefix with nothing readable is an empty page; a token without any read grant gets 403; include takes only data', async () => {
    const none = await env.oidc(jwt, 'GET', '/v1/secrets?prefix=ci/acme/api/ops/&include=data');
    expect(none.status).to.equal(200);
    expect(none.body).to.deep.equal({ secrets: [], next_cursor: null });
    await env.admin('PUT', '/v1/oidc/roles/web-write', { issuer: 'ci', bound_claims: { repository: 'acme/web' }, paths: ['ci/acme/web/**'], permissions: ['write'] });
    const writer = await env.oidc(await env.idp.token(github('acme/web')), 'GET', '/v1/secrets?prefix=ci/acme/web/&include=data');
    expect(writer.status).to.equal(403);
    expect((await env.oidc(jwt, 'GET', '/v1/secrets?prefix=ci/acme/api/&include=metadata')).status).to.equal(400);
    // Without include, the list route is what it was: it needs list.
    expect((await env.oidc(jwt, 'GET', '/v1/secrets?prefix=ci/acme/api/')).status).to.equal(403);
  });
});
