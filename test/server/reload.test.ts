import { expect } from 'chai';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { call, type TestServer, startTestServer } from '../helpers/server.js';

function until(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  return (async () => {
    while (Date.now() < end) {
      if (await cond()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('condition not met in time');
  })();
}

function peerSerial(port: number, ca: string, cert: string, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/healthz', ca, cert, key, agent: false }, (res) => {
      resolve((res.socket as TLSSocket).getPeerCertificate().serialNumber);
      res.resume();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS reload without restart', function () {
  this.timeout(30_000);
  let t: TestServer;
  before(async () => {
    t = await startTestServer({}, process.env.DEBUG_RELOAD ? { log: (await import('../../nexus/log.js')).createLogger({ level: 'debug', stream: process.stderr }) } : {});
  });
  after(() => t.stop());

  it('picks up a new server certificate and a new trust bundle while a client stays connected', async () => {
    const pki = path.join(t.dir, 'pki');
    // A keep-alive client holds one connection open across the reload.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: t.caPem, cert: t.admin.cert, key: t.admin.key });
    const sockets = new Set<unknown>();
    const held = async () => {
      const r = await call(t.port, t.admin, 'GET', '/healthz', undefined, { agent });
      return r.status;
    };
    agent.on('free', (s) => sockets.add(s));
    expect(await held()).to.equal(200);
    const before = await peerSerial(t.port, t.caPem, t.admin.cert, t.admin.key);

    // 1. New server SVID from the same CA.
    const leaf = await issueCert(t.ca, { uris: ['spiffe://nexus.local/nexus'], ips: ['127.0.0.1'], dns: ['localhost'] });
    fs.writeFileSync(path.join(pki, 'server.key'), leaf.keyPem);
    fs.writeFileSync(path.join(pki, 'server.crt'), leaf.certPem);
    await until(async () => (await peerSerial(t.port, t.caPem, t.admin.cert, t.admin.key)) !== before);
    expect(await held()).to.equal(200);

    // 2. A second CA joins the bundle: its SVIDs are refused before, accepted after.
    const ca2 = await createCA('second');
    const fromCa2 = await issueCert(ca2, { uris: ['spiffe://nexus.local/pilot'] });
    const creds2 = { cert: fromCa2.certPem, key: fromCa2.keyPem, ca: t.caPem };
    await call(t.port, creds2, 'GET', '/healthz').then(
      () => expect.fail('a certificate from a CA outside the bundle was accepted'),
      () => undefined,
    );
    // Written the way a careless tool would: no newline between the PEM blocks.
    fs.writeFileSync(path.join(pki, 'ca.crt'), `${t.caPem.trim()}${ca2.cert.toString('pem')}`);
    await until(async () => (await call(t.port, creds2, 'GET', '/healthz').catch(() => ({ status: 0 }))).status === 200);

    // The held connection was never dropped: still one socket, still answering.
    expect(await held()).to.equal(200);
    expect(sockets.size).to.equal(1);
    agent.destroy();
  });

  it('keeps the previous files when the new ones are broken', async () => {
    const pki = path.join(t.dir, 'pki');
    fs.writeFileSync(path.join(pki, 'server.key'), 'not a key');
    await new Promise((r) => setTimeout(r, 600));
    expect((await call(t.port, t.admin, 'GET', '/healthz')).status).to.equal(200);
  });
});
