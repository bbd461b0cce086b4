import { expect } from 'chai';
import tls from 'node:tls';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

/** A TLS handshake with the given client options: the negotiated protocol and cipher, or the error. */
function handshake(port: number, opts: tls.ConnectionOptions): Promise<{ protocol: string | null; cipher: string } | Error> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts });
    s.once('secureConnect', () => {
      resolve({ protocol: s.getProtocol(), cipher: s.getCipher().name });
      s.destroy();
    });
    s.once('error', (err) => resolve(err));
  });
}

const CBC_TLS12 = 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA256:AES128-SHA';

describe('TLS: protocol versions and cipher suites on both ports', function () {
  this.timeout(30_000);

  for (const minVersion of ['default', '1.3'] as const) {
    describe(`NEXUS_TLS_MIN_VERSION ${minVersion}`, () => {
      let e: OidcEnv;
      before(async () => {
        e = await startOidcEnv(minVersion === '1.3' ? { NEXUS_TLS_MIN_VERSION: '1.3' } : {});
      });
      after(() => e.stop());

      const ports = () => [
        { name: 'mtls', port: e.t.port, creds: { ca: e.t.caPem, cert: e.t.admin.cert, key: e.t.admin.key } },
        { name: 'oidc', port: e.port, creds: { ca: e.t.caPem } },
      ];

      it('TLS 1.3 is offered', async () => {
        for (const p of ports()) {
          const r = await handshake(p.port, { ...p.creds, minVersion: 'TLSv1.3' });
          expect(r, p.name).to.not.be.instanceOf(Error);
          expect((r as { protocol: string }).protocol).to.equal('TLSv1.3');
        }
      });

      it('a TLS 1.2 client that offers only CBC suites is refused', async () => {
        for (const p of ports()) {
          const r = await handshake(p.port, { ...p.creds, maxVersion: 'TLSv1.2', ciphers: CBC_TLS12 });
          expect(r, `${p.name}: ${r instanceof Error ? '' : JSON.stringify(r)}`).to.be.instanceOf(Error);
        }
      });

      it(minVersion === '1.3' ? 'TLS 1.2 is refused, even with an AEAD suite' : 'TLS 1.2 with an AEAD suite is accepted', async () => {
        for (const p of ports()) {
          const r = await handshake(p.port, { ...p.creds, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305' });
          if (minVersion === '1.3') expect(r, p.name).to.be.instanceOf(Error);
          else {
            expect(r, `${p.name}: ${r instanceof Error ? r.message : ''}`).to.not.be.instanceOf(Error);
            expect((r as { protocol: string }).protocol).to.equal('TLSv1.2');
          }
        }
      });
    });
  }
});
