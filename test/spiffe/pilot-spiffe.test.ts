import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../nexus/log.js';
import { createCA, issueCert, type LeafSpec } from '../../nexus/pki/x509.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { runBin, tempDir, testConfig } from '../helpers/env.js';
import { startWorkloadApi, svidFrom, type TestWorkloadApi } from '../helpers/workload-api.js';

type CA = Awaited<ReturnType<typeof createCA>>;

/** A Nexus serving `spec` as its server certificate (from files), and the files of a Pilot SVID from the same CA. */
async function nexusWithCert(ca: CA, spec: LeafSpec): Promise<{ server: RunningServer; env: Record<string, string> }> {
  const dir = tempDir('nexus-sid');
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text, { mode: 0o600 });
    return path.join(dir, name);
  };
  const leaf = await issueCert(ca, spec);
  const pilot = await issueCert(ca, { uris: ['spiffe://nexus.local/pilot'] });
  const caFile = write('ca.pem', ca.cert.toString('pem'));
  const server = await startServer(
    testConfig(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_TLS_CA: caFile, NEXUS_TLS_CERT: write('server.crt', leaf.certPem), NEXUS_TLS_KEY: write('server.key', leaf.keyPem) }),
    silentLogger(),
  );
  return {
    server,
    env: { NEXUS_ADDR: `https://127.0.0.1:${server.mtls.address().port}`, NEXUS_CERT: write('pilot.crt', pilot.certPem), NEXUS_KEY: write('pilot.key', pilot.keyPem), NEXUS_CA: caFile },
  };
}

describe('Pilot authorizes Nexus by SPIFFE ID, not host name (files and the Workload API)', function () {
  this.timeout(120_000);
  let ca: CA;
  const running: RunningServer[] = [];
  const agents: TestWorkloadApi[] = [];
  before(async () => {
    ca = await createCA('test spire CA');
  });
  after(async () => {
    for (const s of running) await s.stop(1000);
    for (const a of agents) await a.stop();
  });
  const nexus = async (spec: LeafSpec) => {
    const n = await nexusWithCert(ca, spec);
    running.push(n.server);
    return n.env;
  };

  it('a server SVID with only a URI SAN works (no DNS or IP SAN needed)', async () => {
    const env = await nexus({ uris: ['spiffe://nexus.local/nexus'] });
    const put = await runBin('pilot', ['secret', 'put', 'a/b', 'k=v'], env);
    expect(put.code, put.stderr).to.equal(0);
    expect((await runBin('pilot', ['secret', 'get', 'a/b', '--field', 'k'], env)).stdout).to.equal('v');
  });

  it('a certificate with the matching IP SAN but another SPIFFE ID is refused, naming both IDs; NEXUS_SERVER_SPIFFE_ID points Pilot at it', async () => {
    const env = await nexus({ uris: ['spiffe://nexus.local/app/web'], ips: ['127.0.0.1'], dns: ['localhost'] });
    const r = await runBin('pilot', ['secret', 'list'], env);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.include('presented spiffe://nexus.local/app/web, expected spiffe://nexus.local/nexus');
    const pointed = await runBin('pilot', ['secret', 'list'], { ...env, NEXUS_SERVER_SPIFFE_ID: 'spiffe://nexus.local/app/web' });
    expect(pointed.code, pointed.stderr).to.equal(0);
    expect((await runBin('pilot', ['secret', 'list'], { ...env, NEXUS_SERVER_SPIFFE_ID: 'https://nexus' })).code).to.equal(2);
  });

  it('a server of another trust domain is refused, even from the same CA', async () => {
    const env = await nexus({ uris: ['spiffe://other.test/nexus'], ips: ['127.0.0.1'] });
    const r = await runBin('pilot', ['secret', 'list'], env);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('presented spiffe://other.test/nexus, expected spiffe://nexus.local/nexus');
    const other = await createCA('another CA');
    const foreign = await nexusWithCert(other, { uris: ['spiffe://nexus.local/nexus'], ips: ['127.0.0.1'] });
    running.push(foreign.server);
    const chain = await runBin('pilot', ['secret', 'list'], { ...foreign.env, NEXUS_CERT: env.NEXUS_CERT!, NEXUS_KEY: env.NEXUS_KEY!, NEXUS_CA: env.NEXUS_CA! });
    expect(chain.code).to.equal(1);
    expect(chain.stderr).to.match(/^pilot: TLS handshake with .* failed/);
  });

  it('end to end through the Workload API: server and Pilot SVIDs from agents, rotation, and an agent that goes away', async () => {
    const serverAgent = await startWorkloadApi(await svidFrom(ca, 'spiffe://nexus.local/nexus'));
    const pilotAgent = await startWorkloadApi(await svidFrom(ca, 'spiffe://nexus.local/pilot'));
    agents.push(serverAgent, pilotAgent);
    const dir = tempDir('nexus-wl');
    const server = await startServer(testConfig(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_SPIFFE_SOCKET: serverAgent.endpoint }), silentLogger(), { tlsReloadIntervalMs: 100 });
    running.push(server);
    const env = { NEXUS_ADDR: `https://127.0.0.1:${server.mtls.address().port}`, SPIFFE_ENDPOINT_SOCKET: pilotAgent.endpoint, NEXUS_DATA_DIR: tempDir('no-pki') };
    const put = await runBin('pilot', ['secret', 'put', 'wl/x', 'k=v1'], env);
    expect(put.code, put.stderr).to.equal(0);
    const who = JSON.parse((await runBin('pilot', ['whoami', '--json'], env)).stdout);
    expect(who).to.deep.include({ spiffe_id: 'spiffe://nexus.local/pilot', source: `the SPIFFE Workload API at ${pilotAgent.endpoint}` });
    // Both SVIDs rotate; Pilot keeps working (the server follows without a restart).
    serverAgent.rotate(await svidFrom(ca, 'spiffe://nexus.local/nexus'));
    pilotAgent.rotate(await svidFrom(ca, 'spiffe://nexus.local/pilot'));
    const get = await runBin('pilot', ['secret', 'get', 'wl/x', '--field', 'k'], env);
    expect(get.code, get.stderr).to.equal(0);
    expect(get.stdout).to.equal('v1');
    // --spiffe-socket overrides the environment.
    expect((await runBin('pilot', ['secret', 'get', 'wl/x', '--spiffe-socket', pilotAgent.socket], { ...env, SPIFFE_ENDPOINT_SOCKET: '/nonexistent.sock' })).code).to.equal(0);
    await pilotAgent.stop();
    const gone = await runBin('pilot', ['secret', 'get', 'wl/x'], env);
    expect(gone.code).to.equal(1);
    expect(gone.stderr.trim().split('\n')).to.have.length(1);
    expect(gone.stderr).to.match(/^pilot: cannot fetch an X509-SVID from the SPIFFE Workload API at unix:\/\/.*agent\.sock: unavailable/);
  });
});
