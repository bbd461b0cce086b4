import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

interface Rec {
  request_id?: string;
  action: string;
  method?: string;
  route?: string;
  path?: string;
  phase?: string;
  object?: { kind: string; name: string; digest?: string };
  status?: number;
  reason?: string;
}

function digestOf(v: unknown): string {
  const canonical = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(canonical) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, canonical((x as Record<string, unknown>)[k])])) : x;
  return `sha256:${createHash('sha256').update(JSON.stringify(canonical(v))).digest('hex')}`;
}

describe('audit records name their object and route', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let file: string;
  const of = (r: { headers: Record<string, unknown> }): Rec[] =>
    fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec).filter((x) => x.request_id === r.headers['x-request-id']);

  before(async () => {
    e = await startOidcEnv();
    file = path.join(e.t.dir, 'audit.jsonl');
  });
  after(() => e.stop());

  it('admin records carry the policy, issuer or role name and the digest of a new definition', async () => {
    const policy = { spiffe_id: 'spiffe://nexus.local/app', paths: ['app/*'], permissions: ['read'] };
    const role = { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/*'], permissions: ['read'] };
    const cases: Array<[string, string, unknown, string, string]> = [
      ['PUT', '/v1/policies/app-read', policy, 'policy', 'app-read'],
      ['GET', '/v1/policies/app-read', undefined, 'policy', 'app-read'],
      ['DELETE', '/v1/policies/app-read', undefined, 'policy', 'app-read'],
      ['PUT', '/v1/oidc/roles/deploy', role, 'oidc.role', 'deploy'],
      ['POST', '/v1/oidc/roles/deploy:revoke-tokens', undefined, 'oidc.role', 'deploy'],
      ['DELETE', '/v1/oidc/roles/deploy', undefined, 'oidc.role', 'deploy'],
      ['GET', '/v1/oidc/issuers/ci', undefined, 'oidc.issuer', 'ci'],
    ];
    for (const [method, p, body, kind, name] of cases) {
      const r = await e.admin(method, p, body);
      expect(r.status, `${method} ${p}: ${r.text}`).to.be.below(300);
      const recs = of(r);
      expect(recs.length, `${method} ${p}`).to.be.greaterThan(0);
      for (const rec of recs) {
        expect(rec.object, `${method} ${p}`).to.deep.include({ kind, name });
        if (method === 'PUT') expect(rec.object!.digest).to.equal(digestOf(body));
        else expect(rec.object!.digest).to.equal(undefined);
      }
    }
  });

  it('every record carries the route template and method, never a regex source', async () => {
    const r1 = await e.admin('PUT', '/v1/secrets/app/x', { data: { v: '1' } });
    const r2 = await e.admin('GET', '/v1/policies');
    const r3 = await e.admin('GET', '/nothing/here');
    expect(of(r1).map((x) => [x.method, x.route])).to.deep.equal([['PUT', '/v1/secrets/{path}'], ['PUT', '/v1/secrets/{path}']]);
    expect(of(r2)[0]).to.deep.include({ method: 'GET', route: '/v1/policies' });
    expect(of(r3)[0]).to.deep.include({ method: 'GET', route: 'unmatched' });
    for (const line of fs.readFileSync(file, 'utf8').trim().split('\n')) expect(line).to.not.match(/\{\*rest\}|\(\?:|\\\//);
  });

  it('a failed login on the OIDC port carries the requested path and the reason', async () => {
    const r = await e.oidc('not.a.jwt', 'GET', '/v1/secrets/ci/org/repo/db');
    expect(r.status).to.equal(401);
    const [rec] = of(r);
    expect(rec).to.deep.include({ method: 'GET', route: '/v1/secrets/{path}', path: '/v1/secrets/ci/org/repo/db', status: 401 });
    expect(rec!.reason).to.match(/malformed/);
    const ex = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: 'not.a.jwt' });
    expect(ex.status).to.equal(401);
    expect(of(ex)[0]).to.deep.include({ action: 'token.exchange', path: '/v1/auth/token', route: '/v1/auth/token' });
    expect(of(ex)[0]!.reason).to.match(/malformed/);
  });
});
