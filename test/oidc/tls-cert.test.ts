import { expect } from 'chai';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { loadConfig } from '../../nexus/config/index.js';
import { ConfigError } from '../../nexus/errors.js';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { tempDir, testEnv } from '../helpers/env.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

const NAME = 'nexus.ci.example.test';

/** The OIDC port reached as a CI runner would: by DNS name, verifying the name against `ca` (no IP in the URL). */
function peer(port: number, ca: string): Promise<{ status: number; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', servername: NAME, port, path: '/healthz', ca, agent: false, checkServerIdentity: (_h, cert) => tlsCheck(cert) }, (res) => {
      resolve({ status: res.statusCode ?? 0, serial: (res.socket as TLSSocket).getPeerCertificate().serialNumber });
      res.resume();
    });
    req.on('error', reject);
    req.end();
  });
}

// Checked against the DNS name, not the 127.0.0.1 we dial.
function tlsCheck(cert: tls.PeerCertificate): Error | undefined {
  return tls.checkServerIdentity(NAME, cert);
}

async function until(cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition not met in time');
}

describe('OIDC port: its own certificate (NEXUS_OIDC_TLS_CERT / NEXUS_OIDC_TLS_KEY)', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let dir: string;
  let publicCa: Awaited<ReturnType<typeof createCA>>;

  before(async () => {
    // A separate CA stands in for a public one; the dev PKI knows nothing of it.
    publicCa = await createCA('test public ca');
    const leaf = await issueCert(publicCa, { uris: [], dns: [NAME] });
    dir = tempDir('nexus-oidc-cert');
    fs.writeFileSync(path.join(dir, 'oidc.crt'), leaf.certPem);
    fs.writeFileSync(path.join(dir, 'oidc.key'), leaf.keyPem, { mode: 0o600 });
    env = await startOidcEnv({ NEXUS_OIDC_TLS_CERT: path.join(dir, 'oidc.crt'), NEXUS_OIDC_TLS_KEY: path.join(dir, 'oidc.key') });
  });
  after(() => env?.stop());

  it('serves the configured certificate on the OIDC port, verified by name against its own CA', async () => {
    const r = await peer(env.port, publicCa.cert.toString('pem'));
    expect(r.status).to.equal(200);
    // The dev CA does not vouch for the OIDC port any more ...
    await peer(env.port, env.t.caPem).then(
      () => expect.fail('the dev CA verified the OIDC port'),
      (err: Error) => expect(err.message).to.match(/certificate|issuer/i),
    );
    // ... while the mTLS port keeps its SPIFFE server SVID.
    const mtls = await new Promise<string>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: env.t.port, path: '/healthz', ca: env.t.caPem, cert: env.t.admin.cert, key: env.t.admin.key, agent: false }, (res) => {
        resolve((res.socket as TLSSocket).getPeerCertificate().subjectaltname ?? '');
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
    expect(mtls).to.include('URI:spiffe://nexus.local/nexus');
  });

  it('a job reads its secret through the public certificate', async () => {
    await env.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { password: 'pw-1' } });
    await env.admin('PUT', '/v1/oidc/roles/r', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/{{claims.repository}}/*'], permissions: ['read'] });
    const jwt = await env.idp.token({ sub: 'repo:org/repo', aud: 'nexus', repository: 'org/repo' });
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', servername: NAME, port: env.port, path: '/v1/secrets/ci/org/repo/db', ca: publicCa.cert.toString('pem'), agent: false, checkServerIdentity: (_h, c) => tlsCheck(c), headers: { Authorization: `Bearer ${jwt}` } },
        (res) => {
          let t = '';
          res.on('data', (c: Buffer) => (t += c.toString()));
          res.on('end', () => resolve(t));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body).data.password).to.equal('pw-1');
  });

  it('reloads the certificate when its files change, without a restart', async () => {
    const ca = publicCa.cert.toString('pem');
    const before = (await peer(env.port, ca)).serial;
    const next = await issueCert(publicCa, { uris: [], dns: [NAME] });
    fs.writeFileSync(path.join(dir, 'oidc.key'), next.keyPem);
    fs.writeFileSync(path.join(dir, 'oidc.crt'), next.certPem);
    await until(async () => (await peer(env.port, ca)).serial !== before);
    expect((await peer(env.port, ca)).serial.toLowerCase()).to.equal(next.cert.serialNumber.toLowerCase());
  });

  it('both or neither: one of the pair alone is a config error naming the missing one', () => {
    const keyOf = (extra: Record<string, string>) => {
      try {
        loadConfig(testEnv(tempDir(), extra));
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        return (err as ConfigError).key;
      }
      return 'none';
    };
    expect(keyOf({ NEXUS_OIDC_TLS_CERT: '/x/oidc.crt' })).to.equal('NEXUS_OIDC_TLS_KEY');
    expect(keyOf({ NEXUS_OIDC_TLS_KEY: '/x/oidc.key' })).to.equal('NEXUS_OIDC_TLS_CERT');
    const c = loadConfig(testEnv('/tmp/d', { NEXUS_OIDC_TLS_CERT: 'a.crt', NEXUS_OIDC_TLS_KEY: 'a.key' }), '/srv');
    expect(c.oidcTls).to.deep.equal({ cert: '/srv/a.crt', key: '/srv/a.key' });
    expect(loadConfig(testEnv('/tmp/d')).oidcTls).to.equal(null);
  });

  it('a missing or mismatched certificate stops start-up naming the setting', async () => {
    const other = await issueCert(publicCa, { uris: [], dns: [NAME] });
    fs.writeFileSync(path.join(dir, 'other.key'), other.keyPem);
    const plugin = new OidcPlugin();
    const named = (extra: Record<string, string>) => {
      try {
        plugin.checkConfig(loadConfig(testEnv(tempDir(), extra)));
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        expect((err as Error).message).to.not.include('PRIVATE KEY');
        return (err as ConfigError).key;
      }
      return 'none';
    };
    expect(named({ NEXUS_OIDC_TLS_CERT: path.join(dir, 'absent.crt'), NEXUS_OIDC_TLS_KEY: path.join(dir, 'oidc.key') })).to.equal('NEXUS_OIDC_TLS_CERT');
    expect(named({ NEXUS_OIDC_TLS_CERT: path.join(dir, 'oidc.crt'), NEXUS_OIDC_TLS_KEY: path.join(dir, 'other.key') })).to.equal('NEXUS_OIDC_TLS_CERT');
    expect(named({ NEXUS_OIDC_TLS_CERT: path.join(dir, 'oidc.crt'), NEXUS_OIDC_TLS_KEY: path.join(dir, 'oidc.key') })).to.equal('none');
  });
});
