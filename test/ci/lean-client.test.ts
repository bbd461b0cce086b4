import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { gitlab } from '../helpers/idp.js';
import { ROOT, runNode, tempDir } from '../helpers/env.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

// What a job pays for the CI clients (issue 26): the bundles it loads, and the connections it opens.
const DIST = path.join(ROOT, 'scripts/ci/dist');

describe('CI clients: lean to start, one connection a job', function () {
  this.timeout(60_000);

  it('the action, its post step and nexus-ci load no HTTP library (undici, @actions/http-client): Node\'s own https only', () => {
    for (const f of ['action.mjs', 'action-post.mjs', 'nexus-ci.mjs']) {
      const text = fs.readFileSync(path.join(DIST, f), 'utf8');
      expect(text, f).to.not.match(/undici|actions\/http-client|HttpClient/);
      // A few tens of KiB of our own code and @actions/core's commands; undici alone was 415 KB.
      expect(Buffer.byteLength(text), f).to.be.below(64 * 1024);
    }
  });

  describe('nexus-ci exec against a real server', () => {
    let env: OidcEnv;
    let caFile: string;
    before(async () => {
      env = await startOidcEnv();
      await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'pw-1' } });
      await env.admin('PUT', '/v1/secrets/ci/acme/api/other', { data: { user: 'u-1' } });
      const r = await env.admin('PUT', '/v1/oidc/roles/gitlab-main', { issuer: 'ci', bound_claims: { namespace_path: 'acme' }, paths: ['ci/{{claims.project_path}}/*'], permissions: ['read'] });
      expect(r.status, r.text).to.equal(201);
      caFile = path.join(tempDir('nexus-ci-lean'), 'ca.crt');
      fs.writeFileSync(caFile, env.t.caPem);
    });
    after(() => env?.stop());

    it('exchanges, reads and gives the token back after the command on one TLS connection; NEXUS_CI_TRACE shows each step, never a value or token', async () => {
      const jwt = await env.idp.token(gitlab('acme/api'));
      const args = ['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--ca', caFile, '--secret', 'ci/acme/api/db password | DB_PASSWORD', '--secret', 'ci/acme/api/other user | U', 'exec', '--', 'true'];
      const r = await runNode([path.join(DIST, 'nexus-ci.mjs'), ...args], { NEXUS_JWT: jwt, NEXUS_CI_TRACE: '1' });
      expect(r.code, r.stderr).to.equal(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines.every((l) => l.startsWith('nexus-ci trace: ')), r.stderr).to.equal(true);
      expect(lines.filter((l) => l.endsWith(' connecting')), r.stderr).to.have.length(1);
      expect(lines.filter((l) => l.endsWith(' TLS handshake done')), r.stderr).to.have.length(1);
      const order = ['POST /v1/auth/token answered 200', 'GET /v1/secrets/ci/acme/api/db answered 200', 'GET /v1/secrets/ci/acme/api/other answered 200', 'command ended', 'POST /v1/auth/token/revoke-self answered 204', 'token given back'];
      const at = order.map((s) => lines.findIndex((l) => l.endsWith(s)));
      expect(at, r.stderr).to.not.include(-1);
      expect([...at].sort((a, b) => a - b)).to.deep.equal(at);
      for (const secret of ['pw-1', 'u-1', jwt]) expect(r.stderr).to.not.include(secret);
    });
  });
});
