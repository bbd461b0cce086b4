import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';

const SEAL = { NEXUS_SEAL: 'shamir' };

async function init(dir: string, shares = 5, threshold = 3): Promise<string[]> {
  const r = await runBin('nexus-operator', ['init', '--shares', String(shares), '--threshold', String(threshold), '--json'], testEnv(dir, SEAL));
  expect(r.code, r.stderr).to.equal(0);
  const out = JSON.parse(r.stdout) as { shares: string[]; threshold: number };
  expect(out.threshold).to.equal(threshold);
  return out.shares;
}

describe('Shamir seal: sealed start, unseal by quorum, seal again', function () {
  this.timeout(60_000);
  let dir: string;
  let shares: string[];
  let t: TestServer;
  let plugin: OidcPlugin;
  let oidcPort: number;
  let initAgain: Awaited<ReturnType<typeof runBin>>;
  const admin = (method: string, path: string, body?: unknown) => call(t.port, t.admin, method, path, body);
  const oidc = (method: string, path: string) => call(oidcPort, { ca: t.caPem }, method, path);

  before(async () => {
    dir = tempDir('nexus-shamir');
    shares = await init(dir);
    initAgain = await runBin('nexus-operator', ['init', '--shares', '3', '--threshold', '2'], testEnv(dir, SEAL));
    plugin = new OidcPlugin();
    t = await startTestServer({ ...SEAL, NEXUS_OIDC_ADDR: '127.0.0.1:0' }, { dir, plugins: [plugin] });
    oidcPort = plugin.addresses().oidc!.port;
  });
  after(() => t?.stop());

  it('init prints 5 distinct shares and refuses a second run, naming the seal', async () => {
    expect(new Set(shares).size).to.equal(5);
    for (const s of shares) expect(s).to.match(/^nxs1-[0-9a-f]{16}-[A-Za-z0-9_-]+$/);
    expect(initAgain.code).to.equal(1);
    expect(initAgain.stdout).to.equal('');
    expect(initAgain.stderr).to.match(/already holds a shamir seal \(3 of 5, split [0-9a-f]{16}/);
  });

  it('sealed: both ports answer 503 sealed, healthz 200, readyz not ready, seal-status answers', async () => {
    const status = await admin('GET', '/v1/sys/seal-status');
    expect(status.status).to.equal(200);
    expect(status.body).to.include({ sealed: true, type: 'shamir', threshold: 3, shares: 5, progress: 0 });
    expect(status.body.nonce).to.match(/^[0-9a-f]{32}$/);
    for (const [m, p] of [['GET', '/v1/secrets/a'], ['GET', '/v1/policies'], ['GET', '/metrics'], ['GET', '/openapi.json'], ['PUT', '/v1/sys/seal'], ['GET', '/nope']]) {
      const r = await admin(m!, p!);
      expect(r.status, `${m} ${p}`).to.equal(503);
      expect(r.body.error.code).to.equal('sealed');
    }
    for (const p of ['/v1/secrets/a', '/v1/auth/token', '/openapi.json', '/v1/sys/health']) {
      const r = await oidc('GET', p);
      expect(r.status, p).to.equal(503);
      expect(r.body.error.code).to.equal('sealed');
    }
    expect((await admin('GET', '/healthz')).status).to.equal(200);
    expect((await oidc('GET', '/healthz')).status).to.equal(200);
    const ready = await admin('GET', '/readyz');
    expect(ready.status).to.equal(503);
    expect(ready.body.checks.root_key).to.equal(false);
    expect((await oidc('GET', '/readyz')).status).to.equal(503);
  });

  it('bad shares are refused with their rule; a share of another split resets the progress', async () => {
    const first = await admin('PUT', '/v1/sys/unseal', { key: shares[0] });
    expect(first.body.progress).to.equal(1);
    const cases: Array<[unknown, number, string]> = [
      [{ key: 'garbage' }, 400, 'not a Nexus unseal share'],
      [{ key: shares[1]!.slice(0, -4) }, 400, 'a share holds 33 bytes'],
      [{ key: shares[1], nonce: 'f'.repeat(32) }, 409, 'another unseal attempt'],
      [{ key: shares[1], extra: 1 }, 400, ''],
    ];
    for (const [body, status, msg] of cases) {
      const r = await admin('PUT', '/v1/sys/unseal', body);
      expect(r.status, JSON.stringify(body)).to.equal(status);
      expect(r.text).to.include(msg);
      expect((await admin('GET', '/v1/sys/seal-status')).body.progress).to.equal(1);
    }
    const otherDir = tempDir('nexus-shamir-other');
    const foreign = (await init(otherDir, 3, 2))[0];
    const r = await admin('PUT', '/v1/sys/unseal', { key: foreign });
    expect(r.status).to.equal(400);
    expect(r.text).to.include('another split');
    expect((await admin('GET', '/v1/sys/seal-status')).body).to.include({ sealed: true, progress: 0 });
  });

  it('2 shares keep it sealed; the third unseals it and it serves on both ports', async () => {
    let nonce = (await admin('GET', '/v1/sys/seal-status')).body.nonce;
    const one = await admin('PUT', '/v1/sys/unseal', { key: shares[2], nonce });
    expect(one.body).to.include({ sealed: true, progress: 1 });
    nonce = one.body.nonce;
    // The same share twice counts once.
    expect((await admin('PUT', '/v1/sys/unseal', { key: shares[2], nonce })).body.progress).to.equal(1);
    expect((await admin('PUT', '/v1/sys/unseal', { key: shares[4], nonce })).body).to.include({ sealed: true, progress: 2 });
    expect((await admin('GET', '/v1/secrets/a')).status).to.equal(503);
    const done = await admin('PUT', '/v1/sys/unseal', { key: shares[0], nonce });
    expect(done.status, done.text).to.equal(200);
    expect(done.body).to.include({ sealed: false, progress: 0 });
    expect((await admin('PUT', '/v1/secrets/app/db', { data: { password: 'hunter2' } })).status).to.equal(201);
    expect((await admin('GET', '/v1/secrets/app/db')).body.data).to.deep.equal({ password: 'hunter2' });
    expect((await admin('GET', '/readyz')).status).to.equal(200);
    expect((await oidc('GET', '/readyz')).status).to.equal(200);
    expect((await oidc('GET', '/v1/secrets/app/db')).status).to.equal(401);
  });

  it('a wrong quorum (a corrupted share of the right split) is refused and resets', async () => {
    expect((await admin('PUT', '/v1/sys/seal')).body.sealed).to.equal(true);
    const [, head, tail] = /^(nxs1-[0-9a-f]{16})-(.+)$/.exec(shares[1]!)!;
    const bytes = Buffer.from(tail!, 'base64url');
    bytes[0] = bytes[0]! ^ 0xff;
    const bad = `${head}-${bytes.toString('base64url')}`;
    await admin('PUT', '/v1/sys/unseal', { key: shares[0] });
    await admin('PUT', '/v1/sys/unseal', { key: shares[3] });
    const r = await admin('PUT', '/v1/sys/unseal', { key: bad });
    expect(r.status).to.equal(400);
    expect(r.text).to.include('do not open this seal');
    expect((await admin('GET', '/v1/sys/seal-status')).body).to.include({ sealed: true, progress: 0 });
  });

  it('sealed again by an admin: 503 until a quorum, then the same secret reads; reset clears progress', async () => {
    const other = await t.svid('spiffe://nexus.local/not-admin');
    expect((await call(t.port, other, 'GET', '/v1/sys/seal-status')).status).to.equal(200);
    expect((await admin('GET', '/v1/secrets/app/db')).body.error.code).to.equal('sealed');
    expect((await oidc('GET', '/v1/secrets/app/db')).body.error.code).to.equal('sealed');
    // A load balancer probing either port stops sending work to a sealed replica.
    expect((await admin('GET', '/readyz')).status).to.equal(503);
    expect((await oidc('GET', '/readyz')).status).to.equal(503);
    await call(t.port, other, 'PUT', '/v1/sys/unseal', { key: shares[1] });
    expect((await admin('PUT', '/v1/sys/unseal', { reset: true })).body.progress).to.equal(0);
    for (const s of shares.slice(2)) await admin('PUT', '/v1/sys/unseal', { key: s });
    expect((await admin('GET', '/v1/secrets/app/db')).body.data).to.deep.equal({ password: 'hunter2' });
    expect((await oidc('GET', '/readyz')).status).to.equal(200);
    const metrics = await admin('GET', '/metrics');
    expect(metrics.text).to.match(/^nexus_sealed 0$/m);
    expect(metrics.text).to.match(/^nexus_unseal_failures_total [1-9]/m);
  });

  it('a non-admin cannot seal it', async () => {
    const other = await t.svid('spiffe://nexus.local/not-admin');
    expect((await call(t.port, other, 'PUT', '/v1/sys/seal')).status).to.equal(403);
  });

  it('the trail records seal, unseal progress, refused shares and unseals (queued before the first unseal), never a share', async () => {
    await t.stop();
    const trail = fs.readFileSync(path.join(dir, 'audit.jsonl'), 'utf8');
    const actions = trail.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { action: string }).action);
    for (const a of ['seal.unseal.progress', 'seal.unseal.failed', 'seal.unseal', 'seal.seal', 'seal.unseal.reset']) expect(actions, a).to.include(a);
    // The first records of the trail are the ones queued while sealed, before it existed.
    expect(actions.indexOf('seal.unseal.failed')).to.be.lessThan(actions.indexOf('seal.unseal'));
    for (const share of shares) expect(trail).to.not.include(share.slice(22));
  });
});
