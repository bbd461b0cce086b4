import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { issueCert, loadIssuer } from '../../nexus/pki/x509.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { createPgCluster, type PgCluster } from '../helpers/pg-cluster.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';
import { startReplicas, within, type ReplicaSet } from '../helpers/replicas.js';
import type { ClientCreds } from '../helpers/server.js';
import { runBin } from '../helpers/env.js';

async function svid(set: ReplicaSet, spiffeId: string): Promise<ClientCreds> {
  const ca = await loadIssuer(fs.readFileSync(path.join(set.pki, 'ca.crt'), 'utf8'), fs.readFileSync(path.join(set.pki, 'ca.key'), 'utf8'));
  const leaf = await issueCert(ca, { uris: [spiffeId] });
  return { cert: leaf.certPem, key: leaf.keyPem, ca: set.admin.ca };
}

describe('replicas: several Nexus processes on one PostgreSQL database', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let set: ReplicaSet;
  let idp: TestIdp;

  before(async function () {
    const server = await requirePg(this);
    db = await createTestDatabase(server);
    idp = await startIdp();
    set = await startReplicas(db.url, ['a', 'b']);
  });
  after(async () => {
    await set?.stop();
    await idp?.stop();
    await db?.drop();
  });

  it('a write through A is read through B (and listed there)', async () => {
    const [a, b] = set.replicas;
    expect((await a!.call('PUT', '/v1/secrets/shared/one', { data: { v: 'from-a' } })).status).to.equal(201);
    const got = await b!.call('GET', '/v1/secrets/shared/one');
    expect(got.status, got.text).to.equal(200);
    expect(got.body.data).to.deep.equal({ v: 'from-a' });
    expect((await b!.call('GET', '/v1/secrets?prefix=shared/')).body.paths).to.deep.equal(['shared/one']);
  });

  it('concurrent check-and-set through A and B: never both succeed', async () => {
    const [a, b] = set.replicas;
    expect((await a!.call('PUT', '/v1/secrets/shared/cas', { data: { v: '0' } })).status).to.equal(201);
    for (let version = 1; version <= 20; version++) {
      const [ra, rb] = await Promise.all([
        a!.call('PUT', '/v1/secrets/shared/cas', { data: { v: `a${version}` }, cas: version }),
        b!.call('PUT', '/v1/secrets/shared/cas', { data: { v: `b${version}` }, cas: version }),
      ]);
      const statuses = [ra.status, rb.status].sort();
      expect(statuses, `round ${version}: ${ra.text} / ${rb.text}`).to.deep.equal([200, 409]);
    }
    expect((await b!.call('GET', '/v1/secrets/shared/cas:metadata')).body.current_version).to.equal(21);
  });

  it('a policy narrowed through A denies through B within 1 s', async () => {
    const [a, b] = set.replicas;
    const app = await svid(set, 'spiffe://nexus.local/app');
    await a!.call('PUT', '/v1/secrets/app/db', { data: { pw: 'x' } });
    expect((await a!.call('PUT', '/v1/policies/app', { spiffe_id: 'spiffe://nexus.local/app', paths: ['app/**'], permissions: ['read'] })).status).to.equal(201);
    await within(1000, async () => (await b!.call('GET', '/v1/secrets/app/db', undefined, app)).status === 200, 'the new policy allows on B');
    expect((await a!.call('PUT', '/v1/policies/app', { spiffe_id: 'spiffe://nexus.local/app', paths: ['other/**'], permissions: ['read'] })).status).to.equal(200);
    const took = await within(1000, async () => (await b!.call('GET', '/v1/secrets/app/db', undefined, app)).status === 403, 'the narrowed policy denies on B');
    expect(took).to.be.below(1000);
  });

  it('issuers and roles made through A serve on B; a token revoked through A is refused by B at once', async () => {
    const [a, b] = set.replicas;
    expect((await a!.call('PUT', '/v1/oidc/issuers/ci', { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'] })).status).to.equal(201);
    const role = { issuer: 'ci', bound_claims: { sub: 'repo:org/app:ref:refs/heads/main' }, paths: ['ci/app/**'], permissions: ['read'] };
    expect((await a!.call('PUT', '/v1/oidc/roles/deploy', role)).status).to.equal(201);
    await a!.call('PUT', '/v1/secrets/ci/app/token', { data: { t: 'ci-secret' } });
    const jwt = await idp.token({ sub: 'repo:org/app:ref:refs/heads/main', aud: 'nexus' });
    let token = '';
    await within(5000, async () => {
      const r = await b!.oidc(undefined, 'POST', '/v1/auth/token', { jwt });
      if (r.status === 200) token = r.body.token as string;
      return r.status === 200;
    }, 'B exchanges a JWT of the issuer made on A');
    expect((await b!.oidc(token, 'GET', '/v1/secrets/ci/app/token')).status).to.equal(200);
    const revoked = await a!.call('POST', '/v1/oidc/roles/deploy:revoke-tokens');
    expect(revoked.body.revoked).to.equal(1);
    // No wait: B refuses the token on its very next use.
    expect((await b!.oidc(token, 'GET', '/v1/secrets/ci/app/token')).status).to.equal(401);
    // A job gives its token back through B: A refuses it on its very next use.
    const mine = (await b!.oidc(undefined, 'POST', '/v1/auth/token', { jwt })).body.token as string;
    expect((await a!.oidc(mine, 'GET', '/v1/secrets/ci/app/token')).status).to.equal(200);
    expect((await b!.oidc(mine, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
    expect((await a!.oidc(mine, 'GET', '/v1/secrets/ci/app/token')).status).to.equal(401);
  });

  it('a role narrowed through A bites through B at once', async () => {
    const [a, b] = set.replicas;
    const jwt = await idp.token({ sub: 'repo:org/app:ref:refs/heads/main', aud: 'nexus' });
    expect((await b!.oidc(jwt, 'GET', '/v1/secrets/ci/app/token')).status).to.equal(200);
    const narrowed = { issuer: 'ci', bound_claims: { sub: 'repo:org/app:ref:refs/heads/main' }, paths: ['ci/other/**'], permissions: ['read'] };
    expect((await a!.call('PUT', '/v1/oidc/roles/deploy', narrowed)).status).to.equal(200);
    expect((await b!.oidc(jwt, 'GET', '/v1/secrets/ci/app/token')).status).to.equal(403);
  });

  it('each replica writes its own audit trail, its id in every record', async () => {
    for (const r of set.replicas) {
      const lines = fs.readFileSync(path.join(r.dir, 'audit.jsonl'), 'utf8').trim().split('\n');
      expect(lines.length).to.be.greaterThan(3);
      for (const l of lines) expect((JSON.parse(l) as { replica?: string }).replica, l).to.equal(r.id);
    }
  });

  it('SIGKILL of A in the middle of writes loses nothing A acknowledged, and B keeps serving', async () => {
    const c = await set.start('c');
    const b = set.replicas[1]!;
    const acked: Array<{ path: string; v: string }> = [];
    let stop = false;
    // Four writers keep requests in flight on C when it dies.
    const writers = [0, 1, 2, 3].map(async (w) => {
      for (let i = 0; !stop; i++) {
        const p = `kill/w${w}/s${i}`;
        const v = `w${w}-${i}`;
        try {
          const r = await c.call('PUT', `/v1/secrets/${p}`, { data: { v } });
          if (r.status === 201) acked.push({ path: p, v });
        } catch {
          return; // the connection died with the process
        }
      }
    });
    await within(30_000, async () => acked.length >= 40, 'C acknowledged some writes');
    c.proc.child.kill('SIGKILL');
    await c.proc.exited;
    stop = true;
    await Promise.all(writers);
    for (const { path: p, v } of acked) {
      const r = await b.call('GET', `/v1/secrets/${p}`);
      expect(r.status, p).to.equal(200);
      expect(r.body.data).to.deep.equal({ v });
    }
    expect((await b.call('PUT', '/v1/secrets/kill/after', { data: { v: 'b' } })).status).to.equal(201);
  });

  it("nexus-audit verify checks one replica's trail against that replica's anchor in the shared database", async () => {
    const b = set.replicas[1]!;
    await b.kill('SIGTERM');
    const env = { NEXUS_DATA_DIR: b.dir, NEXUS_DATABASE_URL: db.url, NEXUS_ROOT_KEY: set.rootKey, NEXUS_REPLICA_ID: b.id, NEXUS_LOG_LEVEL: 'fatal' };
    const ok = await runBin('nexus-audit', ['verify'], env);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/audit trail intact: \d+ record/);
    // Cut the last record: the anchor in the database still names it.
    const file = path.join(b.dir, 'audit.jsonl');
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    fs.writeFileSync(file, `${lines.slice(0, -1).join('\n')}\n`);
    const cut = await runBin('nexus-audit', ['verify'], env);
    expect(cut.code).to.equal(1);
    expect(cut.stderr).to.match(/missing|cut/);
  });
});

describe('replicas survive a PostgreSQL restart', function () {
  this.timeout(240_000);
  let cluster: PgCluster | null = null;
  let set: ReplicaSet | undefined;

  before(async function () {
    await requirePg(this);
    cluster = await createPgCluster();
    if (!cluster) this.skip();
  });
  after(async () => {
    await set?.stop();
    await cluster?.destroy();
  });

  it('503 while the database is down, recovery by themselves after, and change notices flow again', async () => {
    set = await startReplicas(cluster!.url.replace(/\/postgres$/, '/postgres'), ['a', 'b']);
    const [a, b] = set.replicas;
    expect((await a!.call('PUT', '/v1/secrets/r/x', { data: { v: '1' } })).status).to.equal(201);
    await cluster!.stop('fast');
    for (const r of [a!, b!]) {
      await within(15_000, async () => (await r.call('GET', '/v1/secrets/r/x')).status === 503, `${r.id} answers 503 while the database is down`);
      expect((await r.call('PUT', '/v1/secrets/r/y', { data: { v: '2' } })).status).to.equal(503);
      expect((await r.call('GET', '/readyz')).status).to.equal(503);
    }
    await cluster!.start();
    for (const r of [a!, b!]) {
      await within(30_000, async () => (await r.call('GET', '/v1/secrets/r/x')).status === 200, `${r.id} serves again`);
    }
    expect((await b!.call('PUT', '/v1/secrets/r/y', { data: { v: '2' } })).status).to.equal(201);
    // B's LISTEN connection came back: a policy made on A reaches B.
    const app = await svid(set, 'spiffe://nexus.local/app');
    expect((await a!.call('PUT', '/v1/policies/after', { spiffe_id: 'spiffe://nexus.local/app', paths: ['r/**'], permissions: ['read'] })).status).to.equal(201);
    await within(5000, async () => (await b!.call('GET', '/v1/secrets/r/x', undefined, app)).status === 200, 'a policy made on A after the restart allows on B');
  });
});
