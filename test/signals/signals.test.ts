import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDENTITY_CHECK_MS } from '../../nexus/audit/chain.js';
import { silentLogger } from '../../nexus/log.js';
import { loadIssuer, issueCert } from '../../nexus/pki/x509.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { runBin, tempDir, testConfig, testEnv } from '../helpers/env.js';
import { github, startIdp } from '../helpers/idp.js';
import { loadConfig } from '../../nexus/config/index.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { GITHUB_TENANT_CLAIMS, startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { TENANT_CLAIM_PRESETS } from '../../plugins/oidc/presets.js';
import { call, type ClientCreds } from '../helpers/server.js';

interface Sig {
  signal: string;
  port: string;
  principal: string;
  address: string;
  path?: string;
  at: string;
  why: string;
}

const LEARN_MS = 1000;
const learned = () => sleep(LEARN_MS + 150);
const iso = () => new Date().toISOString();

describe('access signals: each raised by its scenario, none by normal traffic', function () {
  this.timeout(60_000);
  let e: OidcEnv;

  const mtls = (creds: ClientCreds, p: string, localAddress?: string) => call(e.t.port, creds, 'GET', p, undefined, localAddress ? { localAddress } : {});
  const oidc = (token: string, p: string, localAddress?: string) =>
    call(e.port, { ca: e.t.caPem }, 'GET', p, undefined, { headers: { Authorization: `Bearer ${token}` }, ...(localAddress ? { localAddress } : {}) });
  const signalsSince = async (since: string): Promise<Sig[]> => {
    const r = await e.admin('GET', `/v1/signals?since=${encodeURIComponent(since)}`);
    expect(r.status, r.text).to.equal(200);
    return r.body.signals as Sig[];
  };
  const brief = (s: Sig[]) => s.map((x) => [x.signal, x.port, x.path ?? null]);

  before(async () => {
    e = await startOidcEnv({ NEXUS_SIGNAL_LEARN_S: String(LEARN_MS / 1000), NEXUS_SIGNAL_DENIED_BURST: '5' });
    for (const p of ['app/a', 'app/b', 'app/c', 'app/d', 'app/e', 'app/f', 'shared/x', 'shared/y']) expect((await e.admin('PUT', `/v1/secrets/${p}`, { data: { v: p } })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/policies/svc', { spiffe_id: 'spiffe://nexus.local/svc-*', paths: ['app/**'], permissions: ['read', 'list'] })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/shared', { issuer: 'ci', bound_claims: { repository_owner: 'org' }, paths: ['shared/**'], permissions: ['read', 'list'] })).status).to.equal(201);
  });
  after(() => e?.stop());

  it('normal traffic (known paths, a few denials, one address per token) raises none', async () => {
    const mark = iso();
    const svc = await e.t.svid('spiffe://nexus.local/svc-normal');
    const jwt = await e.idp.token(github('org/normal'));
    expect((await mtls(svc, '/v1/secrets/app/a')).status).to.equal(200);
    expect((await mtls(svc, '/v1/secrets?prefix=app/')).status).to.equal(200);
    expect((await oidc(jwt, '/v1/secrets/shared/x')).status).to.equal(200);
    await learned();
    for (let i = 0; i < 5; i++) {
      expect((await mtls(svc, '/v1/secrets/app/a')).status).to.equal(200);
      expect((await mtls(svc, '/v1/secrets?prefix=app/')).status).to.equal(200);
      expect((await oidc(jwt, '/v1/secrets/shared/x')).status).to.equal(200);
    }
    for (let i = 0; i < 3; i++) expect((await mtls(svc, '/v1/secrets/other/z')).status).to.equal(403);
    expect((await oidc('not-a-token', '/v1/secrets/shared/x')).status).to.equal(401);
    expect((await e.admin('GET', '/metrics')).status).to.equal(200);
    expect(await signalsSince(mark)).to.deep.equal([]);
  });

  it('new_path on the mTLS port: a record in the chain, a counter, one warn line without any secret', async () => {
    const mark = iso();
    const svc = await e.t.svid('spiffe://nexus.local/svc-new');
    expect((await mtls(svc, '/v1/secrets/app/a')).status).to.equal(200);
    await learned();
    expect((await mtls(svc, '/v1/secrets/app/a')).status).to.equal(200);
    expect((await mtls(svc, '/v1/secrets/app/b')).status).to.equal(200);
    expect((await mtls(svc, '/v1/secrets/app/b')).status).to.equal(200);
    const got = await signalsSince(mark);
    expect(brief(got)).to.deep.equal([['new_path', 'mtls', 'app/b']]);
    expect(got[0]!.principal).to.equal('spiffe://nexus.local/svc-new');
    expect(got[0]!.address).to.equal('127.0.0.1');
    expect(got[0]!.why).to.be.a('string').and.not.equal('');

    const metrics = (await e.admin('GET', '/metrics')).text;
    expect(metrics).to.match(/^nexus_security_signals_total\{signal="new_path",port="mtls"\} [1-9]/m);

    const records = fs
      .readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.kind === 'signal' && r.signal === 'new_path' && r.path === 'app/b');
    expect(records).to.have.length(1);
    expect(records[0]).to.include({ port: 'mtls', address: '127.0.0.1' });
    expect(records[0]!.mac, 'in the MAC chain').to.be.a('string');

    const lines = e
      .logs()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.signal === 'new_path' && l.path === 'app/b');
    expect(lines).to.have.length(1);
    expect(lines[0]!.level).to.equal(40);
    expect(JSON.stringify(lines[0])).to.not.include('"v":"app/b"');
  });

  it('new_path on the OIDC port: two repositories sharing a role are two principals', async () => {
    const mark = iso();
    const one = await e.idp.token(github('org/one'));
    const two = await e.idp.token(github('org/two'));
    expect((await oidc(one, '/v1/secrets/shared/x')).status).to.equal(200);
    expect((await oidc(two, '/v1/secrets/shared/y')).status).to.equal(200);
    await learned();
    expect((await oidc(two, '/v1/secrets/shared/y')).status).to.equal(200);
    expect((await oidc(one, '/v1/secrets/shared/y')).status).to.equal(200);
    const got = await signalsSince(mark);
    expect(brief(got)).to.deep.equal([['new_path', 'oidc', 'shared/y']]);
    expect(got[0]!.principal).to.include('org/one').and.include('shared').and.not.include('org/two');
    expect(got[0]!.principal, 'the principal key names no token').to.not.include(one.slice(0, 20));
  });

  it('denied_burst: from one principal (mTLS), and from one address (OIDC 401s)', async () => {
    const mark = iso();
    const nobody = await e.t.svid('spiffe://nexus.local/nobody');
    for (let i = 0; i < 6; i++) expect((await mtls(nobody, `/v1/secrets/app/${i}`, '127.0.0.5')).status).to.equal(403);
    for (let i = 0; i < 6; i++) expect((await oidc(`bad-${i}`, '/v1/secrets/shared/x', '127.0.0.3')).status).to.equal(401);
    const got = await signalsSince(mark);
    expect(brief(got)).to.deep.equal([
      ['denied_burst', 'mtls', null],
      ['denied_burst', 'oidc', null],
    ]);
    expect(got[0]!.principal).to.equal('spiffe://nexus.local/nobody');
    expect(got[1]!.address).to.equal('127.0.0.3');
  });

  it('read_spike: more distinct paths in a minute than 4x the highest minute so far', async () => {
    const mark = iso();
    const svc = await e.t.svid('spiffe://nexus.local/svc-spike');
    expect((await mtls(svc, '/v1/secrets/app/a')).status).to.equal(200);
    await learned();
    for (const p of ['b', 'c', 'd', 'e', 'f']) expect((await mtls(svc, `/v1/secrets/app/${p}`)).status).to.equal(200);
    const got = (await signalsSince(mark)).filter((s) => s.signal === 'read_spike');
    expect(got).to.have.length(1);
    expect(got[0]!.principal).to.equal('spiffe://nexus.local/svc-spike');
  });

  it('token_replay: one JWT, and one exchanged token, used from a second address', async () => {
    const mark = iso();
    const jwt = await e.idp.token(github('org/replay'));
    expect((await oidc(jwt, '/v1/secrets/shared/x')).status).to.equal(200);
    expect((await oidc(jwt, '/v1/secrets/shared/x')).status).to.equal(200);
    expect((await oidc(jwt, '/v1/secrets/shared/x', '127.0.0.2')).status).to.equal(200);
    const ex = await call(e.port, { ca: e.t.caPem }, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/replay')) });
    expect(ex.status, ex.text).to.equal(200);
    expect((await oidc(ex.body.token, '/v1/secrets/shared/x')).status).to.equal(200);
    expect((await oidc(ex.body.token, '/v1/secrets/shared/x', '127.0.0.4')).status).to.equal(200);
    const got = await signalsSince(mark);
    expect(brief(got)).to.deep.equal([
      ['token_replay', 'oidc', 'shared/x'],
      ['token_replay', 'oidc', 'shared/x'],
    ]);
    expect(got.map((s) => s.address)).to.deep.equal(['127.0.0.2', '127.0.0.4']);
    for (const s of got) expect(JSON.stringify(s)).to.not.include(jwt.split('.')[2]!).and.not.include(ex.body.token);
  });

  it('config_change: every write to policies, issuers and roles', async () => {
    const mark = iso();
    expect((await e.admin('PUT', '/v1/policies/cc', { spiffe_id: 'spiffe://nexus.local/cc', paths: ['cc/**'], permissions: ['read'] })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/cc', { issuer: 'ci', bound_claims: { repository: 'org/cc' }, paths: ['cc/**'], permissions: ['read'] })).status).to.equal(201);
    const ci = { issuer: e.idp.url, audiences: ['nexus'], algorithms: ['RS256', 'ES256'], tenant_claims: [...GITHUB_TENANT_CLAIMS, ...TENANT_CLAIM_PRESETS.gitlab] };
    const put = await e.admin('PUT', '/v1/oidc/issuers/ci', ci);
    expect(put.status, put.text).to.equal(200);
    expect((await e.admin('DELETE', '/v1/oidc/roles/cc')).status).to.equal(204);
    expect((await e.admin('DELETE', '/v1/policies/cc')).status).to.equal(204);
    expect((await e.admin('DELETE', '/v1/policies/missing')).status, 'a refused change is no change').to.equal(404);
    const got = await signalsSince(mark);
    expect(got.map((s) => [s.signal, s.port, s.why])).to.deep.equal([
      ['config_change', 'mtls', 'policy.put cc'],
      ['config_change', 'mtls', 'oidc.role.put cc'],
      ['config_change', 'mtls', 'oidc.issuer.put ci'],
      ['config_change', 'mtls', 'oidc.role.delete cc'],
      ['config_change', 'mtls', 'policy.delete cc'],
    ]);
    for (const s of got) expect(s.principal).to.equal('spiffe://nexus.local/pilot');
  });

  it('audit_integrity: the trail unwritable', async () => {
    const mark = iso();
    const file = path.join(e.t.dir, 'audit.jsonl');
    fs.renameSync(file, `${file}.saved`);
    fs.mkdirSync(file);
    try {
      await sleep(IDENTITY_CHECK_MS + 50);
      expect((await e.admin('GET', '/v1/secrets/app/a')).status).to.equal(503);
    } finally {
      fs.rmdirSync(file);
      fs.renameSync(`${file}.saved`, file);
    }
    await sleep(IDENTITY_CHECK_MS + 50);
    const got = await signalsSince(mark);
    expect(brief(got)).to.deep.equal([['audit_integrity', 'server', null]]);
    expect(got[0]!.why).to.include('cannot be written');
  });

  it('audit_integrity: a break found by nexus-audit verify', async () => {
    const mark = iso();
    const lines = fs.readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8').trim().split('\n');
    const copy = path.join(e.t.dir, 'copy.jsonl');
    fs.writeFileSync(copy, `${[...lines.slice(0, 2), ...lines.slice(3)].join('\n')}\n`);
    const r = await runBin('nexus-audit', ['verify', '--file', copy], testEnv(e.t.dir));
    expect(r.code, r.stderr).to.equal(1);
    const got = await signalsSince(mark);
    expect(brief(got)).to.deep.equal([['audit_integrity', 'script', null]]);
    expect(got[0]!.why).to.include('nexus-audit verify').and.include('copy.jsonl:3');
  });

  it('pilot signals [--since 1h] [--json] prints them', async () => {
    const pilot = (args: string[]) => runBin('pilot', args, { NEXUS_DATA_DIR: e.t.dir, NEXUS_ADDR: `https://127.0.0.1:${e.t.port}` });
    const json = await pilot(['signals', '--since', '1h', '--json']);
    expect(json.code, json.stderr).to.equal(0);
    const listed = JSON.parse(json.stdout).signals as Sig[];
    expect(listed.map((s) => s.signal)).to.include.members(['new_path', 'denied_burst', 'read_spike', 'token_replay', 'config_change', 'audit_integrity']);
    const text = await pilot(['signals']);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.match(/^\S+Z {2}new_path {2}mtls {2}spiffe:\/\/nexus\.local\/svc-new {2}127\.0\.0\.1 {2}app\/b {2}first read/m);
    const bad = await pilot(['signals', '--since', 'yesterday']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('--since');
  });

  it('GET /v1/signals: since as seconds; a bad since is a 400; the metrics permission suffices, others are refused', async () => {
    expect((await e.admin('GET', '/v1/signals?since=3600')).body.signals.length).to.be.greaterThan(0);
    expect((await e.admin('GET', '/v1/signals?since=yesterday')).status).to.equal(400);
    expect((await e.admin('PUT', '/v1/policies/scraper', { spiffe_id: 'spiffe://nexus.local/scraper', paths: ['x'], permissions: ['metrics'] })).status).to.equal(201);
    expect((await mtls(await e.t.svid('spiffe://nexus.local/scraper'), '/v1/signals?since=60')).status).to.equal(200);
    expect((await mtls(await e.t.svid('spiffe://nexus.local/svc-x'), '/v1/signals?since=60')).status).to.equal(403);
  });
});

describe('access signals across a restart', function () {
  this.timeout(60_000);
  const dir = tempDir('nexus-signals');
  let server: RunningServer | null = null;
  const start = async () => {
    server = await startServer(testConfig(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_SIGNAL_LEARN_S: String(LEARN_MS / 1000) }), silentLogger());
    return server;
  };
  const creds = async (id?: string): Promise<ClientCreds> => {
    const pki = path.join(dir, 'pki');
    const ca = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    if (!id) return { cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8'), ca };
    const leaf = await issueCert(await loadIssuer(ca, fs.readFileSync(path.join(pki, 'ca.key'), 'utf8')), { uris: [id] });
    return { cert: leaf.certPem, key: leaf.keyPem, ca };
  };
  const get = (s: RunningServer, c: ClientCreds, p: string) => call(s.mtls.address().port, c, 'GET', p);
  after(async () => {
    await server?.stop(1000);
  });

  it('the learned baseline survives a restart (no new_path for a known path); a chain break found at start is an audit_integrity signal', async () => {
    let s = await start();
    const admin = await creds();
    const svc = await creds('spiffe://nexus.local/svc-restart');
    for (const p of ['app/a', 'app/b']) expect((await call(s.mtls.address().port, admin, 'PUT', `/v1/secrets/${p}`, { data: { v: p } })).status).to.equal(201);
    expect((await call(s.mtls.address().port, admin, 'PUT', '/v1/policies/svc', { spiffe_id: 'spiffe://nexus.local/svc-*', paths: ['app/**'], permissions: ['read'] })).status).to.equal(201);
    expect((await get(s, svc, '/v1/secrets/app/a')).status).to.equal(200);
    await s.stop(1000);

    // Cut the last record: the anchor no longer matches, and the next start says so.
    const file = path.join(dir, 'audit.jsonl');
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    fs.writeFileSync(file, `${lines.slice(0, -1).join('\n')}\n`);

    const mark = iso();
    s = await start();
    await learned();
    expect((await get(s, svc, '/v1/secrets/app/a')).status).to.equal(200);
    expect((await get(s, svc, '/v1/secrets/app/b')).status).to.equal(200);
    const r = await get(s, admin, `/v1/signals?since=${encodeURIComponent('1970-01-01T00:00:00Z')}`);
    expect(r.status, r.text).to.equal(200);
    const got = (r.body.signals as Sig[]).filter((x) => x.signal !== 'config_change');
    expect(got.map((x) => [x.signal, x.port, x.path ?? null])).to.deep.equal([
      ['audit_integrity', 'server', null],
      ['new_path', 'mtls', 'app/b'],
    ]);
    expect(got[0]!.at >= mark).to.equal(true);
  });
});

describe('access signals: config_change from the config file', function () {
  this.timeout(60_000);
  it('each issuer and role the file changes at start is a config_change; an unchanged file at the next start is none', async () => {
    const idp = await startIdp();
    const dir = tempDir('nexus-signals-seed');
    const file = path.join(dir, 'nexus.yaml');
    fs.writeFileSync(
      file,
      JSON.stringify({
        oidc: {
          issuers: { local: { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: ['repository'] } },
          roles: { deploy: { issuer: 'local', bound_claims: { repository: 'org/a' }, paths: ['ci/*'], permissions: ['read'] } },
        },
      }),
    );
    const config = () => loadConfig(testEnv(path.join(dir, 'data'), { NEXUS_CONFIG: file, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: '127.0.0.1:0' }));
    const list = async (s: RunningServer) => {
      const pki = path.join(dir, 'data', 'pki');
      const read = (f: string) => fs.readFileSync(path.join(pki, f), 'utf8');
      const r = await call(s.mtls.address().port, { ca: read('ca.crt'), cert: read('pilot.crt'), key: read('pilot.key') }, 'GET', '/v1/signals?since=3600');
      return (r.body.signals as Sig[]).map((x) => [x.signal, x.port, x.principal, x.why]);
    };
    try {
      let s = await startServer(config(), silentLogger(), { plugins: [new OidcPlugin()] });
      const want = [
        ['config_change', 'script', `config file ${file}`, 'oidc.issuer.put local'],
        ['config_change', 'script', `config file ${file}`, 'oidc.role.put deploy'],
      ];
      try {
        expect(await list(s)).to.deep.equal(want);
      } finally {
        await s.stop(1000);
      }
      s = await startServer(config(), silentLogger(), { plugins: [new OidcPlugin()] });
      try {
        expect(await list(s)).to.deep.equal(want);
      } finally {
        await s.stop(1000);
      }
    } finally {
      await idp.stop();
    }
  });
});
