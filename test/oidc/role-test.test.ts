import { expect } from 'chai';
import { generateKeyPair, SignJWT } from 'jose';
import fs from 'node:fs';
import path from 'node:path';
import { runBin, tempDir } from '../helpers/env.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call } from '../helpers/server.js';

interface Check {
  check: string;
  ok: boolean;
  detail: string;
}

describe('OIDC role dry run: POST /v1/oidc/roles:test explains every check and binding', function () {
  this.timeout(60_000);
  let e: OidcEnv;

  before(async () => {
    e = await startOidcEnv();
    const r = await e.admin('PUT', '/v1/oidc/roles/deploy', {
      issuer: 'ci',
      bound_claims: { repository: 'org/api', ref: 'refs/heads/main' },
      paths: ['ci/{{claims.repository}}/*'],
      permissions: ['read'],
    });
    expect(r.status, r.text).to.equal(201);
    await e.admin('PUT', '/v1/oidc/roles/other', { issuer: 'ci', bound_claims: { repository: 'org/web' }, paths: ['ci/org/web/*'], permissions: ['read', 'list'] });
  });
  after(async () => {
    await e?.stop();
  });

  const dryRun = (body: unknown) => e.admin('POST', '/v1/oidc/roles:test', body);
  const check = (checks: Check[], name: string) => checks.find((c) => c.check === name)!;
  const deploy = (roles: Array<{ role: string }>) => roles.find((r) => r.role === 'deploy') as unknown as { matched: boolean; bindings: Array<Record<string, unknown>>; grants: unknown[]; why?: string };

  it('a matching token: accepted, every check passes, the role matches with its expanded grants', async () => {
    const r = await dryRun({ jwt: await e.idp.token(github('org/api')) });
    expect(r.status, r.text).to.equal(200);
    expect(r.body.issuer).to.equal('ci');
    expect(r.body.token.accepted).to.equal(true);
    expect(r.body.token.reason).to.equal(null);
    const names = (r.body.token.checks as Check[]).map((c) => c.check);
    for (const n of ['format', 'header', 'iss', 'alg', 'signature', 'aud', 'azp', 'exp', 'nbf', 'iat', 'lifetime', 'typ']) expect(names, n).to.include(n);
    expect((r.body.token.checks as Check[]).every((c) => c.ok), JSON.stringify(r.body.token.checks)).to.equal(true);
    expect(check(r.body.token.checks, 'signature').detail).to.match(/key "key-1"/);
    const d = deploy(r.body.roles);
    expect(d.matched).to.equal(true);
    expect(d.grants).to.deep.equal([{ path: 'ci/org/api/*', permissions: ['read'] }]);
    expect(r.body.roles.find((x: { role: string }) => x.role === 'other').matched).to.equal(false);
  });

  it('a token failing on ref: the binding names the claim, its value and why', async () => {
    const r = await dryRun({ jwt: await e.idp.token(github('org/api', 'refs/heads/feature')) });
    expect(r.body.token.accepted).to.equal(true);
    const d = deploy(r.body.roles);
    expect(d.matched).to.equal(false);
    expect(d.bindings.find((b) => b.claim === 'ref')).to.deep.include({ ok: false, actual: 'refs/heads/feature', expected: 'refs/heads/main' });
    expect(d.bindings.find((b) => b.claim === 'repository')).to.deep.include({ ok: true, actual: 'org/api' });
    expect(d.why).to.match(/ref is "refs\/heads\/feature", not "refs\/heads\/main"/);
  });

  it('the wrong audience, an expired token, an unknown key: each names the failing check and the value', async () => {
    const aud = await dryRun({ jwt: await e.idp.token(github('org/api', 'refs/heads/main', { aud: 'someone-else' })) });
    expect(aud.body.token).to.include({ accepted: false, reason: 'wrong_audience' });
    expect(check(aud.body.token.checks, 'aud')).to.deep.include({ ok: false });
    expect(check(aud.body.token.checks, 'aud').detail).to.match(/someone-else/);

    const now = Math.floor(Date.now() / 1000);
    const expired = await dryRun({ jwt: await e.idp.token(github('org/api', 'refs/heads/main', { iat: now - 7200, exp: now - 3600 })) });
    expect(expired.body.token).to.include({ accepted: false, reason: 'expired' });
    expect(check(expired.body.token.checks, 'exp').ok).to.equal(false);
    expect(check(expired.body.token.checks, 'exp').detail).to.match(/expired: exp .* \(3\d\d\d s ago/);
    expect(check(expired.body.token.checks, 'aud').ok, 'the other checks are still judged').to.equal(true);

    const rogue = await generateKeyPair('RS256');
    const forged = await new SignJWT(github('org/api'))
      .setProtectedHeader({ alg: 'RS256', kid: 'rogue-key' })
      .setIssuer(e.idp.url)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(rogue.privateKey);
    const unknown = await dryRun({ jwt: forged });
    expect(unknown.body.token).to.include({ accepted: false, reason: 'unknown_kid' });
    expect(check(unknown.body.token.checks, 'signature')).to.deep.include({ ok: false });
    expect(check(unknown.body.token.checks, 'signature').detail).to.match(/unknown_kid: no key with kid "rogue-key" in issuer ci's key set/);
    // The roles are still explained on the unverified claims: what would match once the key is right.
    expect(deploy(unknown.body.roles).matched).to.equal(true);
  });

  it('the claims-only form gives the same role verdicts as the JWT with those claims', async () => {
    const claims = github('org/api', 'refs/heads/feature');
    const jwt = await dryRun({ jwt: await e.idp.token(claims) });
    const bare = await dryRun({ issuer: 'ci', claims });
    expect(bare.status, bare.text).to.equal(200);
    expect(bare.body).to.not.have.property('token');
    expect(bare.body.roles).to.deep.equal(jwt.body.roles);
    // One role only; a role of no such name is 404; both forms at once is 400.
    const one = await dryRun({ issuer: 'ci', claims, role: 'other' });
    expect(one.body.roles.map((r: { role: string }) => r.role)).to.deep.equal(['other']);
    expect((await dryRun({ issuer: 'ci', claims, role: 'nope' })).status).to.equal(404);
    expect((await dryRun({ issuer: 'ci', claims, jwt: 'a.b.c' })).status).to.equal(400);
    expect((await dryRun({ claims })).status).to.equal(400);
  });

  it('a non-admin SVID gets 403', async () => {
    const svid = await e.t.svid('spiffe://nexus.local/ci-runner');
    const r = await call(e.t.port, svid, 'POST', '/v1/oidc/roles:test', { issuer: 'ci', claims: github('org/api') });
    expect(r.status).to.equal(403);
  });

  it('a refused request on the OIDC port: the response stays redacted, the audit record has the short reason', async () => {
    const feature = await e.idp.token(github('org/api', 'refs/heads/feature', { jti: 'audit-me' }));
    const r = await e.oidc(feature, 'GET', '/v1/secrets/ci/org/api/db');
    expect(r.status).to.equal(403);
    expect(r.text).to.not.match(/refs\/heads\/feature|ref=/);
    const x = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: feature });
    expect(x.status).to.equal(403);
    expect(x.text).to.not.match(/refs\/heads\/feature/);
    const trail = fs
      .readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { port: string; status?: number; reason?: string; action: string });
    const refused = trail.filter((l) => l.port === 'oidc' && l.status === 403);
    expect(refused.map((l) => l.reason)).to.include('no_role_matched: deploy: ref="refs/heads/feature", other: repository="org/api"');
    expect(refused.find((l) => l.action === 'token.exchange')?.reason).to.match(/^no_role_matched: deploy: ref=/);
    // A 401 keeps its reason code (the check that failed).
    await e.oidc(await e.idp.token(github('org/api', 'refs/heads/main', { aud: 'x' })), 'GET', '/v1/whoami');
    expect(fs.readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8')).to.match(/"reason":"wrong_audience"/);
  });

  it('pilot oidc role test: a table for --jwt-file, --json for --claims', async () => {
    const env = { NEXUS_DATA_DIR: e.t.dir, NEXUS_ADDR: `https://127.0.0.1:${e.t.port}` };
    const file = path.join(tempDir('jwt'), 'token.jwt');
    fs.writeFileSync(file, `${await e.idp.token(github('org/api', 'refs/heads/feature'))}\n`);
    const t = await runBin('pilot', ['oidc', 'role', 'test', 'deploy', '--jwt-file', file], env);
    expect(t.code, t.stderr).to.equal(0);
    expect(t.stdout).to.match(/signature\s+ok/);
    expect(t.stdout).to.match(/role deploy: no match/);
    expect(t.stdout).to.match(/ref\s+refs\/heads\/main\s+"refs\/heads\/feature"\s+FAIL/);
    expect(t.stdout).to.not.match(/role other/);
    const j = await runBin('pilot', ['--json', 'oidc', 'role', 'test', '--issuer', 'ci', '--claims', JSON.stringify(github('org/api'))], env);
    expect(j.code, j.stderr).to.equal(0);
    const body = JSON.parse(j.stdout);
    expect(body.roles.find((r: { role: string }) => r.role === 'deploy').matched).to.equal(true);
    const bad = await runBin('pilot', ['oidc', 'role', 'test', '--claims', '{}'], env);
    expect(bad.code).to.equal(2);
  });
});
