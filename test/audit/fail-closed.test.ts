import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDENTITY_CHECK_MS } from '../../nexus/audit/chain.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

interface Rec {
  request_id?: string;
  action: string;
  phase?: string;
  status: number;
  path?: string;
}

describe('audit trail: fail closed on every request', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let file: string;
  const records = (): Rec[] => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
  const VALUE = 'VALUE-fail-closed-31f7';

  /**
   * Runs `fn` while every append to the trail fails (a directory where the
   * file should be), once the server has checked the path again: it does so
   * by time (IDENTITY_CHECK_MS), and until then writes to the file it holds.
   */
  async function withUnwritableTrail(fn: () => Promise<void>): Promise<void> {
    fs.renameSync(file, `${file}.saved`);
    fs.mkdirSync(file);
    try {
      await sleep(IDENTITY_CHECK_MS + 50);
      await fn();
    } finally {
      fs.rmdirSync(file);
      fs.renameSync(`${file}.saved`, file);
    }
  }

  before(async () => {
    e = await startOidcEnv();
    file = path.join(e.t.dir, 'audit.jsonl');
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { password: VALUE } });
    await e.admin('PUT', '/v1/secrets/ci/org/repo/old', { data: { v: 'x' } });
    await e.admin('DELETE', '/v1/secrets/ci/org/repo/old');
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/*'], permissions: ['read', 'write'] });
  });
  after(() => e.stop());

  it('nothing is served unrecorded, whatever the case of the path, on either port', async () => {
    const jwt = await e.idp.token(github('org/repo'));
    await withUnwritableTrail(async () => {
      for (const p of ['/v1/secrets/ci/org/repo/db', '/V1/SECRETS/ci/org/repo/db', '/v1/Secrets/ci/org/repo/db']) {
        const m = await e.admin('GET', p);
        expect(m.status, `mTLS ${p}`).to.be.oneOf([404, 503]);
        expect(m.text).to.not.include(VALUE);
        const o = await e.oidc(jwt, 'GET', p);
        expect(o.status, `OIDC ${p}`).to.be.oneOf([404, 503]);
        expect(o.text).to.not.include(VALUE);
      }
      expect((await e.admin('GET', '/V1/POLICIES')).status).to.be.oneOf([404, 503]);
      expect((await e.admin('GET', '/v1/oidc/roles')).status).to.equal(503);
    });
  });

  it('a change is refused (503) and nothing is committed when its intent cannot be recorded', async () => {
    const jwt = await e.idp.token(github('org/repo'));
    await withUnwritableTrail(async () => {
      const attempts: Array<[string, string, unknown?]> = [
        ['PUT', '/v1/secrets/ci/org/repo/db', { data: { password: 'changed' } }],
        ['PUT', '/v1/secrets/ci/org/repo/new', { data: { v: 'new' } }],
        ['DELETE', '/v1/secrets/ci/org/repo/db'],
        ['POST', '/v1/secrets/ci/org/repo/db:destroy', { versions: [1] }],
        ['POST', '/v1/secrets/ci/org/repo/old:undelete', { versions: [1] }],
        ['PUT', '/v1/policies/p1', { spiffe_id: 'spiffe://nexus.local/x', paths: ['a/*'], permissions: ['read'] }],
        ['PUT', '/v1/oidc/roles/r2', { issuer: 'ci', bound_claims: { sub: 'x' }, paths: ['a/*'], permissions: ['read'] }],
        ['PUT', '/v1/oidc/issuers/other', { issuer: 'https://other.example', audiences: ['nexus'] }],
        ['DELETE', '/v1/oidc/roles/main'],
        ['POST', '/v1/oidc/roles/main:revoke-tokens'],
      ];
      for (const [method, p, body] of attempts) expect((await e.admin(method, p, body)).status, `${method} ${p}`).to.equal(503);
      expect((await e.oidc(jwt, 'PUT', '/v1/secrets/ci/org/repo/ci-wrote', { data: { v: 'x' } })).status).to.equal(503);
    });
    const meta = (await e.admin('GET', '/v1/secrets/ci/org/repo/db:metadata')).body;
    expect(meta.current_version).to.equal(1);
    expect(meta.versions[0]).to.deep.include({ deleted_at: null, destroyed: false });
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/db')).body.data).to.deep.equal({ password: VALUE });
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/new')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/ci-wrote')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/old')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/policies/p1')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/oidc/roles/r2')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/oidc/issuers/other')).status).to.equal(404);
    expect((await e.admin('GET', '/v1/oidc/roles/main')).status).to.equal(200);
  });

  it('a trail moved away loses nothing: what is answered before the path is checked again is in the moved file, then a new file starts', async () => {
    const moved = `${file}.moved`;
    const ids = (f: string) => new Set(fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as Rec).request_id));
    await sleep(IDENTITY_CHECK_MS + 50); // the next batch checks the path
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/db')).status).to.equal(200);
    fs.renameSync(file, moved);
    try {
      const early = await e.admin('GET', '/v1/secrets/ci/org/repo/db');
      expect(early.status).to.equal(200);
      const earlyId = early.headers['x-request-id'] as string;
      // Usually the moved file (the server still held it); the new one if the check fell in between.
      const inNew = () => fs.existsSync(file) && ids(file).has(earlyId);
      expect(ids(moved).has(earlyId) || inNew(), 'answered right after the move: recorded').to.equal(true);
      await sleep(IDENTITY_CHECK_MS + 50);
      const late = await e.admin('GET', '/v1/secrets/ci/org/repo/db');
      expect(late.status).to.equal(200);
      const lateId = late.headers['x-request-id'] as string;
      expect(ids(file).has(lateId), 'after the check: recorded in a new file at the path').to.equal(true);
      expect(ids(moved).has(lateId)).to.equal(false);
    } finally {
      // Put the trail back together for the tests after this one: the moved records, then the new file's.
      const tail = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
      fs.writeFileSync(file, Buffer.concat([fs.readFileSync(moved), tail]));
      fs.rmSync(moved);
      await sleep(IDENTITY_CHECK_MS + 50);
    }
  });

  it('a change records its intent before it commits, then its outcome', async () => {
    for (const [method, p, body, status] of [
      ['PUT', '/v1/secrets/ci/org/repo/two', { data: { v: '1' } }, 201],
      ['DELETE', '/v1/secrets/ci/org/repo/two', undefined, 204],
      ['PUT', '/v1/policies/p2', { spiffe_id: 'spiffe://nexus.local/x', paths: ['a/*'], permissions: ['read'] }, 201],
    ] as Array<[string, string, unknown, number]>) {
      const r = await e.admin(method, p, body);
      expect(r.status).to.equal(status);
      const mine = records().filter((x) => x.request_id === r.headers['x-request-id']);
      expect(mine.map((x) => x.phase), `${method} ${p}`).to.deep.equal(['intent', 'outcome']);
      expect(mine[1]!.status).to.equal(status);
    }
  });
});
