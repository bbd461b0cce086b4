import { expect } from 'chai';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { webcrypto } from 'node:crypto';
import { createCA, issueCert, x509, type Issuer, type LeafSpec } from '../../nexus/pki/x509.js';
import { ROOT, runNode, tempDir } from '../helpers/env.js';
import { github, gitlab } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { runAction, startRunner, type Runner } from '../helpers/runner.js';

const BIN = path.join(ROOT, 'scripts/ci/dist/nexus-ci.mjs');
const nexusCi = (args: string[], env: Record<string, string>) => runNode([BIN, ...args], env);

/** What reached a stand-in server: every request, with its credential and body. */
interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

/** An HTTPS server on loopback with `spec`'s certificate from `ca`, answering like Nexus's OIDC port and recording every request. */
async function standIn(ca: Issuer, spec: LeafSpec): Promise<{ port: number; seen: Seen[]; stop(): Promise<void> }> {
  const leaf = await issueCert(ca, spec);
  const seen: Seen[] = [];
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body });
      if (req.url!.endsWith('/revoke-self')) return void res.writeHead(204).end();
      const answer = req.method === 'POST' ? { token: 'stolen', expires_in: 60 } : { path: 'x', version: 1, data: { password: 'from-the-stand-in' }, created_at: '' };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen, stop: () => new Promise((r) => server.close(() => r())) };
}

/** A CA shaped like SPIRE's: self-signed, naming its trust domain in a URI SAN. */
async function spireCa(trustDomain: string): Promise<Issuer> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${trustDomain} CA`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
    ],
  });
  return { cert, key: keys.privateKey };
}

describe('CI clients authorize the OIDC port by SPIFFE ID when the CA is a SPIFFE bundle, by host name otherwise', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let dir: string;
  let caFile: string;
  let jwt: Record<string, string>;
  let runner: Runner;
  let impostor: Awaited<ReturnType<typeof standIn>>;
  const stops: Array<() => Promise<void>> = [];
  const args = (url: string, ca = caFile) => ['--jwt-env', 'NEXUS_JWT', '--url', url, '--ca', ca, '--secret', 'ci/acme/api/db password | DB_PASSWORD', 'exec', '--', 'true'];

  before(async () => {
    env = await startOidcEnv();
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'real-pw' } });
    const r = await env.admin('PUT', '/v1/oidc/roles/gitlab-main', { issuer: 'ci', bound_claims: { namespace_path: 'acme' }, paths: ['ci/{{claims.project_path}}/*'], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
    await env.admin('PUT', '/v1/oidc/roles/api-main', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['ci/{{claims.repository}}/*'], permissions: ['read'] });
    dir = tempDir('nexus-ci-server-id');
    caFile = path.join(dir, 'ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    jwt = { NEXUS_JWT: await env.idp.token(gitlab('acme/api')) };
    runner = await startRunner(env.idp, { ...github('acme/api'), aud: undefined });
    // Another workload of the same trust domain: an SVID from Nexus's own CA, with Nexus's host name and IP.
    impostor = await standIn(env.t.ca, { uris: ['spiffe://nexus.local/impostor'], dns: ['localhost'], ips: ['127.0.0.1'] });
    stops.push(impostor.stop);
  });
  beforeEach(() => {
    impostor.seen.length = 0;
    fs.writeFileSync(runner.env.GITHUB_ENV!, '');
  });
  after(async () => {
    for (const stop of stops) await stop();
    await runner?.stop();
    await env?.stop();
  });

  it('nexus-ci: an SVID from the same bundle with the right DNS and IP SANs is refused; the JWT is never sent', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const r = await nexusCi(args(`https://${host}:${impostor.port}`), jwt);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.include(`the server at https://${host}:${impostor.port} presented spiffe://nexus.local/impostor, expected spiffe://nexus.local/nexus (NEXUS_SERVER_SPIFFE_ID)`);
      expect(impostor.seen, host).to.deep.equal([]);
    }
  });

  it('nexus-ci: the real OIDC port (spiffe://nexus.local/nexus) passes; NEXUS_SERVER_SPIFFE_ID names another expected ID', async () => {
    const ok = await nexusCi(args(`https://localhost:${env.port}`), jwt);
    expect(ok.code, ok.stderr).to.equal(0);
    const wrong = await nexusCi(args(`https://localhost:${env.port}`), { ...jwt, NEXUS_SERVER_SPIFFE_ID: 'spiffe://nexus.local/nexus-eu' });
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.include('presented spiffe://nexus.local/nexus, expected spiffe://nexus.local/nexus-eu');
    const bad = await nexusCi(args(`https://localhost:${env.port}`), { ...jwt, NEXUS_SERVER_SPIFFE_ID: 'nexus' });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/NEXUS_SERVER_SPIFFE_ID is not a SPIFFE ID/);
  });

  it('the action: the impostor is refused and receives nothing; the real port passes', async () => {
    const base = { ca: env.t.caPem, audience: 'nexus', secrets: 'ci/acme/api/db password | DB_PASSWORD' };
    const r = await runAction(runner, { ...base, url: `https://localhost:${impostor.port}` });
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/::error::.*presented spiffe:\/\/nexus\.local\/impostor, expected spiffe:\/\/nexus\.local\/nexus/);
    expect(impostor.seen).to.deep.equal([]);
    expect(runner.githubEnv()).to.deep.equal({});
    const ok = await runAction(runner, { ...base, url: `https://localhost:${env.port}` });
    expect(ok.code, ok.stdout).to.equal(0);
    expect(runner.githubEnv()).to.deep.equal({ DB_PASSWORD: 'real-pw' });
    // server-spiffe-id (or NEXUS_SERVER_SPIFFE_ID in the job's environment) names the expected ID.
    const named = await runAction(runner, { ...base, url: `https://localhost:${env.port}`, 'server-spiffe-id': 'spiffe://nexus.local/nexus-eu' });
    expect(named.code).to.equal(1);
    expect(named.stdout).to.include('expected spiffe://nexus.local/nexus-eu');
    const fromEnv = await runAction(runner, { ...base, url: `https://localhost:${env.port}` }, { NEXUS_SERVER_SPIFFE_ID: 'spiffe://nexus.local/nexus-eu' });
    expect(fromEnv.code).to.equal(1);
    expect(fromEnv.stdout).to.include('expected spiffe://nexus.local/nexus-eu');
    const asked = runner.audiences.length;
    const bad = await runAction(runner, { ...base, url: `https://localhost:${env.port}`, 'server-spiffe-id': 'nexus' });
    expect(bad.code).to.equal(1);
    expect(bad.stdout).to.match(/::error::nexus: NEXUS_SERVER_SPIFFE_ID is not a SPIFFE ID.*\(the input server-spiffe-id/);
    expect(runner.audiences.length, 'no token requested').to.equal(asked);
  });

  it('a SPIRE-shaped bundle (its CA names the trust domain): the expected ID is in that domain, and a leaf without one is refused whatever its host name', async () => {
    const spire = await spireCa('spire.test');
    const bundle = path.join(dir, 'spire-bundle.pem');
    fs.writeFileSync(bundle, spire.cert.toString('pem'));
    const nexus = await standIn(spire, { uris: ['spiffe://spire.test/nexus'] });
    const otherDomain = await standIn(spire, { uris: ['spiffe://other.test/nexus'], dns: ['localhost'] });
    const plain = await standIn(spire, { uris: [], dns: ['localhost'] });
    stops.push(nexus.stop, otherDomain.stop, plain.stop);
    // A URI SAN only, no DNS or IP SAN: as SPIRE issues server SVIDs.
    const ok = await nexusCi(args(`https://localhost:${nexus.port}`, bundle), jwt);
    expect(ok.code, ok.stderr).to.equal(0);
    const other = await nexusCi(args(`https://localhost:${otherDomain.port}`, bundle), jwt);
    expect(other.code).to.equal(1);
    expect(other.stderr).to.include('presented spiffe://other.test/nexus, expected spiffe://spire.test/nexus');
    const noId = await nexusCi(args(`https://localhost:${plain.port}`, bundle), jwt);
    expect(noId.code).to.equal(1);
    expect(noId.stderr).to.match(/is not an X509-SVID: it has 0 URI SANs/);
    expect([...otherDomain.seen, ...plain.seen]).to.deep.equal([]);
    // Two trust domains' bundles in one file: which one is Nexus's must be said.
    const two = path.join(dir, 'two-bundles.pem');
    fs.writeFileSync(two, [spire.cert.toString('pem'), (await spireCa('eu.spire.test')).cert.toString('pem')].join('\n'));
    const ambiguous = await nexusCi(args(`https://localhost:${nexus.port}`, two), jwt);
    expect(ambiguous.code).to.equal(2);
    expect(ambiguous.stderr).to.match(/several trust domains \(spire\.test, eu\.spire\.test\): set NEXUS_SERVER_SPIFFE_ID/);
    const said = await nexusCi(args(`https://localhost:${nexus.port}`, two), { ...jwt, NEXUS_SERVER_SPIFFE_ID: 'spiffe://spire.test/nexus' });
    expect(said.code, said.stderr).to.equal(0);
  });

  it("the dev PKI's CA names its trust domain, so a plain certificate it issued (no SPIFFE ID, Nexus's host name) is refused too", async () => {
    const plain = await standIn(env.t.ca, { uris: [], dns: ['localhost'], ips: ['127.0.0.1'] });
    stops.push(plain.stop);
    const r = await nexusCi(args(`https://localhost:${plain.port}`), jwt);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.match(/not an X509-SVID|expected spiffe:\/\/nexus\.local\/nexus/);
    expect(plain.seen).to.deep.equal([]);
  });

  it('a CA that issues ordinary TLS certificates (no SPIFFE ID in the leaf) keeps the host-name check', async () => {
    const web = await createCA('corporate web CA');
    const site = await standIn(web, { uris: [], dns: ['localhost'] });
    stops.push(site.stop);
    const webCa = path.join(dir, 'web-ca.crt');
    fs.writeFileSync(webCa, web.cert.toString('pem'));
    // The right name: the handshake passes and the request goes out (the stand-in answers like Nexus).
    const ok = await nexusCi(args(`https://localhost:${site.port}`, webCa), jwt);
    expect(ok.code, ok.stderr).to.equal(0);
    // The exchange, the read, and the token given back.
    expect(site.seen.map((s) => `${s.method} ${s.url}`)).to.deep.equal(['POST /v1/auth/token', 'GET /v1/secrets/ci/acme/api/db', 'POST /v1/auth/token/revoke-self']);
    // A name the certificate does not carry: refused before anything is sent.
    site.seen.length = 0;
    const wrong = await nexusCi(args(`https://127.0.0.1:${site.port}`, webCa), jwt);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(/127\.0\.0\.1.*(?:not in the cert's list|does not match)/i);
    expect(site.seen).to.deep.equal([]);
  });
});
