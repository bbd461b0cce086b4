import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { github, gitlab, startIdp } from '../helpers/idp.js';
import { runAction, startRunner } from '../helpers/runner.js';
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

  it("the action's ID-token request goes through the runner's proxy (https_proxy/http_proxy, CONNECT), as @actions/http-client's did", async () => {
    const idp = await startIdp();
    const runner = await startRunner(idp, github('acme/api'));
    const connects: string[] = [];
    // A CONNECT proxy that knows runner.invalid: without it the name does not resolve.
    const proxy = http.createServer((_q, s) => s.writeHead(405).end());
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      connects.push(req.url ?? '');
      const upstream = net.connect(Number((req.url ?? '').split(':')[1]), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const tokenUrl = runner.env.ACTIONS_ID_TOKEN_REQUEST_URL!.replace('127.0.0.1', 'runner.invalid');
      const port = new URL(tokenUrl).port;
      // Nexus itself is not there (max-tries 1): the step gets as far as the exchange, with the ID token in hand.
      const inputs = { url: 'https://127.0.0.1:1', audience: 'nexus', secrets: 'ci/acme/api/db password | X', 'max-tries': '1' };
      const direct = await runAction(runner, inputs, { ACTIONS_ID_TOKEN_REQUEST_URL: tokenUrl });
      expect(direct.stdout).to.match(/::error::.*Failed to get ID Token/);
      expect(runner.audiences).to.deep.equal([]);
      const proxied = await runAction(runner, inputs, { ACTIONS_ID_TOKEN_REQUEST_URL: tokenUrl, http_proxy: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, no_proxy: 'example.com' });
      expect(connects).to.deep.equal([`runner.invalid:${port}`]);
      expect(runner.audiences).to.deep.equal(['nexus']);
      expect(proxied.stdout).to.match(/::error::.*cannot reach https:\/\/127\.0\.0\.1:1/);
      // no_proxy exempts the host: straight to runner.invalid again, which does not resolve.
      const exempt = await runAction(runner, inputs, { ACTIONS_ID_TOKEN_REQUEST_URL: tokenUrl, http_proxy: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, no_proxy: '.invalid' });
      expect(exempt.stdout).to.match(/::error::.*Failed to get ID Token/);
      expect(connects).to.have.length(1);
    } finally {
      await new Promise((r) => proxy.close(r));
      await runner.stop();
      await idp.stop();
    }
  });
});
