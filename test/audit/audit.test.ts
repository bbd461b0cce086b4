import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDENTITY_CHECK_MS } from '../../nexus/audit/chain.js';
import fs from 'node:fs';
import path from 'node:path';
import { runBin, testEnv } from '../helpers/env.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call } from '../helpers/server.js';

interface Rec {
  request_id?: string;
  port: string;
  principal?: Record<string, unknown>;
  action: string;
  path?: string;
  decision: string;
  status: number;
  reason?: string;
  token_id?: string;
}

describe('audit trail', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let file: string;
  const records = (): Rec[] => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
  const byId = (id: string) => records().filter((r) => r.request_id === id);

  before(async () => {
    e = await startOidcEnv();
    file = path.join(e.t.dir, 'audit.jsonl');
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { password: 'VALUE-never-logged-9d1c' } });
    await e.admin('PUT', '/v1/oidc/roles/main', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/*'], permissions: ['read'] });
  });
  after(() => e.stop());

  it('writes exactly one record per request on both ports, with principal and decision', async () => {
    const before = records().length;
    const outsider = await e.t.svid('spiffe://nexus.local/outsider');
    const jwt = await e.idp.token({ ...github('org/repo'), jti: 'jti-123' });
    const responses = [
      await e.admin('GET', '/v1/secrets/ci/org/repo/db'),
      await call(e.t.port, outsider, 'GET', '/v1/secrets/ci/org/repo/db'),
      await e.admin('GET', '/healthz'),
      await e.oidc(jwt, 'GET', '/v1/secrets/ci/org/repo/db'),
      await e.oidc('not.a.jwt', 'GET', '/v1/secrets/ci/org/repo/db'),
      await e.oidc(jwt, 'GET', '/v1/secrets/ci/org/other/db'),
      await e.oidc(undefined, 'GET', '/healthz'),
    ];
    expect(records().length - before).to.equal(responses.length);
    const [adminRead, denied, health, ciRead, badToken, ciDenied, oidcHealth] = responses.map((r) => byId(r.headers['x-request-id'] as string));
    for (const recs of [adminRead, denied, health, ciRead, badToken, ciDenied, oidcHealth]) expect(recs).to.have.length(1);
    expect(adminRead![0]).to.deep.include({ port: 'mtls', action: 'read', path: 'ci/org/repo/db', decision: 'allow', status: 200 });
    expect(adminRead![0]!.principal).to.deep.equal({ spiffe_id: 'spiffe://nexus.local/pilot' });
    expect(denied![0]).to.deep.include({ decision: 'deny', status: 403 });
    expect(denied![0]!.principal).to.deep.equal({ spiffe_id: 'spiffe://nexus.local/outsider' });
    expect(denied![0]!.reason).to.match(/permission denied/);
    expect(ciRead![0]).to.deep.include({ port: 'oidc', action: 'read', decision: 'allow', status: 200 });
    expect(ciRead![0]!.principal).to.deep.include({ issuer: e.idp.url, subject: 'repo:org/repo:ref:refs/heads/main', roles: ['main'] });
    expect(ciRead![0]!.token_id).to.match(/^[0-9a-f]{32}$/);
    expect(badToken![0]).to.deep.include({ decision: 'deny', status: 401 });
    expect(badToken![0]!.reason).to.match(/malformed/);
    expect(ciDenied![0]).to.deep.include({ decision: 'deny', status: 403 });
    expect(oidcHealth![0]).to.deep.include({ port: 'oidc', decision: 'allow' });
  });

  it('never holds a secret value, the root key or a raw token', async () => {
    const jwt = await e.idp.token({ ...github('org/repo'), jti: 'jti-secret-456' });
    await e.oidc(jwt, 'GET', '/v1/secrets/ci/org/repo/db');
    const ex = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt });
    await e.oidc(ex.body.token, 'GET', '/v1/secrets/ci/org/repo/db');
    const rootKey = fs.readFileSync(path.join(e.t.dir, 'root.key'), 'utf8').trim();
    const haystacks = { audit: fs.readFileSync(file, 'utf8'), log: e.logs() };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const needle of ['VALUE-never-logged-9d1c', rootKey, Buffer.from(rootKey, 'base64').toString('hex'), jwt, jwt.split('.')[2]!, ex.body.token, 'jti-secret-456']) {
        expect(text.includes(needle), `${where} holds ${needle.slice(0, 12)}...`).to.equal(false);
      }
    }
    // Exchanged-token requests are correlatable by token_id, not replayable.
    const viaToken = records().filter((r) => r.principal?.via === 'exchanged_token');
    expect(viaToken.at(-1)!.token_id).to.match(/^[0-9a-f]{32}$/);
  });

  it('nexus-audit verify passes an intact chain and names an edited or deleted record', async () => {
    const env = testEnv(e.t.dir);
    const ok = await runBin('nexus-audit', ['verify'], env);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/audit trail intact: \d+ record/);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const copy = path.join(e.t.dir, 'copy.jsonl');
    // Edit a request's record (the third or later; signal records carry no request id): attributed to another request.
    const at = lines.findIndex((l, i) => i >= 2 && l.includes('"request_id":"req_'));
    const edited = [...lines];
    edited[at] = edited[at]!.replace(/"request_id":"req_/, '"request_id":"rex_');
    expect(edited[at]).to.not.equal(lines[at]);
    fs.writeFileSync(copy, `${edited.join('\n')}\n`);
    const bad = await runBin('nexus-audit', ['verify', '--file', copy], env);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.include(`broken at copy.jsonl:${at + 1}: record was altered`);
    // Delete record 4.
    fs.writeFileSync(copy, `${[...lines.slice(0, 3), ...lines.slice(4)].join('\n')}\n`);
    const gap = await runBin('nexus-audit', ['verify', '--file', copy], env);
    expect(gap.code).to.equal(1);
    expect(gap.stderr).to.match(/broken at copy\.jsonl:4: chain broken/);
  });

  it('records admin script runs in their own chain beside the server\'s', async () => {
    const serverRecords = records().length;
    const r = await runBin('nexus-backup', [path.join(e.t.dir, 'b.db')], testEnv(e.t.dir));
    expect(r.code, r.stderr).to.equal(0);
    expect(records().length, 'nothing appended to the server\'s file').to.equal(serverRecords);
    const scripts = fs.readFileSync(path.join(e.t.dir, 'audit-scripts.jsonl'), 'utf8').trim().split('\n');
    const last = JSON.parse(scripts.at(-1)!) as Rec;
    expect(last).to.deep.include({ port: 'script', decision: 'allow', status: 0 });
    expect(last.action).to.match(/^nexus-backup .*b\.db$/);
    expect((await runBin('nexus-audit', ['verify'], testEnv(e.t.dir))).code).to.equal(0);
  });

  it('fails closed: an unwritable audit file makes secret reads 503', async () => {
    fs.renameSync(file, `${file}.saved`);
    fs.mkdirSync(file); // a directory where the file should be: every append fails
    try {
      await sleep(IDENTITY_CHECK_MS + 50); // once the server checks the path again (by time)
      const m = await e.admin('GET', '/v1/secrets/ci/org/repo/db');
      expect(m.status).to.equal(503);
      expect(m.text).to.not.include('VALUE-never-logged');
      const o = await e.oidc(await e.idp.token(github('org/repo')), 'GET', '/v1/secrets/ci/org/repo/db');
      expect(o.status).to.equal(503);
      expect(o.text).to.not.include('VALUE-never-logged');
      expect((await e.admin('GET', '/readyz')).status).to.equal(503);
    } finally {
      fs.rmdirSync(file);
      fs.renameSync(`${file}.saved`, file);
    }
    expect((await e.admin('GET', '/v1/secrets/ci/org/repo/db')).status).to.equal(200);
  });
});
