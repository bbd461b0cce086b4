import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { UnauthorizedError } from '../../nexus/errors.js';
import { parseSpiffeId, principalFromSvid } from '../../nexus/auth/spiffe.js';
import { x509 } from '../../nexus/pki/x509.js';
import { callOrRefused, createCA, type ClientCreds, type TestServer, startTestServer } from '../helpers/server.js';

function expectRefused(r: Awaited<ReturnType<typeof callOrRefused>>, what: string): void {
  if (r instanceof Error) return; // refused at the TLS handshake
  expect(r.status, `${what}: ${r.text}`).to.equal(401);
  expect(r.body.error.code).to.equal('unauthorized');
}

describe('mTLS port: SPIFFE X509-SVID identity', function () {
  this.timeout(30_000);
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.stop());

  it('accepts a valid SVID of the trust domain', async () => {
    const creds = await t.svid('spiffe://nexus.local/app/web');
    const r = await callOrRefused(t.port, creds, 'GET', '/healthz');
    expect(r).to.not.be.instanceOf(Error);
    expect((r as { status: number }).status).to.equal(200);
  });

  it('refuses a connection without a client certificate at the handshake', async () => {
    const r = await callOrRefused(t.port, { ca: t.caPem }, 'GET', '/healthz');
    expect(r).to.be.instanceOf(Error);
  });

  it('refuses a certificate from another CA', async () => {
    const other = await createCA('other');
    const creds: ClientCreds = { ...(await t.issue({ uris: ['spiffe://nexus.local/pilot'] }, other)) };
    const r = await callOrRefused(t.port, creds, 'GET', '/healthz');
    expect(r).to.be.instanceOf(Error);
  });

  it('refuses an expired certificate', async () => {
    const creds = await t.issue({ uris: ['spiffe://nexus.local/pilot'], notBefore: new Date(Date.now() - 2 * 86400e3), notAfter: new Date(Date.now() - 86400e3) });
    expectRefused(await callOrRefused(t.port, creds, 'GET', '/healthz'), 'expired');
  });

  it('refuses a CA certificate presented as a leaf', async () => {
    const creds = await t.issue({ uris: ['spiffe://nexus.local/pilot'], isCA: true });
    expectRefused(await callOrRefused(t.port, creds, 'GET', '/v1/secrets'), 'CA as leaf');
  });

  it('refuses two URI SANs, and none', async () => {
    expectRefused(await callOrRefused(t.port, await t.issue({ uris: ['spiffe://nexus.local/pilot', 'spiffe://nexus.local/other'] }), 'GET', '/v1/secrets'), 'two URIs');
    expectRefused(await callOrRefused(t.port, await t.issue({ uris: [], dns: ['pilot.local'] }), 'GET', '/v1/secrets'), 'no URI');
  });

  it('refuses a SPIFFE ID of another trust domain', async () => {
    expectRefused(await callOrRefused(t.port, await t.svid('spiffe://evil.example/pilot'), 'GET', '/v1/secrets'), 'other td');
  });

  it('refuses malformed SPIFFE IDs', async () => {
    for (const id of ['spiffe://nexus.local/a/../pilot', 'SPIFFE://nexus.local/pilot', 'spiffe://Nexus.Local/pilot', 'spiffe://nexus.local:443/pilot', 'https://nexus.local/pilot', 'spiffe://nexus.local/pilot/']) {
      expectRefused(await callOrRefused(t.port, await t.svid(id), 'GET', '/v1/secrets'), id);
    }
  });

  it('refuses a leaf without digitalSignature key usage', async () => {
    const creds = await t.issue({ uris: ['spiffe://nexus.local/pilot'], keyUsage: x509.KeyUsageFlags.keyEncipherment });
    expectRefused(await callOrRefused(t.port, creds, 'GET', '/v1/secrets'), 'no digitalSignature');
  });

  it('works out an SVID once per certificate and trust domain, refusals included', async () => {
    const der = (pem: string) => Buffer.from(new X509Certificate(pem).raw);
    const reason = (fn: () => unknown) => {
      try {
        fn();
        return 'accepted';
      } catch (err) {
        return err instanceof UnauthorizedError ? err.reason : `unexpected ${(err as Error).message}`;
      }
    };
    const good = der((await t.svid('spiffe://nexus.local/app/cached')).cert);
    const first = principalFromSvid(good, 'nexus.local');
    expect(principalFromSvid(Buffer.from(good), 'nexus.local'), 'the same certificate: the verdict kept').to.equal(first);
    expect(first.spiffeId).to.equal('spiffe://nexus.local/app/cached');
    expect(reason(() => principalFromSvid(good, 'other.example')), 'another trust domain is another verdict').to.equal('svid.trust_domain=nexus.local');
    const other = der((await t.svid('spiffe://nexus.local/app/other')).cert);
    expect(principalFromSvid(other, 'nexus.local').spiffeId).to.equal('spiffe://nexus.local/app/other');
    const ca = der((await t.issue({ uris: ['spiffe://nexus.local/pilot'], isCA: true })).cert);
    for (let i = 0; i < 2; i++) expect(reason(() => principalFromSvid(ca, 'nexus.local'))).to.equal('svid.is_ca');
  });

  it('parses SPIFFE IDs by the spec', () => {
    expect(parseSpiffeId('spiffe://nexus.local/a/b')).to.deep.equal({ id: 'spiffe://nexus.local/a/b', trustDomain: 'nexus.local', path: '/a/b' });
    expect(parseSpiffeId('spiffe://td')).to.have.property('trustDomain', 'td');
    for (const bad of ['spiffe://', 'spiffe:///a', 'spiffe://u@td/a', 'spiffe://td/a?q=1', 'spiffe://td/a#f', 'spiffe://td//a', 'spiffe://td/./a', 'spiffe://td/a b', 'spiffe://t%64/a']) {
      expect(parseSpiffeId(bad), bad).to.have.property('invalid');
    }
  });
});
