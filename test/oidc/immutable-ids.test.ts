import { expect } from 'chai';
import { runBin } from '../helpers/env.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { githubRoleBindings, githubSubject, roleLint } from '../../plugins/oidc/presets.js';

/** A GitHub repository as its tokens name it: ids, and the sub form GitHub uses for it. */
function repoToken(repository: string, ids: { repo: string; owner: string }, subForm: 'name' | 'id', ref = 'refs/heads/main'): Record<string, unknown> {
  const [owner, name] = repository.split('/');
  const sub = subForm === 'id' ? `repo:${owner}@${ids.owner}/${name}@${ids.repo}:ref:${ref}` : `repo:${repository}:ref:${ref}`;
  return github(repository, ref, { sub, repository_id: ids.repo, repository_owner_id: ids.owner });
}

describe('OIDC immutable-id bindings: the github preset binds repository ids; a lint warns of name-only roles', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  const env = () => ({ NEXUS_DATA_DIR: e.t.dir, NEXUS_ADDR: `https://127.0.0.1:${e.t.port}` });

  before(async () => {
    e = await startOidcEnv();
  });
  after(async () => {
    await e?.stop();
  });

  const whoami = async (claims: Record<string, unknown>) => (await e.oidc(await e.idp.token(claims), 'GET', '/v1/whoami')).status;

  it('pilot oidc role put --preset github --repo-id --owner-id binds the ids: a recreated repository with the same name is refused', async () => {
    const r = await runBin('pilot', ['oidc', 'role', 'put', 'api-ids', '--issuer', 'ci', '--preset', 'github', '--repo', 'acme/api', '--repo-id', '1001', '--owner-id', '77', '--path', 'ci/acme/api/*', '--perm', 'read'], env());
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.not.match(/warning/);
    const role = await e.admin('GET', '/v1/oidc/roles/api-ids');
    expect(role.body.bound_claims).to.deep.equal({ repository_id: '1001', repository_owner_id: '77' });
    expect(await whoami(repoToken('acme/api', { repo: '1001', owner: '77' }, 'name'))).to.equal(200);
    // Deleted and created again under the same name: a new id.
    expect(await whoami(repoToken('acme/api', { repo: '2002', owner: '77' }, 'name'))).to.equal(403);
    // And the dry run says which binding refused it, with the new id.
    const dry = await e.admin('POST', '/v1/oidc/roles:test', { issuer: 'ci', role: 'api-ids', claims: repoToken('acme/api', { repo: '2002', owner: '77' }, 'id') });
    expect(dry.body.roles[0].bindings.find((b: { claim: string }) => b.claim === 'repository_id')).to.deep.include({ ok: false, actual: '2002', expected: '1001' });
    expect(dry.body.roles[0].warnings).to.deep.equal([]);
  });

  it('both sub forms (repo:OWNER/REPO:... and repo:OWNER@ID/REPO@ID:...) are accepted by the preset role', async () => {
    expect(await whoami(repoToken('acme/api', { repo: '1001', owner: '77' }, 'name'))).to.equal(200);
    expect(await whoami(repoToken('acme/api', { repo: '1001', owner: '77' }, 'id'))).to.equal(200);
    expect(githubSubject('repo:acme@77/api@1001:ref:refs/heads/main')).to.deep.equal({ owner: 'acme', ownerId: '77', repo: 'api', repoId: '1001', rest: 'ref:refs/heads/main' });
    expect(githubSubject('repo:acme/api:environment:prod')).to.deep.include({ owner: 'acme', repo: 'api', ownerId: null, repoId: null, rest: 'environment:prod' });
    expect(githubSubject('project_path:g/p:ref_type:branch')).to.equal(null);
  });

  it('a name-only role: saved, with a warning in the response, in Pilot and in the dry run', async () => {
    const put = await e.admin('PUT', '/v1/oidc/roles/api-name', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['ci/acme/api/*'], permissions: ['read'] });
    expect(put.status, put.text).to.equal(201);
    expect(put.body.warnings).to.have.length(1);
    expect(put.body.warnings[0]).to.match(/role api-name binds its tenant only by name \(repository\).*offers repository_id/);
    // The id-bound role has none; GET never carries warnings.
    expect((await e.admin('PUT', '/v1/oidc/roles/api-ids', { issuer: 'ci', bound_claims: { repository_id: '1001' }, paths: ['ci/acme/api/*'], permissions: ['read'] })).body).to.not.have.property('warnings');
    expect((await e.admin('GET', '/v1/oidc/roles/api-name')).body).to.not.have.property('warnings');
    const dry = await e.admin('POST', '/v1/oidc/roles:test', { issuer: 'ci', role: 'api-name', claims: repoToken('acme/api', { repo: '1001', owner: '77' }, 'id') });
    expect(dry.body.roles[0].matched).to.equal(true);
    expect(dry.body.roles[0].warnings[0]).to.match(/only by name/);
    const p = await runBin('pilot', ['oidc', 'role', 'put', 'api-pilot', '--issuer', 'ci', '--preset', 'github', '--repo', 'acme/api', '--path', 'ci/acme/api/*', '--perm', 'read'], env());
    expect(p.code, p.stderr).to.equal(0);
    expect(p.stderr).to.match(/warning: binding acme\/api by name only/);
    expect(p.stderr).to.match(/warning: role api-pilot binds its tenant only by name/);
    expect((await e.admin('GET', '/v1/oidc/roles/api-pilot')).body.bound_claims).to.deep.equal({ repository: 'acme/api' });
  });

  it('the lint: an id claim, or sub in its id form, is enough; an issuer with no id claim gets no warning', () => {
    const issuer = { name: 'gh', tenant_claims: ['repository', 'repository_id', 'sub'] };
    const role = (bound_claims: Record<string, unknown>, bound_claims_glob: Record<string, string> = {}) => ({ name: 'r', bound_claims, bound_claims_glob });
    expect(roleLint(role({ repository: 'a/b' }), issuer)).to.have.length(1);
    expect(roleLint(role({}, { sub: 'repo:a/b:*' }), issuer)).to.have.length(1);
    expect(roleLint(role({ repository: 'a/b', repository_id: '1' }), issuer)).to.deep.equal([]);
    expect(roleLint(role({ sub: 'repo:a@1/b@2:ref:refs/heads/main' }), issuer)).to.deep.equal([]);
    expect(roleLint(role({}, { sub: 'repo:a@1/b@2:*' }), issuer)).to.deep.equal([]);
    expect(roleLint(role({ repository: 'a/b' }), { name: 'old', tenant_claims: ['repository', 'sub'] })).to.deep.equal([]);
    expect(() => githubRoleBindings({ repo: 'acme/api', repoId: 'x' })).to.throw(/--repo-id must be a number/);
    expect(() => githubRoleBindings({ repo: 'acme/api', ownerId: '1' })).to.throw(/--owner-id needs --repo-id/);
  });
});
