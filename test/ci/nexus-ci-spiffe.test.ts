import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../nexus/log.js';
import { createCA, issueCert, type Issuer, type LeafSpec } from '../../nexus/pki/x509.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { ROOT, runNode, tempDir, testConfig } from '../helpers/env.js';
import { gitlab } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call, type ClientCreds } from '../helpers/server.js';
import { startWorkloadApi, svidFrom, type TestWorkloadApi } from '../helpers/workload-api.js';

// The committed bundle, as CI images run it: the tests exercise the build's
// split (nexus-ci.mjs alone for JWTs, workload-api.mjs beside it for sockets).
const DIST = path.join(ROOT, 'scripts/ci/dist');
const nexusCi = (args: string[], env: Record<string, string>, bin = path.join(DIST, 'nexus-ci.mjs')) => runNode([bin, ...args], env);

const RUNNER_ID = 'spiffe://nexus.local/ci/runner';
const oneLine = (stderr: string) => expect(stderr.trim().split('\n'), stderr).to.have.length(1);

/** A Nexus (mTLS port only) serving `spec` from `ca` as its server certificate, and an admin SVID for it. */
async function nexusWithServerCert(ca: Issuer, spec: LeafSpec): Promise<{ server: RunningServer; port: number; admin: ClientCreds }> {
  const dir = tempDir('nexus-ci-sid');
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text, { mode: 0o600 });
    return path.join(dir, name);
  };
  const leaf = await issueCert(ca, spec);
  const admin = await issueCert(ca, { uris: ['spiffe://nexus.local/pilot'] });
  const caPem = ca.cert.toString('pem');
  const server = await startServer(
    testConfig(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_TLS_CA: write('ca.pem', caPem), NEXUS_TLS_CERT: write('server.crt', leaf.certPem), NEXUS_TLS_KEY: write('server.key', leaf.keyPem) }),
    silentLogger(),
  );
  return { server, port: server.mtls.address().port, admin: { cert: admin.certPem, key: admin.keyPem, ca: caPem } };
}

describe('nexus-ci with the SPIFFE Workload API (SPIFFE_ENDPOINT_SOCKET, --spiffe-socket)', function () {
  this.timeout(120_000);
  let env: OidcEnv;
  let agent: TestWorkloadApi;
  let dir: string;
  let mtlsUrl: string;
  let oidcUrl: string;
  const servers: RunningServer[] = [];
  const agents: TestWorkloadApi[] = [];
  const secret = (s: string) => ['--secret', s];

  before(async () => {
    env = await startOidcEnv();
    mtlsUrl = `https://127.0.0.1:${env.t.port}`;
    oidcUrl = `https://127.0.0.1:${env.port}`;
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'svid-db-pw' } });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/multi', { data: { text: 'a\nb', user: 'u1' } });
    await env.admin('PUT', '/v1/secrets/ci/other/db', { data: { password: 'not-yours' } });
    // What `pilot policy put ci-runner --spiffe-id ... --path 'ci/acme/api/*' --perm read` makes.
    const p = await env.admin('PUT', '/v1/policies/ci-runner', { spiffe_id: RUNNER_ID, paths: ['ci/acme/api/*'], permissions: ['read'] });
    expect(p.status, p.text).to.be.oneOf([200, 201]);
    const r = await env.admin('PUT', '/v1/oidc/roles/gitlab-main', { issuer: 'ci', bound_claims: { namespace_path: 'acme', ref: 'main', ref_protected: 'true' }, paths: ['ci/{{claims.project_path}}/*'], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
    // The runner's agent: SVIDs from the same CA as Nexus's (one trust domain), the CA as bundle.
    agent = await startWorkloadApi(await svidFrom(env.t.ca, RUNNER_ID));
    agents.push(agent);
    dir = tempDir('nexus-ci-spiffe');
  });
  after(async () => {
    for (const s of servers) await s.stop(1000);
    for (const a of agents) await a.stop();
    await env?.stop();
  });

  describe('SVID mode: no JWT, a socket: the mTLS port with the SVID as client certificate', () => {
    it('a subtree line (PATH/** | PREFIX_): the paths listed, then each read; one the SVID may list but not read is passed over', async () => {
      for (const [p, v] of [['app/a', 'svid-a'], ['app/b', 'svid-b'], ['ops/x', 'svid-hidden']]) await env.admin('PUT', `/v1/secrets/ci/acme/svid/${p}`, { data: { v } });
      expect((await env.admin('PUT', '/v1/policies/ci-runner-tree-list', { spiffe_id: RUNNER_ID, paths: ['ci/acme/svid/**'], permissions: ['list'] })).status).to.be.oneOf([200, 201]);
      expect((await env.admin('PUT', '/v1/policies/ci-runner-tree-read', { spiffe_id: RUNNER_ID, paths: ['ci/acme/svid/app/*'], permissions: ['read'] })).status).to.be.oneOf([200, 201]);
      const out = path.join(dir, 'tree.json');
      const r = await nexusCi(['--url', mtlsUrl, ...secret('ci/acme/svid/** | T_'), '--format', 'json', '--out', out], { SPIFFE_ENDPOINT_SOCKET: agent.endpoint });
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(fs.readFileSync(out, 'utf8'))).to.deep.equal({ T_APP_A_V: 'svid-a', T_APP_B_V: 'svid-b' });
    });

    it('reads secrets granted to the SVID by a SPIFFE policy; values reach only the child; nothing is printed', async () => {
      const seen = path.join(dir, 'seen.json');
      const child = `require('fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify({p: process.env.DB_PASSWORD, t: process.env.M_TEXT, u: process.env.M_USER})); process.exit(3)`;
      const r = await nexusCi(['--url', mtlsUrl, ...secret('ci/acme/api/db password | DB_PASSWORD'), ...secret('ci/acme/api/multi | M_'), 'exec', '--', process.execPath, '-e', child], { SPIFFE_ENDPOINT_SOCKET: agent.endpoint });
      expect(r.code, r.stderr).to.equal(3);
      expect(JSON.parse(fs.readFileSync(seen, 'utf8'))).to.deep.equal({ p: 'svid-db-pw', t: 'a\nb', u: 'u1' });
      expect(r.stdout).to.equal('');
      expect(r.stderr).to.equal('');
    });

    it('--spiffe-socket (a bare path) wins over $SPIFFE_ENDPOINT_SOCKET; $NEXUS_URL is the mTLS port', async () => {
      const out = path.join(dir, 'svid.json');
      const r = await nexusCi(['--spiffe-socket', agent.socket, ...secret('ci/acme/api/db password | DB_PASSWORD'), '--format', 'json', '--out', out], { SPIFFE_ENDPOINT_SOCKET: '/nonexistent/agent.sock', NEXUS_URL: mtlsUrl });
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(fs.readFileSync(out, 'utf8'))).to.deep.equal({ DB_PASSWORD: 'svid-db-pw' });
    });

    it('a path no policy grants the SVID: 403, exit 1 naming the secret; the command never runs', async () => {
      const marker = path.join(dir, 'ran');
      const r = await nexusCi(['--url', mtlsUrl, ...secret('ci/acme/api/db password | A'), ...secret('ci/other/db password | B'), 'exec', '--', 'touch', marker], { SPIFFE_ENDPOINT_SOCKET: agent.endpoint });
      expect(r.code).to.equal(1);
      oneLine(r.stderr);
      expect(r.stderr).to.match(/^nexus-ci: secret ci\/other\/db \("ci\/other\/db password \| B"\): denied \(403\)/);
      expect(r.stderr).to.not.include('not-yours');
      expect(fs.existsSync(marker)).to.equal(false);
    });

    it('usage errors (exit 2): --role with an SVID, a relative socket path, neither JWT nor socket', async () => {
      const base = ['--url', mtlsUrl, ...secret('ci/acme/api/db password | P'), 'exec', '--', 'true'];
      const role = await nexusCi(['--role', 'gitlab-main', ...base], { SPIFFE_ENDPOINT_SOCKET: agent.endpoint });
      expect(role.code).to.equal(2);
      expect(role.stderr).to.match(/--role/);
      const relative = await nexusCi(['--spiffe-socket', 'agent.sock', ...base], {});
      expect(relative.code).to.equal(2);
      expect(relative.stderr).to.match(/--spiffe-socket .*unix:\/\/\/absolute\/path, got "agent\.sock"/);
      const none = await nexusCi(base, {});
      expect(none.code).to.equal(2);
      expect(none.stderr).to.match(/--jwt-env NAME .*--spiffe-socket/);
    });
  });

  it('the server is authorized by SPIFFE ID: the right CA and IP SAN with another ID is refused; NEXUS_SERVER_SPIFFE_ID names the expected one', async () => {
    const ca = await createCA('runner trust domain CA');
    const other = await nexusWithServerCert(ca, { uris: ['spiffe://nexus.local/app/web'], ips: ['127.0.0.1'], dns: ['localhost'] });
    servers.push(other.server);
    const own = await startWorkloadApi(await svidFrom(ca, RUNNER_ID));
    agents.push(own);
    const args = ['--url', `https://127.0.0.1:${other.port}`, ...secret('ci/acme/api/db password | P'), 'exec', '--', 'true'];
    const r = await nexusCi(args, { SPIFFE_ENDPOINT_SOCKET: own.endpoint });
    expect(r.code).to.equal(1);
    oneLine(r.stderr);
    expect(r.stderr).to.include(`the server at https://127.0.0.1:${other.port} presented spiffe://nexus.local/app/web, expected spiffe://nexus.local/nexus (NEXUS_SERVER_SPIFFE_ID)`);
    // Pointed at that ID, the handshake passes and the server decides: no policy there, so 403.
    const pointed = await nexusCi(args, { SPIFFE_ENDPOINT_SOCKET: own.endpoint, NEXUS_SERVER_SPIFFE_ID: 'spiffe://nexus.local/app/web' });
    expect(pointed.code).to.equal(1);
    expect(pointed.stderr).to.match(/denied \(403\)/);
    expect((await call(other.port, other.admin, 'PUT', '/v1/policies/ci', { spiffe_id: RUNNER_ID, paths: ['ci/**'], permissions: ['read'] })).status).to.be.oneOf([200, 201]);
    expect((await call(other.port, other.admin, 'PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'x' } })).status).to.be.oneOf([200, 201]);
    const granted = await nexusCi(args, { SPIFFE_ENDPOINT_SOCKET: own.endpoint, NEXUS_SERVER_SPIFFE_ID: 'spiffe://nexus.local/app/web' });
    expect(granted.code, granted.stderr).to.equal(0);
    const bad = await nexusCi(args, { SPIFFE_ENDPOINT_SOCKET: own.endpoint, NEXUS_SERVER_SPIFFE_ID: 'https://nexus' });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/NEXUS_SERVER_SPIFFE_ID is not a SPIFFE ID/);
  });

  describe('JWT mode with a socket', () => {
    let jwt: Record<string, string>;
    before(async () => {
      jwt = { NEXUS_JWT: await env.idp.token(gitlab('acme/api')) };
    });
    const args = () => ['--jwt-env', 'NEXUS_JWT', '--url', oidcUrl, ...secret('ci/acme/api/db password | DB_PASSWORD'), 'exec', '--', process.execPath, '-e', 'process.exit(process.env.DB_PASSWORD === "svid-db-pw" ? 0 : 9)'];

    it('without --ca: the Workload API bundle is the CA and the OIDC port is authorized by SPIFFE ID', async () => {
      const r = await nexusCi(args(), { ...jwt, SPIFFE_ENDPOINT_SOCKET: agent.endpoint });
      expect(r.code, r.stderr).to.equal(0);
      const wrongId = await nexusCi(args(), { ...jwt, SPIFFE_ENDPOINT_SOCKET: agent.endpoint, NEXUS_SERVER_SPIFFE_ID: 'spiffe://nexus.local/other' });
      expect(wrongId.code).to.equal(1);
      oneLine(wrongId.stderr);
      expect(wrongId.stderr).to.include('presented spiffe://nexus.local/nexus, expected spiffe://nexus.local/other');
    });

    it('--ca (or $NEXUS_CA) wins: the socket is not used at all', async () => {
      const caFile = path.join(dir, 'ca.crt');
      fs.writeFileSync(caFile, env.t.caPem);
      const r = await nexusCi(['--ca', caFile, ...args()], { ...jwt, SPIFFE_ENDPOINT_SOCKET: '/nonexistent/agent.sock' });
      expect(r.code, r.stderr).to.equal(0);
      const fromEnv = await nexusCi(args(), { ...jwt, NEXUS_CA: caFile, SPIFFE_ENDPOINT_SOCKET: '/nonexistent/agent.sock' });
      expect(fromEnv.code, fromEnv.stderr).to.equal(0);
    });
  });

  describe('a Workload API that cannot give an SVID: exit 1, one line naming the socket, the command never runs', () => {
    const run = async (socket: string, jwtMode: boolean) => {
      const marker = path.join(dir, `ran-${Date.now()}`);
      const modeArgs = jwtMode ? ['--jwt-env', 'NEXUS_JWT', '--url', oidcUrl] : ['--url', mtlsUrl];
      const r = await nexusCi([...modeArgs, ...secret('ci/acme/api/db password | P'), 'exec', '--', 'touch', marker], { NEXUS_JWT: 'x.y.z', SPIFFE_ENDPOINT_SOCKET: socket });
      expect(r.code, r.stderr).to.equal(1);
      oneLine(r.stderr);
      expect(fs.existsSync(marker)).to.equal(false);
      return r.stderr;
    };

    it('a socket path that does not exist (SVID mode and JWT mode)', async () => {
      for (const jwtMode of [false, true]) {
        expect(await run('/nonexistent/agent.sock', jwtMode)).to.match(/^nexus-ci: cannot fetch an X509-SVID from the SPIFFE Workload API at \/nonexistent\/agent\.sock: unavailable/);
      }
    });

    it('an agent that goes away', async () => {
      const gone = await startWorkloadApi(await svidFrom(env.t.ca, RUNNER_ID));
      agents.push(gone);
      const ok = await nexusCi(['--url', mtlsUrl, ...secret('ci/acme/api/db password | P'), 'exec', '--', 'true'], { SPIFFE_ENDPOINT_SOCKET: gone.endpoint });
      expect(ok.code, ok.stderr).to.equal(0);
      await gone.stop();
      expect(await run(gone.endpoint, false)).to.match(/^nexus-ci: cannot fetch an X509-SVID from the SPIFFE Workload API at unix:\/\/.*agent\.sock: unavailable/);
    });

    it('an agent with no SVID for this workload (no registration entry matches)', async () => {
      const unregistered = await startWorkloadApi(null);
      agents.push(unregistered);
      expect(await run(unregistered.endpoint, false)).to.match(/^nexus-ci: cannot fetch an X509-SVID from the SPIFFE Workload API at unix:\/\/.*: permission_denied \(no identity issued\)/);
    });
  });

  it('nexus-ci.mjs copied alone still runs the JWT path; the socket path then names the file it lacks (exit 1)', async () => {
    const alone = tempDir('nexus-ci-alone');
    const bin = path.join(alone, 'nexus-ci.mjs');
    fs.copyFileSync(path.join(DIST, 'nexus-ci.mjs'), bin);
    const caFile = path.join(alone, 'ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    const jwt = await env.idp.token(gitlab('acme/api'));
    const r = await nexusCi(['--jwt-env', 'NEXUS_JWT', '--url', oidcUrl, '--ca', caFile, ...secret('ci/acme/api/db password | P'), 'exec', '--', 'true'], { NEXUS_JWT: jwt }, bin);
    expect(r.code, r.stderr).to.equal(0);
    const svid = await nexusCi(['--url', mtlsUrl, ...secret('ci/acme/api/db password | P'), 'exec', '--', 'true'], { SPIFFE_ENDPOINT_SOCKET: agent.endpoint }, bin);
    expect(svid.code).to.equal(1);
    oneLine(svid.stderr);
    expect(svid.stderr).to.match(/workload-api\.mjs.*beside .*nexus-ci\.mjs/);
  });

  it('--help shows the SVID mode and --spiffe-socket', async () => {
    const r = await nexusCi(['--help'], {});
    expect(r.code).to.equal(0);
    expect(r.stderr).to.include('--spiffe-socket');
    expect(r.stderr).to.include('SPIFFE_ENDPOINT_SOCKET');
  });
});
