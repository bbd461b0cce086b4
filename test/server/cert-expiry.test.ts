import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { tempDir } from '../helpers/env.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

const DAY = 86_400_000;

function gauge(text: string, listener: string): number | undefined {
  const m = text.match(new RegExp(`^nexus_tls_cert_expiry_timestamp_seconds\\{listener="${listener}"\\} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

const notAfterS = (pem: string | Buffer) => Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);

async function until(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not met in time');
}

describe('certificate expiry gauges', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  let oidcDir: string;
  const publicCa = createCA('public-ca-for-the-oidc-port');
  const scrape = async () => {
    const r = await e.admin('GET', '/metrics');
    expect(r.status).to.equal(200);
    return r.text;
  };

  before(async () => {
    // The OIDC port with a certificate of its own (the public-CA shape), so the two listeners' gauges differ.
    oidcDir = tempDir('nexus-oidc-tls');
    const leaf = await issueCert(await publicCa, { uris: [], dns: ['localhost'], ips: ['127.0.0.1'], notAfter: new Date(Date.now() + 20 * DAY) });
    fs.writeFileSync(path.join(oidcDir, 'oidc.crt'), leaf.certPem);
    fs.writeFileSync(path.join(oidcDir, 'oidc.key'), leaf.keyPem);
    e = await startOidcEnv({ NEXUS_OIDC_TLS_CERT: path.join(oidcDir, 'oidc.crt'), NEXUS_OIDC_TLS_KEY: path.join(oidcDir, 'oidc.key') });
  });
  after(() => e?.stop());

  it("exports each port's certificate and the trust bundle's earliest CA, as read from the files in use", async () => {
    const text = await scrape();
    expect(text).to.include('# TYPE nexus_tls_cert_expiry_timestamp_seconds gauge');
    const pki = path.join(e.t.dir, 'pki');
    expect(gauge(text, 'mtls')).to.equal(notAfterS(fs.readFileSync(path.join(pki, 'server.crt'))));
    expect(gauge(text, 'oidc')).to.equal(notAfterS(fs.readFileSync(path.join(oidcDir, 'oidc.crt'))));
    expect(gauge(text, 'trust_bundle')).to.equal(notAfterS(e.t.caPem));
    // Three different certificates: no gauge was copied from another.
    expect(new Set([gauge(text, 'mtls'), gauge(text, 'oidc'), gauge(text, 'trust_bundle')]).size).to.equal(3);
  });

  it('follows the certificates when they are reloaded, and takes the earliest CA of a bundle', async () => {
    const pki = path.join(e.t.dir, 'pki');
    const oidcLeaf = await issueCert(await publicCa, { uris: [], dns: ['localhost'], ips: ['127.0.0.1'], notAfter: new Date(Date.now() + 3 * DAY) });
    fs.writeFileSync(path.join(oidcDir, 'oidc.key'), oidcLeaf.keyPem);
    fs.writeFileSync(path.join(oidcDir, 'oidc.crt'), oidcLeaf.certPem);
    const mtlsLeaf = await issueCert(e.t.ca, { uris: ['spiffe://nexus.local/nexus'], ips: ['127.0.0.1'], dns: ['localhost'], notAfter: new Date(Date.now() + 2 * DAY) });
    fs.writeFileSync(path.join(pki, 'server.key'), mtlsLeaf.keyPem);
    fs.writeFileSync(path.join(pki, 'server.crt'), mtlsLeaf.certPem);
    // A second CA, expiring long before the dev CA, joins the bundle (after the dev CA: order must not matter).
    const shortCa = await createCA('short-lived', 30);
    fs.writeFileSync(path.join(pki, 'ca.crt'), `${e.t.caPem.trim()}\n${shortCa.cert.toString('pem')}`);
    const want = { mtls: notAfterS(mtlsLeaf.certPem), oidc: notAfterS(oidcLeaf.certPem), trust_bundle: notAfterS(shortCa.cert.toString('pem')) };
    await until(async () => {
      const text = await scrape();
      return gauge(text, 'mtls') === want.mtls && gauge(text, 'oidc') === want.oidc && gauge(text, 'trust_bundle') === want.trust_bundle;
    });
  });
});
