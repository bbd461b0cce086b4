import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { runBin, tempDir } from '../helpers/env.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * nexus-import vault against a Vault API test double. A real Vault server
 * cannot run here (no binary, no network to fetch one), so the double answers
 * as Vault's documented KV v2 API does (developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2):
 *   GET  /v1/<mount>/metadata/<path>?list=true  {"data":{"keys":[...]}} one level, folders end in "/"
 *        (Vault's LIST verb is the same request; Node's HTTP parser cannot receive LIST, and the
 *        importer, like the vault CLI, sends GET ?list=true)
 *   GET  /v1/<mount>/metadata/<path>            {"data":{"current_version","versions":{"N":{created_time,deletion_time,destroyed}}}}
 *   GET  /v1/<mount>/data/<path>?version=N      {"data":{"data":{...},"metadata":{...}}}; a deleted or
 *                                               destroyed version: 404 with "data":null inside
 *   a missing path: 404 {"errors":[]}; a bad X-Vault-Token: 403 {"errors":["permission denied"]}.
 * Nexus is real: a test server, written to by the bin over mTLS with the dev PKI's admin SVID.
 */

interface DoubleVersion {
  data: Record<string, unknown>;
  deleted?: boolean;
  destroyed?: boolean;
}

const TOKEN = 'hvs.test-root-token';

function vaultDouble(mount: string, secrets: Record<string, DoubleVersion[]>) {
  const requests: string[] = [];
  let dataReads = 0;
  /** After this many data reads, the double drops every connection (a crash mid-import). */
  let failAfter = Infinity;
  const created = '2024-01-02T03:04:05.000000Z';
  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.headers['x-vault-token'] !== TOKEN) return send(res, 403, { errors: ['permission denied'] });
    const m = new RegExp(`^/v1/${mount}/(metadata|data)(?:/(.*))?$`).exec(url.pathname);
    if (req.method !== 'GET' || !m) return send(res, 404, { errors: [] });
    const p = decodeURIComponent((m[2] ?? '').replace(/\/$/, ''));
    if (m[1] === 'metadata' && url.searchParams.get('list') === 'true') {
      const prefix = p ? `${p}/` : '';
      const keys = new Set<string>();
      for (const s of Object.keys(secrets)) {
        if (!s.startsWith(prefix)) continue;
        const rest = s.slice(prefix.length);
        keys.add(rest.includes('/') ? `${rest.split('/')[0]}/` : rest);
      }
      return keys.size ? send(res, 200, { data: { keys: [...keys].sort() } }) : send(res, 404, { errors: [] });
    }
    const versions = secrets[p];
    if (!versions) return send(res, 404, { errors: [] });
    const info = (v: DoubleVersion) => ({ created_time: created, deletion_time: v.deleted ? created : '', destroyed: Boolean(v.destroyed), custom_metadata: null });
    if (m[1] === 'metadata') {
      return send(res, 200, {
        data: { current_version: versions.length, oldest_version: 0, max_versions: 0, cas_required: false, created_time: created, updated_time: created, versions: Object.fromEntries(versions.map((v, i) => [String(i + 1), info(v)])) },
      });
    }
    if (++dataReads > failAfter) return req.socket.destroy();
    const n = Number(url.searchParams.get('version') ?? versions.length);
    const v = versions[n - 1];
    if (!v) return send(res, 404, { errors: [] });
    if (v.deleted || v.destroyed) return send(res, 404, { data: { data: null, metadata: { ...info(v), version: n } } });
    return send(res, 200, { data: { data: v.data, metadata: { ...info(v), version: n } } });
  });
  return {
    requests,
    failAfter: (n: number) => {
      failAfter = n;
      dataReads = 0;
    },
    start: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const TREE: Record<string, DoubleVersion[]> = {
  'top': [{ data: { a: '1' } }],
  'app/db': [{ data: { user: 'u', password: 'p1' } }, { data: { user: 'u', password: 'p2' } }, { data: { user: 'u', password: 'p3' } }],
  'app/api/key': [{ data: { key: 'k1' } }],
  'app/api/deep/er/token': [{ data: { token: 't', port: 5432, tls: true, opts: { a: 1 } } }],
  // Three versions: v1 destroyed, v2 soft-deleted, v3 live.
  'app/rotated': [{ data: { v: 'one' }, destroyed: true }, { data: { v: 'two' }, deleted: true }, { data: { v: 'three' } }],
  // Only version deleted: nothing live to copy.
  'old/gone': [{ data: { v: 'x' }, deleted: true }],
};

describe('nexus-import vault (a Vault KV v2 test double -> a real Nexus over mTLS)', function () {
  this.timeout(120_000);
  let t: TestServer;
  let double: ReturnType<typeof vaultDouble>;
  let addr: string;
  let tokenFile: string;
  let env: Record<string, string>;
  const nexusImport = (args: string[]) => runBin('nexus-import', args, env);
  const vaultArgs = (extra: string[] = [], token = tokenFile) => ['vault', '--addr', addr, '--token-file', token, '--mount', 'secret', ...extra];
  const admin = (method: string, p: string) => call(t.port, t.admin, method, p);

  /** Every secret in Nexus with each version's value: what a run must leave, and leave alone. */
  const snapshot = async (): Promise<Record<string, Array<{ version: number; data: unknown }>>> => {
    const list = await admin('GET', '/v1/secrets?limit=1000');
    const out: Record<string, Array<{ version: number; data: unknown }>> = {};
    for (const p of list.body.paths as string[]) {
      const md = await admin('GET', `/v1/secrets/${p}:metadata`);
      out[p] = [];
      for (const v of md.body.versions as Array<{ version: number }>) out[p]!.push({ version: v.version, data: (await admin('GET', `/v1/secrets/${p}?version=${v.version}`)).body.data });
    }
    return out;
  };
  const wipe = async () => {
    for (const p of Object.keys(await snapshot())) expect((await admin('DELETE', `/v1/secrets/${p}:metadata`)).status).to.be.oneOf([200, 204]);
  };

  before(async () => {
    t = await startTestServer();
    double = vaultDouble('secret', TREE);
    addr = await double.start();
    const dir = tempDir('nexus-import');
    tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    env = { NEXUS_DATA_DIR: t.dir, NEXUS_ADDR: `https://127.0.0.1:${t.port}` };
  });
  after(async () => {
    await double?.stop();
    await t?.stop();
  });

  it('--dry-run writes nothing and says what it would copy', async () => {
    const r = await nexusImport(vaultArgs(['--dry-run']));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/dry run, nothing written: 6 secrets: 5 to copy \(5 versions\), 0 unchanged, 0 failed/);
    expect(r.stderr).to.include('[2/6] app/api/key: would copy 1 version');
    expect(await snapshot()).to.deep.equal({});
  });

  it('copies the latest version of every secret of a nested tree; deleted and destroyed are reported, not copied; a second run changes nothing', async () => {
    const r = await nexusImport(vaultArgs());
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('nexus-import: 6 secrets: 5 copied (5 versions written), 0 unchanged, 0 failed; not copied: 1 soft-deleted, 0 destroyed version(s)');
    expect(r.stderr).to.match(/\[\d\/6\] old\/gone: nothing live to copy \(v1 soft-deleted, not copied\)/);
    expect(r.stderr).to.match(/app\/api\/deep\/er\/token: copied 1 version \(v1: non-string value\(s\) of port, tls, opts kept as JSON text\)/);
    const s = await snapshot();
    expect(Object.keys(s).sort()).to.deep.equal(['app/api/deep/er/token', 'app/api/key', 'app/db', 'app/rotated', 'top']);
    expect(s['app/db']).to.deep.equal([{ version: 1, data: { user: 'u', password: 'p3' } }]);
    expect(s['app/rotated']).to.deep.equal([{ version: 1, data: { v: 'three' } }]);
    expect(s['app/api/deep/er/token']![0]!.data).to.deep.equal({ token: 't', port: '5432', tls: 'true', opts: '{"a":1}' });
    // Only the documented requests, and no version's value read that is not copied.
    expect(double.requests.every((q) => q.startsWith('GET /v1/secret/metadata') || q.startsWith('GET /v1/secret/data/'))).to.equal(true);

    const again = await nexusImport(vaultArgs());
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include('6 secrets: 0 copied (0 versions written), 5 unchanged, 0 failed');
    expect(await snapshot()).to.deep.equal(s);
  });

  it('--all-versions keeps the live history in order; --path limits the import to a folder', async () => {
    await wipe();
    const r = await nexusImport(vaultArgs(['--all-versions', '--path', 'app']));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('4 secrets: 4 copied (6 versions written), 0 unchanged, 0 failed; not copied: 1 soft-deleted, 1 destroyed version(s)');
    expect(r.stderr).to.include('app/rotated: copied 1 version (v1 destroyed, not copied; v2 soft-deleted, not copied)');
    const s = await snapshot();
    expect(Object.keys(s).sort()).to.deep.equal(['app/api/deep/er/token', 'app/api/key', 'app/db', 'app/rotated']);
    expect(s['app/db']!.map((v) => v.data)).to.deep.equal([1, 2, 3].map((n) => ({ user: 'u', password: `p${n}` })));
    const again = await nexusImport(vaultArgs(['--all-versions', '--path', 'app']));
    expect(again.stdout).to.include('4 secrets: 0 copied (0 versions written), 4 unchanged');
    expect(await snapshot()).to.deep.equal(s);
  });

  it('killed mid-way (the double drops its connections), then run again: the same result as one clean run, nothing duplicated', async () => {
    await wipe();
    // A clean run's result, for comparison.
    expect((await nexusImport(vaultArgs(['--all-versions']))).code).to.equal(0);
    const clean = await snapshot();
    await wipe();

    // app/db's versions are read 2nd to 4th (sorted walk: app/api/deep/er/token, app/api/key, app/db ...): fail in its middle.
    double.failAfter(3);
    const killed = await nexusImport(vaultArgs(['--all-versions']));
    expect(killed.code).to.equal(1);
    expect(killed.stderr.trim().split('\n').at(-1)).to.match(/^nexus-import: cannot reach Vault at http:\/\/127\.0\.0\.1:\d+: /);
    const partial = await snapshot();
    expect(Object.keys(partial).length).to.be.greaterThan(0);
    expect(partial).to.not.deep.equal(clean);

    double.failAfter(Infinity);
    const rerun = await nexusImport(vaultArgs(['--all-versions']));
    expect(rerun.code, rerun.stderr).to.equal(0);
    const after = await snapshot();
    // Identical, version numbers included: nothing written twice.
    expect(after).to.deep.equal(clean);
    const third = await nexusImport(vaultArgs(['--all-versions']));
    expect(third.stdout).to.include('0 copied (0 versions written), 5 unchanged');
  });

  it('killed between two writes of one history: the rerun writes only the versions Nexus lacks', async () => {
    await wipe();
    // What a run stopped after app/db's first write leaves behind.
    expect((await call(t.port, t.admin, 'PUT', '/v1/secrets/app/db', { data: { user: 'u', password: 'p1' } })).status).to.equal(201);
    const r = await nexusImport(vaultArgs(['--all-versions', '--path', 'app/db']));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('1 secret: 1 copied (2 versions written)');
    const s = await snapshot();
    expect(s['app/db']!.map((v) => [v.version, v.data])).to.deep.equal([1, 2, 3].map((n) => [n, { user: 'u', password: `p${n}` }]));
  });

  it('a Nexus path with a history of its own keeps it and gets Vault\'s latest value once', async () => {
    await wipe();
    expect((await call(t.port, t.admin, 'PUT', '/v1/secrets/top', { data: { a: 'nexus-own' } })).status).to.equal(201);
    const r = await nexusImport(vaultArgs(['--path', 'top']));
    expect(r.stderr).to.include('top: copied 1 version (Nexus had other versions here; only the latest value was added)');
    const again = await nexusImport(vaultArgs(['--path', 'top']));
    expect(again.stdout).to.include('1 secret: 0 copied (0 versions written), 1 unchanged');
    expect((await snapshot())['top']!.map((v) => v.data)).to.deep.equal([{ a: 'nexus-own' }, { a: '1' }]);
  });

  it('a --path with nothing under it says where it looked', async () => {
    const r = await nexusImport(vaultArgs(['--path', 'nowhere', '--dry-run']));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include('nothing found under secret/nowhere/');
    expect(r.stdout).to.include('0 secrets');
  });

  it('a token Vault refuses: exit 1 with one clear line', async () => {
    const bad = path.join(tempDir('nexus-import'), 'token');
    fs.writeFileSync(bad, 'hvs.wrong\n');
    const r = await nexusImport(vaultArgs([], bad));
    expect(r.code).to.equal(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^nexus-import: Vault at http:\/\/127\.0\.0\.1:\d+ refused the token \(403: permission denied\); check --token-file/);
    expect(r.stderr + r.stdout).to.not.include('hvs.wrong');
  });

  it('Vault or Nexus out of reach: exit 1', async () => {
    const r = await nexusImport(['vault', '--addr', 'http://127.0.0.1:9', '--token-file', tokenFile, '--mount', 'secret']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/cannot reach Vault/);
    const nexus = await runBin('nexus-import', vaultArgs(), { ...env, NEXUS_ADDR: 'https://127.0.0.1:9' });
    expect(nexus.code).to.equal(1);
    expect(nexus.stderr.trim().split('\n').at(-1)).to.match(/^nexus-import: cannot reach Nexus at https:\/\/127\.0\.0\.1:9: connection refused/);
  });

  it('usage errors exit 2: no source, a missing option, an unreadable token file, a bad address or mount', async () => {
    for (const args of [
      [],
      ['consul'],
      ['vault', '--addr', addr, '--mount', 'secret'],
      ['vault', '--addr', addr, '--token-file', '/nonexistent/token', '--mount', 'secret'],
      ['vault', '--addr', 'not a url', '--token-file', tokenFile, '--mount', 'secret'],
      ['vault', '--addr', addr, '--token-file', tokenFile, '--mount', '../x'],
      ['vault', '--addr', addr, '--token-file', tokenFile, '--mount', 'secret', '--bogus'],
    ]) {
      const r = await nexusImport(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
    }
  });
});
