import { expect } from 'chai';
import { exportJWK, generateKeyPair } from 'jose';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { ConfigError } from '../../nexus/errors.js';
import { silentLogger } from '../../nexus/log.js';
import { startServer } from '../../nexus/server.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { call } from '../helpers/server.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

/** A loopback IdP whose discovery document and JWKS each test sets as it needs. */
interface FakeIdp {
  url: string;
  discovery: Record<string, unknown> | null;
  jwks: { status: number; body: unknown };
  stop(): Promise<void>;
}

async function fakeIdp(): Promise<FakeIdp> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') return idp.discovery ? send(200, idp.discovery) : send(404, {});
    if (req.url === '/jwks') return send(idp.jwks.status, idp.jwks.body);
    send(404, {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const idp: FakeIdp = {
    url,
    discovery: { issuer: url, jwks_uri: `${url}/jwks` },
    jwks: { status: 200, body: { keys: [] } },
    stop: () => new Promise((r) => server.close(() => r())),
  };
  return idp;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('OIDC issuer PUT verifies discovery and JWKS before saving (unless "verify": false)', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let idp: FakeIdp;
  let rsa: Record<string, unknown>;
  let ec: Record<string, unknown>;
  let down: string;

  before(async () => {
    e = await startOidcEnv();
    idp = await fakeIdp();
    rsa = { ...(await exportJWK((await generateKeyPair('RS256', { extractable: true })).publicKey)), kid: 'r1' };
    ec = { ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey)), kid: 'e1' };
    down = `http://127.0.0.1:${await closedPort()}`;
  });
  after(async () => {
    await e?.stop();
    await idp?.stop();
  });
  beforeEach(() => {
    idp.discovery = { issuer: idp.url, jwks_uri: `${idp.url}/jwks` };
    idp.jwks = { status: 200, body: { keys: [rsa] } };
  });

  const put = (name: string, body: Record<string, unknown>) => e.admin('PUT', `/v1/oidc/issuers/${name}`, { audiences: ['nexus'], ...body });
  const refused = async (name: string, body: Record<string, unknown>, why: RegExp) => {
    const r = await put(name, body);
    expect(r.status, r.text).to.equal(400);
    expect(r.body.error.message).to.match(why);
    expect((await e.admin('GET', `/v1/oidc/issuers/${name}`)).status, 'nothing saved').to.equal(404);
  };

  it('an unreachable issuer URL: 400 saying discovery could not reach it', async () => {
    await refused('down', { issuer: down }, new RegExp(`cannot fetch the discovery document of ${down}.*connection refused`));
  });

  it('a discovery document naming another issuer: 400 naming both', async () => {
    idp.discovery = { issuer: 'https://elsewhere.example', jwks_uri: `${idp.url}/jwks` };
    await refused('mismatch', { issuer: idp.url }, /discovered issuer https:\/\/elsewhere\.example is not http:\/\/127\.0\.0\.1/);
  });

  it('no JWKS: discovery without jwks_uri, a JWKS URL that answers 404, a body that is no key set', async () => {
    idp.discovery = { issuer: idp.url };
    await refused('nojwks', { issuer: idp.url }, /no jwks_uri/);
    idp.discovery = { issuer: idp.url, jwks_uri: `${idp.url}/jwks` };
    idp.jwks = { status: 404, body: {} };
    await refused('nojwks', { issuer: idp.url }, /JWKS .*HTTP 404/);
    idp.jwks = { status: 200, body: { keys: 'none' } };
    await refused('nojwks', { issuer: idp.url, jwks_uri: `${idp.url}/jwks` }, /no keys array/);
  });

  it('a JWKS without a key usable for the issuer\'s algorithms: 400 naming them', async () => {
    idp.jwks = { status: 200, body: { keys: [ec, { ...rsa, use: 'enc' }, { ...rsa, alg: 'RS512' }] } };
    await refused('nokeys', { issuer: idp.url, algorithms: ['RS256'] }, /no key .*RS256/);
    // The EC key serves ES256: saved.
    const r = await put('nokeys', { issuer: idp.url, algorithms: ['RS256', 'ES256'] });
    expect(r.status, r.text).to.equal(201);
    expect(r.body).to.not.have.property('verify');
    await e.admin('DELETE', '/v1/oidc/issuers/nokeys');
  });

  it('"verify": false saves an issuer that cannot be reached (it is not stored as a field)', async () => {
    const r = await put('later', { issuer: down, verify: false });
    expect(r.status, r.text).to.equal(201);
    expect(r.body).to.not.have.property('verify');
    expect((await e.admin('GET', '/v1/oidc/issuers/later')).body).to.not.have.property('verify');
    expect((await put('later', { issuer: down, verify: 'no' })).status).to.equal(400);
  });

  it('/readyz on the mTLS port lists each issuer\'s key set, a failing one with its error, and stays ready', async () => {
    let ready = await e.admin('GET', '/readyz');
    for (let i = 0; i < 50 && ready.body.oidc_issuers?.later?.error === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ready = await e.admin('GET', '/readyz');
    }
    expect(ready.status, ready.text).to.equal(200);
    const ci = ready.body.oidc_issuers.ci;
    expect(ci.keys).to.equal(1);
    expect(Date.parse(ci.fetched_at)).to.be.a('number').and.not.NaN;
    expect(ci).to.not.have.property('error');
    expect(ready.body.oidc_issuers.later).to.include({ keys: 0, fetched_at: null });
    expect(ready.body.oidc_issuers.later.error).to.match(/cannot fetch the discovery document/);
    // The OIDC port shows no detail.
    expect((await e.oidc(undefined, 'GET', '/readyz')).body).to.deep.equal({ status: 'ok' });
  });

  it('pilot oidc issuer put: the 400 on one line (exit 1); --no-verify saves', async () => {
    const env = { NEXUS_DATA_DIR: e.t.dir, NEXUS_ADDR: `https://127.0.0.1:${e.t.port}` };
    const args = ['oidc', 'issuer', 'put', 'pilot-later', '--issuer', `${down}/p`, '--audience', 'nexus'];
    const r = await runBin('pilot', args, env);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/cannot fetch the discovery document/);
    const ok = await runBin('pilot', [...args, '--no-verify'], env);
    expect(ok.code, ok.stderr).to.equal(0);
    expect((await e.admin('GET', '/v1/oidc/issuers/pilot-later')).status).to.equal(200);
  });
});

describe('OIDC issuers from the config file are never fetched at start', function () {
  this.timeout(30_000);

  it('a start with an issuer nobody can reach succeeds, and the file has no "verify" key', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'nexus.json');
    const issuer = { issuer: `http://127.0.0.1:${await closedPort()}`, audiences: ['nexus'] };
    const env = testEnv(path.join(dir, 'data'), { NEXUS_CONFIG: file, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: '127.0.0.1:0' });
    fs.writeFileSync(file, JSON.stringify({ oidc: { issuers: { later: { ...issuer, verify: false } } } }));
    expect(() => new OidcPlugin().checkConfig(loadConfig(env))).to.throw(ConfigError, /verify/);
    fs.writeFileSync(file, JSON.stringify({ oidc: { issuers: { later: issuer } } }));
    const server = await startServer(loadConfig(env), silentLogger(), { plugins: [new OidcPlugin()] });
    try {
      const pki = path.join(dir, 'data', 'pki');
      const read = (f: string) => fs.readFileSync(path.join(pki, f), 'utf8');
      const r = await call(server.mtls.address().port, { ca: read('ca.crt'), cert: read('pilot.crt'), key: read('pilot.key') }, 'GET', '/v1/oidc/issuers/later');
      expect(r.status, r.text).to.equal(200);
    } finally {
      await server.stop(1000);
    }
  });
});
