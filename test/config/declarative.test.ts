import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { ConfigError } from '../../nexus/errors.js';
import { silentLogger } from '../../nexus/log.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { openDatabase } from '../../nexus/storage/db.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { call, type ClientCreds } from '../helpers/server.js';

describe('declarative config: seeded issuers and roles', function () {
  this.timeout(60_000);
  let idp: TestIdp;
  let dir: string;
  let file: string;
  before(async () => {
    idp = await startIdp();
  });
  after(() => idp.stop());
  beforeEach(() => {
    dir = tempDir();
    file = path.join(dir, 'nexus.yaml');
  });

  const issuer = (url: string) => ({ issuer: url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: ['repository', 'sub'] });
  const role = (iss: string, repo: string) => ({ issuer: iss, bound_claims: { repository: repo }, paths: ['ci/x/*'], permissions: ['read'] });
  const writeConfig = (oidc: { issuers?: Record<string, unknown>; roles?: Record<string, unknown> }) => fs.writeFileSync(file, JSON.stringify({ oidc }));
  const env = () => testEnv(path.join(dir, 'data'), { NEXUS_CONFIG: file, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: '127.0.0.1:0' });

  async function start(): Promise<{ server: RunningServer; admin(method: string, p: string, body?: unknown): ReturnType<typeof call> }> {
    const server = await startServer(loadConfig(env()), silentLogger(), { plugins: [new OidcPlugin()] });
    const pki = path.join(dir, 'data', 'pki');
    const read = (f: string) => fs.readFileSync(path.join(pki, f), 'utf8');
    const creds: ClientCreds = { ca: read('ca.crt'), cert: read('pilot.crt'), key: read('pilot.key') };
    return { server, admin: (method, p, body) => call(server.mtls.address().port, creds, method, p, body) };
  }

  it('seeded issuers pass the API validation: two issuers with one URL are refused, naming the key', async () => {
    writeConfig({ issuers: { a: issuer(idp.url), b: issuer(idp.url) } });
    let err: unknown;
    try {
      new OidcPlugin().checkConfig(loadConfig(env()));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).key).to.equal('oidc.issuers.b.issuer');
    expect((err as Error).message).to.match(/already configured as a/);
  });

  it('config-managed objects: API edits get 409 naming the file; removed from the file, removed at next start; API objects untouched', async () => {
    writeConfig({ issuers: { local: issuer(idp.url) }, roles: { deploy: role('local', 'org/a'), extra: role('local', 'org/b') } });
    let s = await start();
    try {
      for (const [method, p, body] of [
        ['PUT', '/v1/oidc/roles/deploy', role('local', 'org/changed')],
        ['DELETE', '/v1/oidc/roles/deploy'],
        ['PUT', '/v1/oidc/issuers/local', issuer(idp.url)],
        ['DELETE', '/v1/oidc/issuers/local'],
      ] as Array<[string, string, unknown?]>) {
        const r = await s.admin(method, p, body);
        expect(r.status, `${method} ${p}`).to.equal(409);
        expect(r.body.error.message).to.include(file);
      }
      expect((await s.admin('GET', '/v1/oidc/roles/deploy')).body.bound_claims).to.deep.equal({ repository: 'org/a' });
      expect((await s.admin('PUT', '/v1/oidc/roles/mine', role('local', 'org/mine'))).status).to.equal(201);
    } finally {
      await s.server.stop(2000);
    }

    writeConfig({ issuers: { local: issuer(idp.url) }, roles: { deploy: role('local', 'org/a2') } });
    s = await start();
    try {
      expect((await s.admin('GET', '/v1/oidc/roles/extra')).status, 'removed from the file').to.equal(404);
      expect((await s.admin('GET', '/v1/oidc/roles/deploy')).body.bound_claims).to.deep.equal({ repository: 'org/a2' });
      expect((await s.admin('GET', '/v1/oidc/roles/mine')).body.bound_claims, 'API-created: untouched').to.deep.equal({ repository: 'org/mine' });
      // API-created objects stay editable.
      expect((await s.admin('PUT', '/v1/oidc/roles/mine', role('local', 'org/mine2'))).status).to.equal(200);
    } finally {
      await s.server.stop(2000);
    }

    // The file may not take over an object created through the API.
    writeConfig({ issuers: { local: issuer(idp.url) }, roles: { deploy: role('local', 'org/a2'), mine: role('local', 'org/file') } });
    let err: unknown;
    try {
      await (await start()).server.stop(2000);
    } catch (e) {
      err = e;
    }
    expect((err as Error)?.message).to.match(/oidc\.roles\.mine.*created through the API/);
  });

  /** The issuer and role rows as stored (timestamps too): what "unchanged" means. */
  const rows = () => {
    const db = openDatabase(loadConfig(env()).dbFile);
    try {
      return { issuers: db.prepare('SELECT * FROM oidc_issuers ORDER BY name').all(), roles: db.prepare('SELECT * FROM oidc_roles ORDER BY name').all() };
    } finally {
      db.close();
    }
  };
  const refusal = async (): Promise<unknown> => {
    try {
      await (await start()).server.stop(2000);
    } catch (e) {
      return e;
    }
    return null;
  };

  it('a file change that would strand an API-made role is refused as the API refuses it, naming the key', async () => {
    writeConfig({ issuers: { local: issuer(idp.url) } });
    const s = await start();
    try {
      expect((await s.admin('PUT', '/v1/oidc/roles/mine', role('local', 'org/mine'))).status).to.equal(201);
      // Through the API, the same change is a 409.
      const api = await s.admin('PUT', '/v1/oidc/issuers/other', { ...issuer('http://127.0.0.1:9/'), tenant_claims: ['sub'], verify: false });
      expect(api.status).to.equal(201);
      expect((await s.admin('PUT', '/v1/oidc/roles/theirs', role('other', 'org/x'))).status).to.equal(400);
    } finally {
      await s.server.stop(2000);
    }
    const before = rows();
    writeConfig({ issuers: { local: { ...issuer(idp.url), tenant_claims: ['sub'] } } });
    const err = await refusal();
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).key).to.equal('oidc.issuers.local.tenant_claims');
    expect((err as Error).message).to.match(/mine/);
    expect(rows()).to.deep.equal(before);
  });

  it('a file refused half-way changes nothing: no renamed issuer beside the old one, no role moved', async () => {
    writeConfig({ issuers: { old: issuer(idp.url) }, roles: { deploy: role('old', 'org/a') } });
    let s = await start();
    try {
      // An API-made role on the file's issuer: removing that issuer from the file must be refused.
      expect((await s.admin('PUT', '/v1/oidc/roles/mine', role('old', 'org/mine'))).status).to.equal(201);
    } finally {
      await s.server.stop(2000);
    }
    const before = rows();
    // Renames the issuer (same URL) and moves the file's role to it; the API-made role still uses the old name.
    writeConfig({ issuers: { new: issuer(idp.url) }, roles: { deploy: role('new', 'org/a') } });
    const err = await refusal();
    expect((err as Error)?.message).to.match(/old.*mine|mine.*old/);
    expect(rows()).to.deep.equal(before);
    // And the server still starts on the file it had.
    writeConfig({ issuers: { old: issuer(idp.url) }, roles: { deploy: role('old', 'org/a') } });
    s = await start();
    await s.server.stop(2000);
  });

  it('every seeded change is in the audit trail (intent before the commit, then outcome), and the trail verifies', async () => {
    writeConfig({ issuers: { local: issuer(idp.url) }, roles: { deploy: role('local', 'org/a'), extra: role('local', 'org/b') } });
    let s = await start();
    await s.server.stop(2000);
    writeConfig({ issuers: { local: issuer(idp.url) }, roles: { deploy: role('local', 'org/a2') } });
    s = await start();
    await s.server.stop(2000);
    const records = fs
      .readFileSync(path.join(dir, 'data', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; phase?: string; object?: { kind: string; name: string; digest?: string }; principal?: Record<string, unknown> });
    const seeded = records.filter((r) => r.principal?.config_file === file);
    const seen = (action: string, name: string, phase: string) => seeded.some((r) => r.action === action && r.object?.name === name && r.phase === phase);
    for (const [action, name] of [
      ['oidc.issuer.put', 'local'],
      ['oidc.role.put', 'deploy'],
      ['oidc.role.put', 'extra'],
      ['oidc.role.delete', 'extra'],
    ] as const) {
      expect(seen(action, name, 'intent'), `${action} ${name} intent`).to.equal(true);
      expect(seen(action, name, 'outcome'), `${action} ${name} outcome`).to.equal(true);
    }
    // Each change is recorded with the digest of what it set; the second start changed deploy and removed extra, nothing else.
    expect(seeded.filter((r) => r.action === 'oidc.issuer.put' && r.phase === 'intent')).to.have.length(1);
    expect(seeded.filter((r) => r.action === 'oidc.role.put' && r.object?.name === 'deploy' && r.phase === 'intent')).to.have.length(2);
    expect(seeded.find((r) => r.action === 'oidc.role.put')?.object?.digest).to.match(/^sha256:/);
    // One transaction per start that changed something, each bumping the version every replica polls.
    const versions = () => {
      const db = openDatabase(loadConfig(env()).dbFile);
      try {
        return Object.fromEntries(db.prepare<[], { topic: string; version: number }>('SELECT topic, version FROM config_version').all().map((r) => [r.topic, r.version]));
      } finally {
        db.close();
      }
    };
    expect(versions()).to.deep.include({ oidc: 2, tokens: 1 });
    // The same file again: nothing to change, nothing recorded, no version moved.
    const lines = fs.readFileSync(path.join(dir, 'data', 'audit.jsonl'), 'utf8').split('\n').length;
    s = await start();
    await s.server.stop(2000);
    expect(versions()).to.deep.include({ oidc: 2, tokens: 1 });
    const again = fs.readFileSync(path.join(dir, 'data', 'audit.jsonl'), 'utf8').split('\n').slice(lines - 1);
    expect(again.filter((l) => l.includes('config_file'))).to.deep.equal([]);
    const verify = await runBin('nexus-audit', ['verify'], testEnv(path.join(dir, 'data')));
    expect(verify.code, verify.stderr).to.equal(0);
  });
});
