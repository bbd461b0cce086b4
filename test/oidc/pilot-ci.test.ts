import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { github, startIdp, type TestIdp } from '../helpers/idp.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';
import { call } from '../helpers/server.js';

describe('CI flow end to end: npm start-style server, Pilot admin, a job reading with its JWT', function () {
  this.timeout(60_000);
  let dir: string;
  let srv: ServerProcess;
  let idp: TestIdp;
  let env: Record<string, string>;
  const pilot = (args: string[]) => runBin('pilot', args, env);

  before(async () => {
    idp = await startIdp();
    dir = tempDir('nexus-ci');
    srv = await spawnServer({ ...testEnv(dir), NEXUS_OIDC_ADDR: '127.0.0.1:0' });
    env = { NEXUS_DATA_DIR: dir, NEXUS_ADDR: `https://127.0.0.1:${srv.port}` };
  });
  after(async () => {
    srv?.child.kill('SIGTERM');
    await srv?.exited;
    await idp?.stop();
  });

  it('Pilot pointed at the OIDC port says which port it reached and which it needs', async () => {
    const r = await runBin('pilot', ['secret', 'get', 'ci/org/repo/deploy-key'], { ...env, NEXUS_ADDR: `https://127.0.0.1:${srv.oidcPort}` });
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.include(`127.0.0.1:${srv.oidcPort}`).and.include('OIDC port').and.include('mTLS port');
  });

  it('configures an issuer and a role with Pilot, then a job reads its secret with a JWT and with an exchanged token', async () => {
    expect(srv.oidcPort).to.be.a('number');
    expect((await pilot(['secret', 'put', 'ci/org/repo/deploy-key', 'key=deploy-123'])).code).to.equal(0);
    const iss = await pilot(['oidc', 'issuer', 'put', 'gha', '--issuer', idp.url, '--audience', 'nexus', '--alg', 'RS256', '--preset', 'github']);
    expect(iss.code, iss.stderr).to.equal(0);
    const role = await pilot(['oidc', 'role', 'put', 'deploy', '--issuer', 'gha', '--claim', 'repository=org/repo', '--claim', 'ref=refs/heads/main', '--claim', 'ref=refs/heads/release', '--path', 'ci/{{claims.repository}}/*', '--perm', 'read']);
    expect(role.code, role.stderr).to.equal(0);
    const shown = JSON.parse((await pilot(['--json', 'oidc', 'role', 'get', 'deploy'])).stdout);
    expect(shown.bound_claims).to.deep.equal({ repository: 'org/repo', ref: ['refs/heads/main', 'refs/heads/release'] });
    expect((await pilot(['oidc', 'issuer', 'list'])).stdout).to.include(idp.url);

    const ca = fs.readFileSync(path.join(dir, 'pki/ca.crt'), 'utf8');
    const jwt = await idp.token(github('org/repo', 'refs/heads/release'));
    const read = await call(srv.oidcPort!, { ca }, 'GET', '/v1/secrets/ci/org/repo/deploy-key', undefined, { headers: { Authorization: `Bearer ${jwt}` } });
    expect(read.status, read.text).to.equal(200);
    expect(read.body.data.key).to.equal('deploy-123');

    const ex = await call(srv.oidcPort!, { ca }, 'POST', '/v1/auth/token', { jwt });
    expect(ex.status).to.equal(200);
    const again = await call(srv.oidcPort!, { ca }, 'GET', '/v1/secrets/ci/org/repo/deploy-key', undefined, { headers: { Authorization: `Bearer ${ex.body.token}` } });
    expect(again.body.data.key).to.equal('deploy-123');
    const rev = await pilot(['oidc', 'role', 'revoke-tokens', 'deploy']);
    expect(rev.stdout).to.match(/revoked 1 exchanged token/);
    expect((await call(srv.oidcPort!, { ca }, 'GET', '/v1/whoami', undefined, { headers: { Authorization: `Bearer ${ex.body.token}` } })).status).to.equal(401);
    // Every token of the issuer, the day its key leaks.
    const tokens = await Promise.all([1, 2].map(async () => (await call(srv.oidcPort!, { ca }, 'POST', '/v1/auth/token', { jwt })).body.token as string));
    const byIssuer = await pilot(['oidc', 'token', 'revoke', '--issuer', 'gha']);
    expect(byIssuer.code, byIssuer.stderr).to.equal(0);
    expect(byIssuer.stdout.trim()).to.equal('revoked 2 exchanged token(s) of issuer gha');
    for (const t of tokens) expect((await call(srv.oidcPort!, { ca }, 'GET', '/v1/whoami', undefined, { headers: { Authorization: `Bearer ${t}` } })).status).to.equal(401);
    expect(JSON.parse((await pilot(['--json', 'oidc', 'token', 'revoke', '--issuer', 'gha', '--role', 'deploy'])).stdout)).to.deep.equal({ issuer: 'gha', role: 'deploy', revoked: 0 });
    expect((await pilot(['oidc', 'token', 'revoke'])).code).to.equal(2);

    // The log holds neither the JWT, the exchanged token nor the value.
    const logs = srv.logs();
    for (const s of [jwt, jwt.split('.')[2]!, ex.body.token, 'deploy-123']) expect(logs).to.not.include(s);
    expect((await pilot(['oidc', 'role', 'delete', 'deploy'])).code).to.equal(0);
    expect((await pilot(['oidc', 'issuer', 'delete', 'gha'])).code).to.equal(0);
  });
});
