import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { call, callOrRefused, type ClientCreds, type Res, type TestServer, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

/** A keep-alive client that proves every request went over the one connection it opened. */
function heldConnection(port: number, creds: ClientCreds) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: creds.ca, cert: creds.cert, key: creds.key });
  const sockets = new Set<unknown>();
  agent.on('free', (s) => sockets.add(s));
  return {
    get: (p = '/healthz') => call(port, creds, 'GET', p, undefined, { agent }),
    connections: () => sockets.size,
    close: () => agent.destroy(),
  };
}

function expectRefused(r: Res | Error, what: string): void {
  if (r instanceof Error) return; // refused at the TLS handshake
  expect(r.status, `${what}: ${r.text}`).to.equal(401);
}

/** One TLS connection and one request; returns the session it got, whether it resumed one, and the status. */
function tlsRequest(port: number, creds: ClientCreds, session?: Buffer): Promise<{ session?: Buffer; reused: boolean; status: number | null; error?: string }> {
  return new Promise((resolve) => {
    let got: Buffer | undefined;
    let reused = false;
    let answer = '';
    const s = tls.connect({ host: '127.0.0.1', port, ca: creds.ca, cert: creds.cert, key: creds.key, servername: 'localhost', ...(session ? { session } : {}) });
    s.on('session', (x: Buffer) => (got = x));
    s.once('secureConnect', () => {
      reused = s.isSessionReused();
    });
    s.once('secureConnect', () => s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
    s.on('data', (d: Buffer) => (answer += d.toString()));
    const done = (error?: string) => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      resolve({ session: got, reused, status: m ? Number(m[1]) : null, ...(error ? { error } : {}) });
    };
    s.on('error', (e) => done(e.message));
    s.on('close', () => done());
  });
}

describe('mTLS port: an SVID is checked for the whole life of a connection', function () {
  this.timeout(40_000);
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.stop());

  const shortLived = (seconds: number) =>
    t.issue({ uris: ['spiffe://nexus.local/pilot'], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + seconds * 1000) });

  it('an SVID that expires while its keep-alive connection is open gets 401 on the next request', async () => {
    const creds = await shortLived(2);
    const notAfter = new X509Certificate(creds.cert).validTo;
    const conn = heldConnection(t.port, creds);
    try {
      expect((await conn.get()).status).to.equal(200);
      await until(() => Date.now() > Date.parse(notAfter) + 200, 'the SVID to expire');
      const r = await conn.get();
      expect(r.status, r.text).to.equal(401);
      expect(conn.connections(), 'the same connection carried both requests').to.equal(1);
    } finally {
      conn.close();
    }
  });

  it('session resumption never admits a certificate that has expired since', async () => {
    const creds = await shortLived(2);
    const notAfter = Date.parse(new X509Certificate(creds.cert).validTo);
    const first = await tlsRequest(t.port, creds);
    expect(first.status, first.error).to.equal(200);
    await until(() => Date.now() > notAfter + 200, 'the SVID to expire');
    const again = await tlsRequest(t.port, creds, first.session);
    expect(again.status === 200, `resumed: ${again.reused}, status ${again.status}`).to.equal(false);
    expect(again.reused, 'no session is resumed on the mTLS port').to.equal(false);
  });

  it('after a trust-bundle reload, an open connection whose chain no longer verifies is refused', async () => {
    const pki = path.join(t.dir, 'pki');
    const bundle = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    const ca2 = await createCA('second');
    const creds = { ...(await t.issue({ uris: ['spiffe://nexus.local/pilot'] }, ca2)), ca: t.caPem };
    fs.writeFileSync(path.join(pki, 'ca.crt'), `${bundle.trim()}\n${ca2.cert.toString('pem')}\n`);
    await until(async () => ((await callOrRefused(t.port, creds, 'GET', '/healthz')) as Res).status === 200, 'the second CA to be trusted');
    const conn = heldConnection(t.port, creds);
    const admin = heldConnection(t.port, t.admin);
    try {
      expect((await conn.get()).status).to.equal(200);
      expect((await admin.get()).status).to.equal(200);
      // The second CA leaves the bundle.
      fs.writeFileSync(path.join(pki, 'ca.crt'), bundle);
      await until(async () => (await callOrRefused(t.port, creds, 'GET', '/healthz')) instanceof Error, 'the second CA to be dropped');
      expectRefused(await conn.get().catch((e: Error) => e), 'held connection of a dropped CA');
      // A connection whose chain still verifies is untouched.
      expect((await admin.get()).status).to.equal(200);
      expect(admin.connections()).to.equal(1);
    } finally {
      conn.close();
      admin.close();
    }
  });

  it('an SVID under an intermediate CA (as SPIRE issues them) still verifies on every request', async () => {
    const mid = await issueCert(t.ca, { uris: [], isCA: true, commonName: 'intermediate', eku: [] });
    const leaf = await issueCert({ cert: mid.cert, key: mid.key }, { uris: ['spiffe://nexus.local/pilot'] });
    const conn = heldConnection(t.port, { cert: `${leaf.certPem}\n${mid.certPem}`, key: leaf.keyPem, ca: t.caPem });
    try {
      for (let i = 0; i < 2; i++) expect((await conn.get()).status).to.equal(200);
    } finally {
      conn.close();
    }
  });

  it('a connection that completed its handshake before a reload, but sent nothing yet, is checked against the new bundle', async () => {
    const pki = path.join(t.dir, 'pki');
    const bundle = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    const ca3 = await createCA('third');
    const creds = { ...(await t.issue({ uris: ['spiffe://nexus.local/pilot'] }, ca3)), ca: t.caPem };
    fs.writeFileSync(path.join(pki, 'ca.crt'), `${bundle.trim()}\n${ca3.cert.toString('pem')}\n`);
    await until(async () => ((await callOrRefused(t.port, creds, 'GET', '/healthz')) as Res).status === 200, 'the third CA to be trusted');
    const s = tls.connect({ host: '127.0.0.1', port: t.port, ca: creds.ca, cert: creds.cert, key: creds.key, servername: 'localhost' });
    s.on('error', () => {});
    await new Promise((r) => s.once('secureConnect', r));
    fs.writeFileSync(path.join(pki, 'ca.crt'), bundle);
    await until(async () => (await callOrRefused(t.port, creds, 'GET', '/healthz')) instanceof Error, 'the third CA to be dropped');
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    await new Promise((r) => s.once('close', r));
    expect(answer === '' || answer.startsWith('HTTP/1.1 401'), answer.split('\r\n')[0]).to.equal(true);
  });
});
