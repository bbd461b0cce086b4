import { expect } from 'chai';
import http from 'node:http';
import { Socket } from 'node:net';
import tls from 'node:tls';
import nodeVault from 'node-vault';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import type { Res } from '../helpers/server.js';

/**
 * The requests the vault CLI itself sends (hashicorp/vault command/kv_get.go,
 * kv_list.go, kv_helpers.go and api/logical.go), replayed as raw HTTP:
 *   vault write auth/jwt/login role=R jwt=...   PUT /v1/auth/jwt/login (JSON body)
 *   vault kv get -mount=secret P                 GET /v1/sys/internal/ui/mounts/secret/P (older CLIs)
 *                                                or GET /v1/sys/mounts-all/secret/P (newer), then
 *                                                GET /v1/secret/data/P
 *   vault kv list -mount=secret P                the same preflight, then
 *                                                GET /v1/secret/metadata/P?list=true (X-Vault-Kv-Client: v2)
 *   vault kv metadata get -mount=secret P        the preflight, then GET /v1/secret/metadata/P
 * Every one carries X-Vault-Token and X-Vault-Request: true. The CLI treats a
 * 404 on the preflight as "KV v1" and a 404 on a list as "nothing there".
 * (`vault login -method=jwt` is not a CLI login method: Vault's loginHandlers
 * have no "jwt"; its docs log in with `vault write auth/jwt/login`.)
 */
describe('Vault CLI requests on the OIDC port (kv get, kv list, kv metadata, jwt login)', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let n = 0;
  const job = () => env.idp.token(github('acme/api', 'refs/heads/main', { sub: `repo:acme/api:cli-${++n}` }));
  const vault = (token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> =>
    env.oidc(undefined, method, path, body, { 'X-Vault-Request': 'true', ...(token ? { 'X-Vault-Token': token } : {}), ...headers });
  const login = async (role = 'api-ci'): Promise<string> => {
    const r = await vault(undefined, 'PUT', '/v1/auth/jwt/login', { role, jwt: await job() });
    expect(r.status, r.text).to.equal(200);
    return r.body.auth.client_token as string;
  };

  before(async () => {
    env = await startOidcEnv({ NEXUS_OIDC_SUBJECT_RPS: '50' });
    for (const p of ['ci/acme/api/db', 'ci/acme/api/deploy/key', 'ci/acme/api/deploy/cert', 'ci/acme/other/db', 'ci/acme/apiary/x']) {
      const r = await env.admin('PUT', `/v1/secrets/${p}`, { data: { v: p } });
      expect(r.status, r.text).to.equal(201);
    }
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { v: 'second' } });
    await env.admin('DELETE', '/v1/secrets/ci/acme/api/db?version=1');
    let r = await env.admin('PUT', '/v1/oidc/roles/api-ci', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['ci/acme/api/**'], permissions: ['read', 'list'] });
    expect(r.status, r.text).to.equal(201);
    // Matches the token but grants nothing useful here: read on a path that is not in this tree, and no list.
    r = await env.admin('PUT', '/v1/oidc/roles/api-narrow', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['elsewhere/*'], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
  });
  after(() => env?.stop());

  it('vault write auth/jwt/login (PUT) and curl --data (form content type, POST) both log in', async () => {
    const put = await vault(undefined, 'PUT', '/v1/auth/jwt/login', { role: 'api-ci', jwt: await job() });
    expect(put.status, put.text).to.equal(200);
    expect(put.body.auth.client_token).to.match(/^nxo_/);
    // curl --data '{...}' sends application/x-www-form-urlencoded; Vault ignores the content type.
    const form = await vault(undefined, 'POST', '/v1/auth/jwt/login', JSON.stringify({ role: 'api-ci', jwt: await job() }), { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(form.status, form.text).to.equal(200);
    expect(form.body.auth.policies).to.deep.equal(['api-ci']);
    const text = await vault(undefined, 'POST', '/v1/auth/jwt/login', JSON.stringify({ role: 'api-ci', jwt: await job() }), { 'Content-Type': 'text/plain' });
    expect(text.status, text.text).to.equal(200);
    // Not JSON at all is still a Vault-shaped 400.
    const junk = await vault(undefined, 'POST', '/v1/auth/jwt/login', 'role=api-ci&jwt=x', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(junk.status).to.equal(400);
    expect(junk.body).to.have.all.keys('errors');
  });

  it('vault kv get -mount=secret: the KV preflight answers KV v2 at secret/ (both preflight paths), then the read', async () => {
    const token = await login();
    for (const pre of ['/v1/sys/internal/ui/mounts/secret/ci/acme/api/db', '/v1/sys/mounts-all/secret/ci/acme/api/db', '/v1/sys/internal/ui/mounts/secret']) {
      const r = await vault(token, 'GET', pre);
      expect(r.status, `${pre} ${r.text}`).to.equal(200);
      expect(r.body.data).to.deep.include({ type: 'kv', path: 'secret/', options: { version: '2' } });
    }
    const s = await vault(token, 'GET', '/v1/secret/data/ci/acme/api/db');
    expect(s.status, s.text).to.equal(200);
    expect(s.body.data.data).to.deep.equal({ v: 'second' });
  });

  it('the preflight: another mount is a Vault-shaped 403; no token or a bad one 401', async () => {
    const token = await login();
    const other = await vault(token, 'GET', '/v1/sys/internal/ui/mounts/kv/ci/acme/api/db');
    expect(other.status).to.equal(403);
    expect(other.body.errors[0]).to.match(/preflight capability check returned 403/);
    expect((await vault(token, 'GET', '/v1/sys/mounts-all/cubbyhole/x')).status).to.equal(403);
    const none = await vault(undefined, 'GET', '/v1/sys/internal/ui/mounts/secret/ci/acme/api/db');
    expect(none.status).to.equal(401);
    expect(none.body).to.deep.equal({ errors: ['the token was not accepted'] });
    const bogus = await vault('nxo_' + 'A'.repeat(43), 'GET', '/v1/sys/mounts-all/secret/ci/acme/api/db');
    expect(bogus.status).to.equal(401);
    // Every exchanged token carries a grant on the one mount (as in Vault, any capability under it passes
    // the preflight); what it may do there is decided on the next request.
    const narrow = await login('api-narrow');
    expect((await vault(narrow, 'GET', '/v1/sys/internal/ui/mounts/secret/ci/acme/api/db')).status).to.equal(200);
    expect((await vault(narrow, 'GET', '/v1/secret/data/ci/acme/api/db')).status).to.equal(403);
  });

  it('vault kv list: GET ?list=true lists one level, folders end in /, only what the token may list', async () => {
    const token = await login();
    const list = (p: string, q = '?list=true') => vault(token, 'GET', `/v1/secret/metadata${p}${q}`, undefined, { 'X-Vault-Kv-Client': 'v2' });
    let r = await list('/ci/acme/api');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.data.keys).to.deep.equal(['db', 'deploy/']);
    r = await list('/ci/acme/api/');
    expect(r.body.data.keys).to.deep.equal(['db', 'deploy/']);
    r = await list('/ci/acme/api/deploy');
    expect(r.body.data.keys).to.deep.equal(['cert', 'key']);
    // ci/acme/other and ci/acme/apiary are not listable for this token: not even their names show.
    r = await list('/ci/acme');
    expect(r.body.data.keys).to.deep.equal(['api/']);
    r = await list('/ci');
    expect(r.body.data.keys).to.deep.equal(['acme/']);
    // `vault kv list secret` asks for the mount's root: /v1/secret/metadata?list=true.
    r = await list('');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.data.keys).to.deep.equal(['ci/']);
    r = await list('/');
    expect(r.body.data.keys).to.deep.equal(['ci/']);
    // Nothing (visible) there: Vault's 404 with an empty errors list, which the CLI reads as "no entries".
    r = await list('/ci/acme/other');
    expect(r.status).to.equal(404);
    expect(r.body).to.deep.equal({ errors: [] });
    r = await list('/ci/acme/api', '?list=1');
    expect(r.body.data.keys).to.deep.equal(['db', 'deploy/']);
  });

  it('a list or metadata read by a token with no list/read grant there is refused before any lookup', async () => {
    const narrow = await login('api-narrow');
    const r = await vault(narrow, 'GET', '/v1/secret/metadata/ci/acme/api?list=true');
    expect(r.status).to.equal(403);
    expect(r.body.errors[0]).to.match(/permission denied/);
    const m = await vault(narrow, 'GET', '/v1/secret/metadata/ci/acme/api/db');
    expect(m.status).to.equal(403);
    expect((await vault(undefined, 'GET', '/v1/secret/metadata/ci/acme/api?list=true')).status).to.equal(401);
  });

  it('vault kv metadata get: versions map, current_version, deletion_time of a soft-deleted version', async () => {
    const token = await login();
    const r = await vault(token, 'GET', '/v1/secret/metadata/ci/acme/api/db');
    expect(r.status, r.text).to.equal(200);
    const d = r.body.data;
    expect(d.current_version).to.equal(2);
    expect(d.oldest_version).to.equal(1);
    expect(Object.keys(d.versions)).to.deep.equal(['1', '2']);
    expect(d.versions['1'].deletion_time).to.not.equal('');
    expect(d.versions['2']).to.include({ deletion_time: '', destroyed: false });
    expect(Date.parse(d.created_time)).to.be.greaterThan(0);
    expect(Date.parse(d.updated_time)).to.be.at.least(Date.parse(d.created_time));
    expect(JSON.stringify(r.body)).to.not.include('second');
    const missing = await vault(token, 'GET', '/v1/secret/metadata/ci/acme/api/absent');
    expect(missing.status).to.equal(404);
    expect(missing.body).to.have.all.keys('errors');
  });

  it('node-vault: list (GET ?list=1) and read of metadata work unchanged', async () => {
    const client = nodeVault({ endpoint: `https://127.0.0.1:${env.port}`, requestOptions: { ca: env.t.caPem }, noCustomHTTPVerbs: true });
    await client.jwtLogin({ role: 'api-ci', jwt: await job() });
    const l = await client.list('secret/metadata/ci/acme/api');
    expect(l.data.keys).to.deep.equal(['db', 'deploy/']);
    const m = await client.read('secret/metadata/ci/acme/api/db');
    expect(m.data.current_version).to.equal(2);
  });

  it('the LIST method has its handler (reached when a proxy in front hands LIST over; Node\'s own parser refuses it)', async () => {
    const token = await login();
    // The app itself, given a LIST request as a proxy in front of Node would hand it over.
    const answer = await new Promise<{ status: number; body: any }>((resolve) => {
      const req = new http.IncomingMessage(new Socket());
      req.method = 'LIST';
      req.url = '/v1/secret/metadata/ci/acme/api';
      req.headers = { 'x-vault-token': token, host: '127.0.0.1' };
      req.push(null);
      const res = new http.ServerResponse(req);
      let text = '';
      res.write = ((c: unknown) => ((text += String(c)), true)) as typeof res.write;
      res.end = ((c?: unknown) => {
        if (c) text += String(c);
        resolve({ status: res.statusCode, body: JSON.parse(text) });
        return res;
      }) as typeof res.end;
      void env.plugin.app!.callback()(req, res);
    });
    expect(answer.status).to.equal(200);
    expect(answer.body.data.keys).to.deep.equal(['db', 'deploy/']);
  });

  it('LIST on the wire (node-vault without noCustomHTTPVerbs, curl -X LIST): a 405 that says to send GET ?list=true', async () => {
    const token = await login();
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port: env.port, ca: env.t.caPem, servername: 'localhost' }, () => {
        sock.write(`LIST /v1/secret/metadata/ci/acme/api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: ${token}\r\n\r\n`);
      });
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString()));
      sock.on('end', () => resolve(text));
      sock.on('error', reject);
    });
    expect(raw).to.match(/^HTTP\/1\.1 405 /);
    expect(raw).to.include('GET ?list=true');
  });

  it('Vault-shaped errors on every Vault path, unknown ones included; the native routes keep theirs', async () => {
    const token = await login();
    for (const [m, p, status] of [
      ['GET', '/v1/secret/foo', 404],
      ['GET', '/v1/secret/config', 404],
      ['GET', '/v1/sys/mounts', 404],
      ['GET', '/v1/sys/seal-status', 404],
      ['POST', '/v1/auth/approle/login', 404],
      ['GET', '/v1/auth/token/lookup', 404],
      ['DELETE', '/v1/secret/data/ci/acme/api/db', 405],
    ] as const) {
      const r = await vault(token, m, p);
      expect(r.status, `${m} ${p} ${r.text}`).to.equal(status);
      expect(r.body, `${m} ${p}`).to.have.all.keys('errors');
      expect(r.body.errors).to.be.an('array');
    }
    const native = await env.oidc(undefined, 'GET', '/v1/nothing-here');
    expect(native.status).to.equal(404);
    expect(native.body.error.code).to.equal('not_found');
    const exchange = await env.oidc(undefined, 'POST', '/v1/auth/token', { jwt: 'x' });
    expect(exchange.body).to.have.property('error');
  });

  it('NEXUS_OIDC_VAULT_COMPAT=off: the new routes are gone too', async () => {
    const off = await startOidcEnv({ NEXUS_OIDC_VAULT_COMPAT: 'off' });
    try {
      for (const p of ['/v1/sys/internal/ui/mounts/secret/x', '/v1/sys/mounts-all/secret/x', '/v1/secret/metadata/x?list=true', '/v1/secret/metadata/x']) {
        const r = await off.oidc(undefined, 'GET', p);
        expect(r.status, p).to.equal(404);
        expect(r.body.error.code).to.equal('not_found');
      }
    } finally {
      await off.stop();
    }
  });
});
