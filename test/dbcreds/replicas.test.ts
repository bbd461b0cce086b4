import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { github, startIdp, type TestIdp } from '../helpers/idp.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';
import { startReplicas, within, type ReplicaSet } from '../helpers/replicas.js';

/** lease.revoke records that succeeded, by lease id, over every replica's audit trail. */
function revocations(set: ReplicaSet): Map<string, number> {
  const n = new Map<string, number>();
  for (const r of set.replicas) {
    const file = path.join(r.dir, 'audit.jsonl');
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').trim().split('\n')) {
      const rec = JSON.parse(line) as { action: string; decision: string; lease?: { id: string } };
      if (rec.action === 'lease.revoke' && rec.decision === 'allow' && rec.lease) n.set(rec.lease.id, (n.get(rec.lease.id) ?? 0) + 1);
    }
  }
  return n;
}

const revokedMetric = (text: string) => Number(/^nexus_lease_revocations_total\{outcome="revoked"\} (\d+)$/m.exec(text)?.[1] ?? 0);

describe('leases with two replicas on one PostgreSQL database', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let target: Target;
  let set: ReplicaSet;
  let idp: TestIdp;
  let role: string;

  before(async function () {
    const server = await requirePg(this);
    db = await createTestDatabase(server);
    target = await createTarget(server);
    role = `r${target.tag}`;
    idp = await startIdp();
    set = await startReplicas(db.url, ['a', 'b']);
    const a = set.replicas[0]!;
    expect((await a.call('PUT', '/v1/db/connections/main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: [role] })).status).to.equal(201);
    expect((await a.call('PUT', `/v1/db/roles/${role}`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'] })).status).to.equal(201);
    const issuer = await a.call('PUT', '/v1/oidc/issuers/ci', { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: ['repository'] });
    expect(issuer.status, issuer.text).to.equal(201);
    expect((await a.call('PUT', '/v1/oidc/roles/deployer', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${role}`], permissions: ['read'] })).status).to.equal(201);
  });
  after(async () => {
    await set?.stop();
    await idp?.stop();
    await db?.drop();
    await target?.drop();
  });

  it('leases created on A and expiring are each revoked exactly once, by one replica or the other', async () => {
    const [a, b] = set.replicas as [ReplicaSet['replicas'][0], ReplicaSet['replicas'][0]];
    const made: { lease_id: string; username: string }[] = [];
    // As many as one caller may hold (NEXUS_DB_MAX_LEASES_PER_CALLER's default).
    for (let i = 0; i < 10; i++) {
      const r = await a.call('GET', `/v1/db/creds/${role}?ttl=2`);
      expect(r.status, r.text).to.equal(200);
      made.push(r.body);
    }
    const before = revokedMetric((await a.call('GET', '/metrics')).text) + revokedMetric((await b.call('GET', '/metrics')).text);
    await within(2000 + 6000, async () => (await target.users(`v_${role}`)).length === 0, 'every expired user dropped');
    // Both sweep side by side; their claims keep each lease to one of them.
    await within(3000, async () => made.every((m) => revocations(set).get(m.lease_id) === 1), 'one revocation record per lease');
    const counts = revocations(set);
    for (const m of made) expect(counts.get(m.lease_id), m.lease_id).to.equal(1);
    const after = revokedMetric((await a.call('GET', '/metrics')).text) + revokedMetric((await b.call('GET', '/metrics')).text);
    expect(after - before).to.equal(made.length);
    expect((await a.call('GET', '/metrics')).text).to.match(/^nexus_leases_active 0$/m);
  });

  it("a lease created on A (an exchanged token's) is renewed and revoked on B, with the same token; revoke-self on B ends the rest", async () => {
    const [a, b] = set.replicas as [ReplicaSet['replicas'][0], ReplicaSet['replicas'][0]];
    const token = (await a.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await idp.token(github('org/repo')) })).body.token as string;
    const one = await a.oidc(token, 'GET', `/v1/db/creds/${role}`);
    expect(one.status, one.text).to.equal(200);
    const two = await a.oidc(token, 'GET', `/v1/db/creds/${role}`);
    const renewed = await b.oidc(token, 'PUT', '/v1/leases/renew', { lease_id: one.body.lease_id, increment: 1200 });
    expect(renewed.status, renewed.text).to.equal(200);
    // Never past the token's own end (its role's token_ttl_s: the default 900 s).
    expect(renewed.body.lease_duration).to.be.within(880, 900);
    expect(renewed.body.renewable).to.equal(false);
    const revoked = await b.oidc(token, 'PUT', '/v1/leases/revoke', { lease_id: one.body.lease_id });
    expect(revoked.status, revoked.text).to.equal(204);
    expect(await target.users(one.body.username)).to.deep.equal([]);
    expect(await target.users(two.body.username)).to.deep.equal([two.body.username]);
    // Admin on B renews A's mTLS lease too.
    const mtls = await a.call('GET', `/v1/db/creds/${role}?ttl=60`);
    expect((await b.call('PUT', '/v1/leases/renew', { lease_id: mtls.body.lease_id, increment: 120 })).status).to.equal(200);
    expect((await b.call('PUT', '/v1/leases/revoke', { lease_id: mtls.body.lease_id })).status).to.equal(204);
    expect((await b.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
    expect(await target.users(two.body.username)).to.deep.equal([]);
  });
});
