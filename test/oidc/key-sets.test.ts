import { expect } from 'chai';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../../nexus/config/index.js';
import { createLogger } from '../../nexus/log.js';
import { startServer } from '../../nexus/server.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { call } from '../helpers/server.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';
import { github } from '../helpers/idp.js';
import { GITHUB_TENANT_CLAIMS, startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { until } from '../helpers/wait.js';

/** A loopback URL nothing answers on: an IdP behind a firewall. */
async function unreachable(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

let jti = 0;
function sign(key: Key, iss: string, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...claims, jti: `t${++jti}` })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(iss)
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(key.privateKey);
}

const auditReasons = (e: OidcEnv) =>
  fs
    .readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { port: string; reason?: string })
    .filter((r) => r.port === 'oidc' && r.reason)
    .map((r) => r.reason);

for (const backend of ['sqlite', 'postgres'] as const) {
describe(`OIDC key sets for IdPs Nexus cannot reach (jwks, jwks_file, jwks_stale_s) (${backend})`, function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let down: string;
  let dir: string;
  let db: TestDatabase | undefined;

  before(async function () {
    const env: Record<string, string> = {};
    if (backend === 'postgres') {
      db = await createTestDatabase(await requirePg(this));
      env.NEXUS_DATABASE_URL = db.url;
    }
    e = await startOidcEnv(env, { maxAgeMs: 300, cooldownMs: 200, timeoutMs: 1_000, fileCheckMs: 100 });
    down = await unreachable();
    dir = tempDir('jwks');
  });
  after(async () => {
    await e?.stop();
    await db?.drop();
  });

  const whoami = (token: string) => e.oidc(token, 'GET', '/v1/whoami');
  const role = (name: string, issuer: string) =>
    e.admin('PUT', `/v1/oidc/roles/${name}`, { issuer, bound_claims: { repository: 'org/api' }, paths: ['ci/org/api/*'], permissions: ['read'] });

  it('an issuer with jwks_file and no reachable discovery: saved (the file is checked, not the IdP) and its tokens verify', async () => {
    const k1 = await newKey('ghes-1');
    const file = path.join(dir, 'ghes.json');
    fs.writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
    const put = await e.admin('PUT', '/v1/oidc/issuers/ghes', { issuer: down, audiences: ['nexus'], algorithms: ['ES256'], jwks_file: file, tenant_claims: GITHUB_TENANT_CLAIMS });
    expect(put.status, put.text).to.equal(201);
    expect(put.body).to.include({ jwks_file: file, jwks_stale_s: 86400 });
    expect((await role('ghes-api', 'ghes')).status).to.equal(201);
    const r = await whoami(await sign(k1, down, github('org/api')));
    expect(r.status, r.text).to.equal(200);
    expect(r.body.roles).to.deep.equal(['ghes-api']);
    // A file that is not a key set, or holds a private key: refused naming the field, never quoting the file.
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, 'not json at all');
    const refused = await e.admin('PUT', '/v1/oidc/issuers/bad', { issuer: `${down}/bad`, audiences: ['nexus'], algorithms: ['ES256'], jwks_file: bad });
    expect(refused.status).to.equal(400);
    expect(refused.body.error.message).to.match(/key-set file .*bad\.json is not JSON/).and.not.match(/at all/);
    const priv = { ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)), kid: 'p' };
    expect((await e.admin('PUT', '/v1/oidc/issuers/bad', { issuer: `${down}/bad`, audiences: ['nexus'], algorithms: ['ES256'], jwks: { keys: [priv] } })).status).to.equal(400);
  });

  it('replacing the file\'s key is honoured without a restart: the new key verifies, the old one (and tokens exchanged from it) stop', async () => {
    const file = path.join(dir, 'rotate.json');
    const k1 = await newKey('rot-1');
    const k2 = await newKey('rot-2');
    fs.writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
    const iss = `${down}/rotate`;
    expect((await e.admin('PUT', '/v1/oidc/issuers/rotate', { issuer: iss, audiences: ['nexus'], algorithms: ['ES256'], jwks_file: file, tenant_claims: GITHUB_TENANT_CLAIMS })).status).to.equal(201);
    expect((await role('rotate-api', 'rotate')).status).to.equal(201);
    const old = await sign(k1, iss, github('org/api'));
    expect((await whoami(old)).status).to.equal(200);
    const ex = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await sign(k1, iss, github('org/api')) });
    expect(ex.status, ex.text).to.equal(200);
    expect((await whoami(ex.body.token)).status).to.equal(200);
    // An atomic replace, as a config-management tool does it.
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ keys: [k2.jwk] }));
    fs.renameSync(`${file}.tmp`, file);
    await until(async () => (await whoami(old)).status === 401, 'the old key to be dropped', 15_000);
    expect((await whoami(await sign(k2, iss, github('org/api')))).status).to.equal(200);
    expect((await whoami(ex.body.token)).status, 'a token exchanged from a JWT the dropped key signed').to.equal(401);
    expect(e.logs()).to.match(/issuer key-set file reloaded/);
  });

  it('an inline jwks beside an unreachable issuer verifies; metrics show its keys, age and fetch errors', async () => {
    const k = await newKey('inline-1');
    const iss = `${down}/inline`;
    const put = await e.admin('PUT', '/v1/oidc/issuers/inline', { issuer: iss, audiences: ['nexus'], algorithms: ['ES256'], jwks: { keys: [k.jwk] }, tenant_claims: GITHUB_TENANT_CLAIMS });
    expect(put.status, put.text).to.equal(201);
    expect(put.body.jwks.keys[0].kid).to.equal('inline-1');
    expect((await role('inline-api', 'inline')).status).to.equal(201);
    expect((await whoami(await sign(k, iss, github('org/api')))).status).to.equal(200);
    const m = (await e.admin('GET', '/metrics')).text;
    expect(m).to.match(/nexus_oidc_jwks_keys\{issuer="inline"\} 1/);
    expect(m).to.match(/nexus_oidc_jwks_age_seconds\{issuer="inline"\} [0-9.e-]+/);
    expect(m).to.match(/nexus_oidc_jwks_keys\{issuer="ci"\} 1/);
    // A missing key-set file counts as a failed load of that issuer.
    const gone = path.join(dir, 'gone.json');
    fs.writeFileSync(gone, JSON.stringify({ keys: [k.jwk] }));
    expect((await e.admin('PUT', '/v1/oidc/issuers/gone', { issuer: `${down}/gone`, audiences: ['nexus'], algorithms: ['ES256'], jwks_file: gone })).status).to.equal(201);
    fs.rmSync(gone);
    await until(async () => /nexus_oidc_jwks_fetch_errors_total\{issuer="gone"\} [1-9]/.test((await e.admin('GET', '/metrics')).text), 'a fetch error for issuer gone', 10_000);
  });

  it('pilot oidc issuer put --jwks-file: an absolute server path; a relative one is a usage error', async () => {
    const k = await newKey('pilot-1');
    const file = path.join(dir, 'pilot.json');
    fs.writeFileSync(file, JSON.stringify({ keys: [k.jwk] }));
    const env = { NEXUS_DATA_DIR: e.t.dir, NEXUS_ADDR: `https://127.0.0.1:${e.t.port}` };
    const args = ['oidc', 'issuer', 'put', 'pilot-ghes', '--issuer', `${down}/pilot`, '--audience', 'nexus', '--alg', 'ES256', '--preset', 'github', '--jwks-stale', '600'];
    const r = await runBin('pilot', [...args, '--jwks-file', file], env);
    expect(r.code, r.stderr).to.equal(0);
    expect((await e.admin('GET', '/v1/oidc/issuers/pilot-ghes')).body).to.include({ jwks_file: file, jwks_stale_s: 600 });
    const rel = await runBin('pilot', [...args, '--jwks-file', 'pilot.json'], env);
    expect(rel.code).to.equal(2);
    expect(rel.stderr).to.match(/--jwks-file must be an absolute path/);
  });

  it('with discovery and the IdP down, known keys verify inside the stale window and stop after it; one warning per issuer', async () => {
    const put = await e.admin('PUT', '/v1/oidc/issuers/ci', {
      issuer: e.idp.url,
      audiences: ['nexus'],
      algorithms: ['RS256'],
      tenant_claims: GITHUB_TENANT_CLAIMS,
      jwks_stale_s: 6,
    });
    expect(put.status, put.text).to.equal(200);
    expect((await role('ci-api', 'ci')).status).to.equal(201);
    const warnings = () => e.logs().split('\n').filter((l) => l.includes('"issuer":"ci"') && /could not refresh issuer keys/.test(l) && l.includes('"level":40')).length;
    const before = warnings();
    // Signed before the IdP goes down (the mock signs only while it serves); each one new to the verified-JWT cache.
    const pool = await Promise.all(Array.from({ length: 400 }, (_, i) => e.idp.token(github('org/api', 'refs/heads/main', { jti: `pool-${i}` }))));
    const unseen = () => pool.shift()!;
    // The window runs from the last fetch: make it now, just before the outage.
    const keys = e.plugin['registry']!.byName('ci')!;
    const fetched = keys.fetches;
    await until(async () => {
      expect((await whoami(unseen())).status).to.equal(200);
      return keys.fetches > fetched;
    }, 'a fresh fetch', 10_000);
    await e.idp.server.stop();
    try {
      // Inside the window: a JWT not seen before still verifies against the known key.
      // (Each use of stale keys starts a refresh in the background; a valid token never waits for it.)
      await until(async () => {
        expect((await whoami(unseen())).status).to.equal(200);
        return warnings() > before;
      }, 'a failed refresh', 10_000);
      // Past it: refused, the audit record says why.
      await until(async () => (await whoami(unseen())).status === 401, 'the stale window to end', 15_000);
      expect(auditReasons(e)).to.include('issuer_keys_stale');
      expect(warnings() - before, 'one warning for the outage, not one per refresh').to.equal(1);
      expect(e.logs()).to.match(/past their stale window/);
    } finally {
      await e.idp.server.start(Number(new URL(e.idp.url).port), '127.0.0.1');
    }
    await until(async () => (await whoami(await e.idp.token(github('org/api', 'refs/heads/main', { jti: `back-${Date.now()}` })))).status === 200, 'the IdP back', 15_000);
  });
});
}

// The config file declares key sets as the API does, and starts without calling any IdP.
describe('declarative config: an issuer with jwks_file, and the lint of its roles at start', function () {
  this.timeout(60_000);

  it('verifies tokens from the file\'s keys with the IdP unreachable; a name-only role is started with a warning', async () => {
    const dir = tempDir('seed-jwks');
    const down = await unreachable();
    const k = await newKey('seed-1');
    const jwks = path.join(dir, 'ghes.json');
    fs.writeFileSync(jwks, JSON.stringify({ keys: [k.jwk] }));
    const file = path.join(dir, 'nexus.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        oidc: {
          issuers: { ghes: { issuer: down, audiences: ['nexus'], algorithms: ['ES256'], jwks_file: jwks, jwks_stale_s: 3600, tenant_claims: GITHUB_TENANT_CLAIMS } },
          roles: { api: { issuer: 'ghes', bound_claims: { repository: 'org/api' }, paths: ['ci/org/api/*'], permissions: ['read'] } },
        },
      }),
    );
    const sink = new PassThrough();
    let logs = '';
    sink.on('data', (d: Buffer) => (logs += d.toString()));
    const plugin = new OidcPlugin();
    const env = testEnv(path.join(dir, 'data'), { NEXUS_CONFIG: file, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: '127.0.0.1:0' });
    const server = await startServer(loadConfig(env), createLogger({ level: 'info', stream: sink }), { plugins: [plugin] });
    try {
      const ca = fs.readFileSync(path.join(dir, 'data', 'pki', 'ca.crt'), 'utf8');
      const r = await call(plugin.addresses().oidc!.port, { ca }, 'GET', '/v1/whoami', undefined, { headers: { Authorization: `Bearer ${await sign(k, down, github('org/api'))}` } });
      expect(r.status, r.text).to.equal(200);
      expect(r.body.roles).to.deep.equal(['api']);
      expect(logs).to.match(/"role":"api".*role api binds its tenant only by name/);
    } finally {
      await server.stop(2000);
    }
  });
});
