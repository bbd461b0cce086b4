import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { gitlab } from '../helpers/idp.js';
import { ROOT, runNode, tempDir } from '../helpers/env.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { maskProblems, parseFileCommands } from '../helpers/runner.js';
import { LEEWAY_S } from '../../plugins/oidc/verify.js';

const BIN = path.join(ROOT, 'scripts/ci/dist/nexus-ci.mjs');
const nexusCi = (args: string[], env: Record<string, string>) => runNode([BIN, ...args], env);

/** 20 nested under app/ and 5 at the top are readable; 5 under ops/ are not (the role grants app/** and one level). */
const READABLE = [...Array.from({ length: 20 }, (_, i) => [`app/svc-${i}/db`, { password: `pw-${i}`, 'user.name': `u${i}` }] as const), ...Array.from({ length: 5 }, (_, i) => [`top-${i}`, { v: `top-value-${i}` }] as const)];

describe('nexus-ci: whole-subtree lines (PATH/** | PREFIX_, PATH/* | PREFIX_)', function () {
  this.timeout(120_000);
  let env: OidcEnv;
  let dir: string;
  let ca: string;
  let ci: Record<string, string>;
  const run = (lines: string[], ...extra: string[]) => nexusCi(['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--ca', ca, ...lines.flatMap((l) => ['--secret', l]), ...extra], ci);
  const json = async (lines: string[]) => {
    const out = path.join(dir, `out-${Math.random()}.json`);
    const r = await run(lines, '--format', 'json', '--out', out);
    return { r, values: r.code === 0 ? (JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, string>) : {} };
  };

  before(async () => {
    env = await startOidcEnv();
    const secrets = env.t.server.core.secrets;
    for (const [rel, data] of READABLE) await secrets.put(`ci/acme/api/tree/${rel}`, data);
    for (let i = 0; i < 5; i++) await secrets.put(`ci/acme/api/tree/ops/o${i}`, { v: `hidden-${i}` });
    await secrets.put('ci/acme/api/clash/a-b', { x: 'one' });
    await secrets.put('ci/acme/api/clash/a_b', { x: 'two' });
    for (let i = 0; i < 500; i++) await secrets.put(`ci/acme/api/big/s${String(i).padStart(3, '0')}`, { v: String(i) });
    const r = await env.admin('PUT', '/v1/oidc/roles/tree', {
      issuer: 'ci',
      bound_claims: { project_path: 'acme/api' },
      paths: ['ci/{{claims.project_path}}/tree/app/**', 'ci/{{claims.project_path}}/tree/*', 'ci/{{claims.project_path}}/clash/*', 'ci/{{claims.project_path}}/big/*'],
      permissions: ['read'],
    });
    expect(r.status, r.text).to.equal(201);
    dir = tempDir('nexus-ci-subtree');
    ca = path.join(dir, 'ca.crt');
    fs.writeFileSync(ca, env.t.caPem);
    ci = { NEXUS_JWT: await env.idp.token(gitlab('acme/api')) };
  });
  after(() => env?.stop());

  it('PATH/**: exactly the 25 readable secrets arrive, each key as PREFIX_<RELATIVE_PATH>_<KEY>', async () => {
    const { r, values } = await json(['ci/acme/api/tree/** | T_']);
    expect(r.code, r.stderr).to.equal(0);
    const expected: Record<string, string> = {};
    for (const [rel, data] of READABLE) for (const [k, v] of Object.entries(data)) expected[`T_${rel}_${k}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_')] = v;
    expect(values).to.deep.equal(expected);
    expect(Object.keys(values)).to.include.members(['T_APP_SVC_3_DB_PASSWORD', 'T_APP_SVC_3_DB_USER_NAME', 'T_TOP_4_V']);
    expect(new Set(Object.keys(values).map((n) => n.replace(/_(PASSWORD|USER_NAME|V)$/, ''))).size).to.equal(25);
    expect(JSON.stringify(values)).to.not.include('hidden');
  });

  it('PATH/*: one level only', async () => {
    const { r, values } = await json(['ci/acme/api/tree/* | T_']);
    expect(r.code, r.stderr).to.equal(0);
    expect(values).to.deep.equal(Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`T_TOP_${i}_V`, `top-value-${i}`])));
  });

  it('--github-env: every value masked before anything is printed', async () => {
    const ghEnv = path.join(dir, 'github_env');
    fs.writeFileSync(ghEnv, '');
    const r = await nexusCi(['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--ca', ca, '--secret', 'ci/acme/api/tree/** | T_', '--github-env'], { ...ci, GITHUB_ENV: ghEnv });
    expect(r.code, r.stderr).to.equal(0);
    expect(Object.keys(parseFileCommands(fs.readFileSync(ghEnv, 'utf8')))).to.have.length(45);
    expect(maskProblems(r.stdout + r.stderr, READABLE.flatMap(([, d]) => Object.values(d)))).to.deep.equal([]);
  });

  it('two secrets that make one name: refused naming both paths, nothing written', async () => {
    const out = path.join(dir, 'clash.json');
    const r = await run(['ci/acme/api/clash/** | C_'], '--format', 'json', '--out', out);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('C_A_B_X');
    expect(r.stderr).to.include('ci/acme/api/clash/a-b');
    expect(r.stderr).to.include('ci/acme/api/clash/a_b');
    expect(r.stderr).to.not.match(/one|two/);
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('500 secrets under one line are fetched; 501 are refused with a clear error', async () => {
    const ok = await json(['ci/acme/api/big/* | B_']);
    expect(ok.r.code, ok.r.stderr).to.equal(0);
    expect(Object.keys(ok.values)).to.have.length(500);
    await env.t.server.core.secrets.put('ci/acme/api/big/s500', { v: '500' });
    const { r } = await json(['ci/acme/api/big/* | B_']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^nexus-ci: "ci\/acme\/api\/big\/\* \| B_": more than 500 secrets under ci\/acme\/api\/big\//);
  });

  it('an empty prefix whose relative paths and keys would make a hook (ld/preload -> LD_PRELOAD): refused naming the line and the secret', async () => {
    await env.t.server.core.secrets.put('ci/acme/api/tree/ld', { preload: '/tmp/evil.so' });
    try {
      const { r } = await json(['ci/acme/api/tree/* |']);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include('"ci/acme/api/tree/* |": secrets under ci/acme/api/tree/ (ci/acme/api/tree/ld) would set LD_PRELOAD');
      expect(r.stderr).to.not.include('evil');
    } finally {
      await env.t.server.core.secrets.purge('ci/acme/api/tree/ld');
    }
  });

  it('a subtree with nothing the job may read is an error naming the line', async () => {
    const { r } = await json(['ci/acme/api/tree/ops/** | O_']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('no secret the job may read under ci/acme/api/tree/ops/');
  });
});

describe('nexus-ci: retries', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let ca: string;
  let dir: string;
  const args = (...extra: string[]) => ['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--ca', ca, '--secret', 'ci/acme/api/db password | DB_PASSWORD', '--format', 'json', '--out', path.join(dir, 'out.json'), ...extra];
  const retryLines = (stderr: string) => stderr.split('\n').filter((l) => l.includes('retrying in'));

  before(async () => {
    // One request a second per tenant, a burst of 5: easy to spend.
    env = await startOidcEnv({ NEXUS_OIDC_SUBJECT_RPS: '1' });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'retried-pw' } });
    await env.admin('PUT', '/v1/oidc/roles/api', { issuer: 'ci', bound_claims: { project_path: 'acme/api' }, paths: ['ci/{{claims.project_path}}/*'], permissions: ['read'] });
    dir = tempDir('nexus-ci-retry');
    ca = path.join(dir, 'ca.crt');
    fs.writeFileSync(ca, env.t.caPem);
  });
  after(() => env?.stop());

  it('a server answering 429: waits the Retry-After it gives, then succeeds; one log line per retry, no token', async () => {
    const jwt = await env.idp.token(gitlab('acme/api'));
    // Another job of the same project spends the budget (the tenant's, whatever the ref).
    const other = await env.idp.token(gitlab('acme/api', 'feature'));
    let status = 0;
    for (let i = 0; i < 20 && status !== 429; i++) status = (await env.oidc(other, 'GET', '/v1/whoami')).status;
    expect(status).to.equal(429);
    const r = await nexusCi(args(), { NEXUS_JWT: jwt });
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8'))).to.deep.equal({ DB_PASSWORD: 'retried-pw' });
    const lines = retryLines(r.stderr);
    expect(lines.length).to.be.at.least(1);
    expect(lines[0]).to.match(/^nexus-ci: POST \/v1\/auth\/token: rate limited \(429\); retrying in (\d+\.\d) s \(try 2 of 3\)$/);
    // Retry-After is at least 1 s: the wait honours it.
    for (const l of lines) expect(Number(/retrying in (\d+\.\d)/.exec(l)![1])).to.be.at.least(1);
    expect(r.stderr).to.not.include(jwt.split('.')[1]!);
    expect(r.stderr).to.not.include('nxo_');
  });

  it('a token whose iat is ahead of the server clock: one retry after the skew, then success', async () => {
    // Another project: its own budget, untouched by the test before.
    await env.admin('PUT', '/v1/secrets/ci/acme/web/db', { data: { password: 'retried-pw' } });
    await env.admin('PUT', '/v1/oidc/roles/web', { issuer: 'ci', bound_claims: { project_path: 'acme/web' }, paths: ['ci/{{claims.project_path}}/*'], permissions: ['read'] });
    // 2 s past the server's leeway: a short skew rather than a long sleep.
    const jwt = await env.idp.token({ ...gitlab('acme/web', 'skew'), iat: Math.floor(Date.now() / 1000) + LEEWAY_S + 2 });
    const a = args();
    a[7] = 'ci/acme/web/db password | DB_PASSWORD';
    const r = await nexusCi(a, { NEXUS_JWT: jwt });
    expect(r.code, r.stderr).to.equal(0);
    const lines = retryLines(r.stderr);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^nexus-ci: POST \/v1\/auth\/token: the job's token is not yet valid by the server's clock \(401 token_not_yet_valid\); retrying in [1-3]\.\d s \(clock skew, once\)$/);
    expect(r.stderr).to.not.include(jwt.split('.')[1]!);
  });

  it('a connection refused: tried --max-tries times, then the error', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const a = args('--max-tries', '2');
    a[3] = `https://127.0.0.1:${closed}`;
    const r = await nexusCi(a, { NEXUS_JWT: await env.idp.token(gitlab('acme/api')) });
    expect(r.code).to.equal(1);
    expect(retryLines(r.stderr)).to.have.length(1);
    expect(r.stderr).to.match(/ECONNREFUSED\); retrying in \d+\.\d s \(try 2 of 2\)/);
    expect(r.stderr).to.match(/cannot reach https:\/\/127\.0\.0\.1:\d+/);
  });
});
