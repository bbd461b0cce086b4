import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { silentLogger } from '../../nexus/log.js';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { tempDir, testConfig } from '../helpers/env.js';
import { until } from '../helpers/wait.js';
import { startWorkloadApi, svidFrom, type TestWorkloadApi } from '../helpers/workload-api.js';

/** The serial of the certificate the server presents to a fresh handshake (SPIFFE-ID checked, no host name). */
function presented(port: number, client: { cert: string; key: string; ca: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...client, checkServerIdentity: () => undefined }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

describe('Nexus takes its server SVID from the SPIFFE Workload API (NEXUS_SPIFFE_SOCKET)', function () {
  this.timeout(60_000);
  let ca: Awaited<ReturnType<typeof createCA>>;
  let api: TestWorkloadApi;
  let server: RunningServer | null = null;
  before(async () => {
    ca = await createCA('test spire CA');
  });
  afterEach(async () => {
    await server?.stop(1000);
    server = null;
    await api?.stop();
  });

  it('serves the SVID (URI SAN only), follows a rotation without a restart', async () => {
    api = await startWorkloadApi(await svidFrom(ca, 'spiffe://nexus.local/nexus'));
    const dir = tempDir('nexus-spiffe');
    server = await startServer(testConfig(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_SPIFFE_SOCKET: api.endpoint }), silentLogger(), { tlsReloadIntervalMs: 100 });
    const leaf = await issueCert(ca, { uris: ['spiffe://nexus.local/pilot'] });
    const client = { cert: leaf.certPem, key: leaf.keyPem, ca: ca.cert.toString('pem') };
    const port = server.mtls.address().port;
    const first = await presented(port, client);
    const next = await svidFrom(ca, 'spiffe://nexus.local/nexus');
    const nextSerial = new X509Certificate(next.certPem).serialNumber;
    expect(first).to.not.equal(nextSerial);
    api.rotate(next);
    await until(async () => (await presented(port, client)) === nextSerial, 'the rotated server SVID');
  });

  it('refuses to start with an SVID of another trust domain, or without a reachable socket, naming it', async () => {
    api = await startWorkloadApi(await svidFrom(ca, 'spiffe://elsewhere.test/nexus'));
    const cfg = (socket: string) => testConfig(tempDir('nexus-spiffe'), { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_SPIFFE_SOCKET: socket });
    const wrongTd = await startServer(cfg(api.endpoint), silentLogger()).then(() => null, (e: Error) => e);
    expect(wrongTd?.message).to.match(/spiffe:\/\/elsewhere\.test\/nexus, not one of trust domain nexus\.local/);
    await api.stop();
    const gone = await startServer(cfg(api.endpoint), silentLogger()).then(() => null, (e: Error) => e);
    expect(gone?.message).to.include(api.endpoint).and.to.match(/unavailable/);
    expect(() => cfg('tcp://10.0.0.1:8081')).to.throw(/NEXUS_SPIFFE_SOCKET/);
  });
});
