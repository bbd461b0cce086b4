import { expect } from 'chai';
import { github, gitlab } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

describe('OIDC port: claims to ACLs with a real loopback IdP', function () {
  this.timeout(30_000);
  let e: OidcEnv;

  const role = async (name: string, body: Record<string, unknown>) => {
    const r = await e.admin('PUT', `/v1/oidc/roles/${name}`, { issuer: 'ci', ...body });
    expect(r.status, r.text).to.equal(201);
  };
  const read = async (claims: Record<string, unknown>, path: string, headers?: Record<string, string>) =>
    e.oidc(await e.idp.token(claims), 'GET', `/v1/secrets/${path}`, undefined, headers);

  before(async () => {
    e = await startOidcEnv();
    for (const p of ['ci/org/repo/db', 'ci/org/other/db', 'ci/org/repo-evil/db', 'prod/org/repo/key', 'gl/app/token', 'w/x', 'glob/x', 'ci/Org/Repo/db']) {
      expect((await e.admin('PUT', `/v1/secrets/${p}`, { data: { v: p } })).status).to.equal(201);
    }
    await role('deploy-main', { bound_claims: { repository: 'org/repo', ref: 'refs/heads/main' }, paths: ['ci/org/repo/**'], permissions: ['read', 'list'] });
    await role('prod', { bound_claims: { repository: 'org/repo', environment: 'production' }, paths: ['prod/org/repo/*'], permissions: ['read'] });
    await role('templated', { bound_claims: { repository_owner: 'org' }, paths: ['ci/{{claims.repository}}/**'], permissions: ['read'] });
    await role('gitlab', { bound_claims: { project_path: 'grp/app', ref_protected: 'true' }, paths: ['gl/**'], permissions: ['read'] });
    await role('glob-main', { bound_claims_glob: { sub: 'repo:org/glob:ref:refs/heads/*' }, paths: ['glob/**'], permissions: ['read'] });
    await role('nested', { bound_claims: { sub: 'x', 'ctx.team': 'blue', 'ctx.level': 3 }, paths: ['glob/x'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('reads what the matching role grants', async () => {
    const r = await read(github('org/repo'), 'ci/org/repo/db');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.data).to.deep.equal({ v: 'ci/org/repo/db' });
    expect(r.headers['cache-control']).to.equal('no-store');
  });

  it('denies another repository, another branch, another environment', async () => {
    expect((await read(github('org/other'), 'ci/org/repo/db')).status).to.equal(403);
    expect((await read(github('org/repo', 'refs/heads/dev', { repository_owner: 'someone-else' }), 'ci/org/repo/db')).status).to.equal(403);
    expect((await read(github('org/repo', 'refs/heads/main', { environment: 'staging' }), 'prod/org/repo/key')).status).to.equal(403);
    expect((await read(github('org/repo', 'refs/heads/main', { environment: 'production' }), 'prod/org/repo/key')).status).to.equal(200);
  });

  it('a templated path reads only its own repository', async () => {
    const other = github('org/other', 'refs/heads/feature');
    expect((await read(other, 'ci/org/other/db')).status).to.equal(200);
    expect((await read(other, 'ci/org/repo/db')).status).to.equal(403);
    expect((await read(other, 'ci/org/repo-evil/db')).status).to.equal(403);
  });

  it('GitLab-shaped claims; comparison by JSON type', async () => {
    expect((await read(gitlab('grp/app'), 'gl/app/token')).status).to.equal(200);
    expect((await read(gitlab('grp/app', 'main', { ref_protected: true }), 'gl/app/token')).status, 'boolean true is not the string "true"').to.equal(403);
    expect((await read(gitlab('grp/other'), 'gl/app/token')).status).to.equal(403);
  });

  it('dotted names reach nested claims', async () => {
    expect((await read({ sub: 'x', aud: 'nexus', ctx: { team: 'blue', level: 3 } }, 'glob/x')).status).to.equal(200);
    expect((await read({ sub: 'x', aud: 'nexus', ctx: { team: 'blue', level: '3' } }, 'glob/x')).status).to.equal(403);
    expect((await read({ sub: 'x', aud: 'nexus', 'ctx.team': 'blue', 'ctx.level': 3 }, 'glob/x')).status).to.equal(403);
  });

  it('glob and template abuse grants nothing beyond the role', async () => {
    // exact bindings: a longer repository or another case is another repository
    expect((await read(github('org/repo-evil'), 'ci/org/repo/db')).status).to.equal(403);
    expect((await read(github('Org/Repo', 'refs/heads/main', { repository_owner: 'Org' }), 'ci/org/repo/db')).status).to.equal(403);
    // glob: * stays within a segment and only string claims match
    expect((await read({ ...github('org/glob', 'refs/heads/main') }, 'glob/x')).status).to.equal(200);
    expect((await read({ ...github('org/glob', 'refs/heads/feature/x') }, 'glob/x')).status).to.equal(403);
    expect((await read({ ...github('org/glob-evil', 'refs/heads/main') }, 'glob/x')).status).to.equal(403);
    expect((await read({ ...github('org/glob'), sub: ['repo:org/glob:ref:refs/heads/main'] }, 'glob/x')).status).to.equal(403);
    // templates: a claim that is not a clean path grants nothing, and * is never a wildcard
    for (const repository of ['..', 'org/..', 'org/../repo', '*', 'org/*', '**', 'org/repo/../../other', '', 'org//repo', 'org/re po', 'org/%2e%2e']) {
      const claims = { ...github('x/y'), repository, repository_owner: 'org' };
      const who = await e.oidc(await e.idp.token(claims), 'GET', '/v1/whoami');
      expect(who.body.roles ?? [], repository).to.not.include('templated');
      for (const p of ['ci/org/repo/db', 'ci/org/other/db']) expect((await read(claims, p)).status, `${repository} -> ${p}`).to.equal(403);
    }
    const missing = { ...github('org/repo'), repository: undefined, ref: 'refs/heads/x' };
    // No role binds it: whoami refuses it like every other route, naming nothing.
    expect((await e.oidc(await e.idp.token(missing), 'GET', '/v1/whoami')).status).to.equal(403);
  });

  it('whoami shows issuer, subject, matched roles and effective grants', async () => {
    const r = await e.oidc(await e.idp.token(github('org/repo')), 'GET', '/v1/whoami');
    expect(r.status).to.equal(200);
    expect(r.body.issuer).to.equal(e.idp.url);
    expect(r.body.subject).to.equal('repo:org/repo:ref:refs/heads/main');
    expect(r.body.roles).to.have.members(['deploy-main', 'templated']);
    expect(r.body.grants).to.deep.include({ path: 'ci/org/repo/**', permissions: ['read', 'list'] });
    expect(r.body.grants).to.deep.include({ path: 'ci/org/repo/**', permissions: ['read'] });
  });

  it('lists only granted paths; X-Nexus-Role restricts a request to one role', async () => {
    const token = await e.idp.token(github('org/repo'));
    const list = await e.oidc(token, 'GET', '/v1/secrets?prefix=ci/');
    expect(list.status, list.text).to.equal(200);
    expect(list.body.paths).to.deep.equal(['ci/org/repo/db']);
    const onlyTemplated = await e.oidc(token, 'GET', '/v1/secrets?prefix=ci/', undefined, { 'X-Nexus-Role': 'templated' });
    expect(onlyTemplated.status).to.equal(403); // templated grants read, not list
    expect((await e.oidc(token, 'GET', '/v1/secrets/ci/org/repo/db', undefined, { 'X-Nexus-Role': 'prod' })).status).to.equal(403);
    expect((await e.oidc(token, 'GET', '/v1/secrets/ci/org/repo/db', undefined, { 'X-Nexus-Role': 'templated' })).status).to.equal(200);
  });

  it('admin paths answer 404; writes without an explicit write grant change nothing', async () => {
    const token = await e.idp.token(github('org/repo'));
    for (const p of ['/v1/policies', '/v1/oidc/issuers', '/v1/oidc/roles/deploy-main', '/metrics', '/v1/secrets/ci/org/repo/db:metadata']) {
      const r = await e.oidc(token, 'GET', p);
      expect(r.status, p).to.be.oneOf([404, 400]);
      expect(r.text).to.not.include('deploy-main');
    }
    expect((await e.oidc(token, 'DELETE', '/v1/secrets/ci/org/repo/db')).status).to.be.oneOf([404, 405]);
    const w = await e.oidc(token, 'PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'pwned' } });
    expect(w.status).to.equal(403);
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/db')).body.data).to.deep.equal({ v: 'ci/org/repo/db' });
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/db:metadata')).body.current_version).to.equal(1);
    // An explicit write grant works.
    await role('writer', { bound_claims: { repository: 'org/writer' }, paths: ['w/*'], permissions: ['read', 'write'] });
    const ok = await e.oidc(await e.idp.token(github('org/writer')), 'PUT', '/v1/secrets/w/x', { data: { v: 'from ci' } });
    expect(ok.status, ok.text).to.equal(200);
    // A body on a route that takes none is refused unread.
    expect((await e.oidc(token, 'GET', '/v1/whoami', { junk: 'x'.repeat(100) })).status).to.equal(413);
  });

  it('health and readiness need no token and say nothing more than ok', async () => {
    const h = await e.oidc(undefined, 'GET', '/healthz');
    expect(h.status).to.equal(200);
    const r = await e.oidc(undefined, 'GET', '/readyz');
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal({ status: 'ok' });
  });
});
