import { expect } from 'chai';
import { PUBLIC_OPERATIONS } from '../../nexus/http/public-routes.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call, type ClientCreds, type Res } from '../helpers/server.js';

// By behaviour, not by reading handlers: every operation either port documents
// is called as a principal nothing grants anything, and must refuse (401/403)
// unless PUBLIC_OPERATIONS declares it public. A route that is served but not
// documented already fails test/config/openapi.test.ts, so nothing escapes both.

interface Doc {
  paths: Record<string, Record<string, unknown>>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

function operations(doc: Doc): Array<{ method: string; path: string; key: string }> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => METHODS.includes(m))
      .map((m) => ({ method: m.toUpperCase(), path, key: `${m.toUpperCase()} ${path}` })),
  );
}

/** A concrete request path for a documented one: parameters filled with objects that exist, so a refusal cannot hide behind a 404. */
function concrete(path: string): string {
  const filled = path
    .replace(/\{path\}/g, 'ci/org/repo/db')
    .replace(/\{name\}/g, 'ci')
    .replace(/\{[A-Za-z_]+\}/g, 'ci');
  return path === '/v1/secrets' ? `${filled}?prefix=ci/` : filled;
}

/** A body each writing route would accept from a caller it allowed, so a refusal is about the caller, not the body. */
function bodyFor(method: string, path: string): unknown {
  // revoke-self takes no body (a body there is refused unread, 413, before anyone is asked who they are).
  if (method === 'GET' || method === 'DELETE' || path.endsWith('/revoke-self')) return undefined;
  if (/:(undelete|destroy)$/.test(path)) return { versions: [1] };
  if (/:rollback$/.test(path)) return { version: 1 };
  if (path.startsWith('/v1/secrets/') || path.startsWith('/v1/secret/')) return { data: { k: 'v' } };
  return {};
}

describe('every route refuses a principal nothing grants, except the declared public ones', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let nobody: ClientCreds;
  let unboundJwt: string;
  const docs: Record<'mtls' | 'oidc', Doc> = {} as never;

  before(async () => {
    // Every operation is tried unauthenticated: more failures than the default per-IP budget (a 429 would hide a 2xx).
    e = await startOidcEnv({ NEXUS_OIDC_FAILED_AUTH_RPS: '1000' });
    docs.mtls = (await e.admin('GET', '/openapi.json')).body;
    docs.oidc = (await e.oidc(undefined, 'GET', '/openapi.json')).body;
    // Objects every {name} and {path} resolves to, and a role and a policy that
    // grant everything on them to someone else: the callers below are unbound, not unlucky.
    for (const [m, p, b] of [
      ['PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } }],
      ['PUT', '/v1/policies/ci', { spiffe_id: 'spiffe://nexus.local/ci-admin', paths: ['**'], permissions: ['read', 'list', 'write', 'delete', 'admin', 'metrics'] }],
      ['PUT', '/v1/oidc/roles/ci', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read', 'list', 'write'] }],
    ] as const) {
      const r = await e.admin(m, p, b);
      expect(r.status, `${m} ${p}: ${r.text}`).to.be.oneOf([200, 201]);
    }
    nobody = await e.t.svid('spiffe://nexus.local/nobody/at-all');
    unboundJwt = await e.idp.token(github('stranger/elsewhere'));
  });
  after(() => e.stop());

  it('both documents list every public operation they declare (the list is not stale)', () => {
    for (const port of ['mtls', 'oidc'] as const) {
      const keys = new Set(operations(docs[port]).map((o) => o.key));
      expect(PUBLIC_OPERATIONS[port].filter((k) => !keys.has(k)), `${port}: public but not served`).to.deep.equal([]);
    }
  });

  it('mTLS port: an SVID that no policy names gets 401 or 403 on every non-public operation', async () => {
    const ops = operations(docs.mtls);
    expect(ops.length).to.be.greaterThan(10);
    const leaks: string[] = [];
    for (const op of ops) {
      const res: Res = await call(e.t.port, nobody, op.method, concrete(op.path), bodyFor(op.method, op.path));
      const refused = res.status === 401 || res.status === 403;
      const isPublic = (PUBLIC_OPERATIONS.mtls as readonly string[]).includes(op.key);
      if (isPublic === refused) leaks.push(`${op.key} -> ${res.status} ${res.text.slice(0, 120)}`);
    }
    expect(leaks, 'operations whose guard disagrees with PUBLIC_OPERATIONS').to.deep.equal([]);
  });

  for (const [what, headers] of [
    ['a JWT that no role matches, as Bearer', (jwt: string) => ({ Authorization: `Bearer ${jwt}` })],
    ['a JWT that no role matches, as X-Vault-Token', (jwt: string) => ({ 'X-Vault-Token': jwt })],
    ['no credentials at all', () => ({})],
  ] as const) {
    it(`OIDC port: ${what} gets 401 or 403 on every non-public operation`, async () => {
      const ops = operations(docs.oidc);
      expect(ops.length).to.be.greaterThan(5);
      const leaks: string[] = [];
      for (const op of ops) {
        if ((PUBLIC_OPERATIONS.oidc as readonly string[]).includes(op.key)) continue;
        const res = await e.oidc(undefined, op.method, concrete(op.path), bodyFor(op.method, op.path), headers(unboundJwt));
        if (res.status !== 401 && res.status !== 403) leaks.push(`${op.key} -> ${res.status} ${res.text.slice(0, 120)}`);
      }
      expect(leaks, 'operations that answered without a grant').to.deep.equal([]);
    });
  }

  it('OIDC port: the public operations answer without any credential (they are public, not merely listed)', async () => {
    const refused: string[] = [];
    for (const op of operations(docs.oidc)) {
      if (!(PUBLIC_OPERATIONS.oidc as readonly string[]).includes(op.key)) continue;
      // The exchanges authenticate the JWT in their body: with the unbound one they
      // refuse (no role), and with none they refuse too, but never because a header was missing.
      // The Vault login is an exchange by PUT too (`vault write auth/jwt/login`).
      const exchange = op.method === 'POST' || op.path.endsWith('/login');
      const body = exchange ? (op.path.endsWith('/login') ? { role: 'ci', jwt: unboundJwt } : { jwt: unboundJwt }) : undefined;
      const res = await e.oidc(undefined, op.method, concrete(op.path), body);
      const ok = exchange ? res.status === 403 || res.status === 400 : res.status === 200;
      if (!ok) refused.push(`${op.key} -> ${res.status} ${res.text.slice(0, 120)}`);
    }
    expect(refused).to.deep.equal([]);
  });

  it('the bound principal of the same setup is allowed (the refusals above are about the caller)', async () => {
    const jwt = await e.idp.token(github('org/repo'));
    expect((await e.oidc(jwt, 'GET', '/v1/secrets/ci/org/repo/db')).status).to.equal(200);
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/db')).status).to.equal(200);
  });
});
