import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { issueCert, loadIssuer } from '../../nexus/pki/x509.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { createTestDatabase, requirePg, sql, type TestDatabase } from '../helpers/pg.js';
import { startReplicas, within, type Replica, type ReplicaSet } from '../helpers/replicas.js';
import type { ClientCreds } from '../helpers/server.js';

async function svid(set: ReplicaSet, spiffeId: string): Promise<ClientCreds> {
  const ca = await loadIssuer(fs.readFileSync(path.join(set.pki, 'ca.crt'), 'utf8'), fs.readFileSync(path.join(set.pki, 'ca.key'), 'utf8'));
  const leaf = await issueCert(ca, { uris: [spiffeId] });
  return { cert: leaf.certPem, key: leaf.keyPem, ca: set.admin.ca };
}

// Replica A connects as a role that may not call pg_notify: every change it
// commits is real, and every notice it sends after the commit is lost, as if
// A had died between the two. No fault hook in Nexus: the loss is PostgreSQL's.
describe('replicas: a lost change notice costs at most the poll period', function () {
  this.timeout(180_000);
  let server: string;
  let db: TestDatabase;
  let set: ReplicaSet;
  let idp: TestIdp;
  let mute: string;
  let muteUrl: string;
  let a: Replica;
  let b: Replica;

  before(async function () {
    server = await requirePg(this);
    db = await createTestDatabase(server);
    idp = await startIdp();
    // B first: it applies the migrations as the database's owner.
    set = await startReplicas(db.url, ['b'], { NEXUS_OIDC_FAILED_AUTH_RPS: '10000' });
    b = set.replicas[0]!;
    mute = `nexus_mute_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await sql(db.url, `CREATE ROLE ${mute} LOGIN PASSWORD '${password}'`);
    await sql(db.url, `GRANT ALL ON SCHEMA public TO ${mute}`);
    await sql(db.url, `GRANT ALL ON ALL TABLES IN SCHEMA public TO ${mute}`);
    await sql(db.url, 'REVOKE EXECUTE ON FUNCTION pg_notify(text, text) FROM PUBLIC');
    const u = new URL(db.url);
    u.username = mute;
    u.password = password;
    muteUrl = u.toString();
    a = await set.start('a', { NEXUS_DATABASE_URL: muteUrl });
  });
  after(async () => {
    await set?.stop();
    await idp?.stop();
    await db?.drop();
    if (mute) await sql(server, `DROP ROLE IF EXISTS ${mute}`).catch(() => {});
  });

  it("A's notices are indeed lost (the premise of this suite)", async () => {
    const err = await sql(muteUrl, "SELECT pg_notify('nexus_changes', 'policies')").then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/permission denied/);
  });

  it('a policy made through A allows through B within 1 s, and narrowed through A denies through B within 1 s', async () => {
    const app = await svid(set, 'spiffe://nexus.local/app');
    expect((await a.call('PUT', '/v1/secrets/app/db', { data: { pw: 'x' } })).status).to.equal(201);
    expect((await b.call('GET', '/v1/secrets/app/db', undefined, app)).status).to.equal(403);
    expect((await a.call('PUT', '/v1/policies/app', { spiffe_id: 'spiffe://nexus.local/app', paths: ['app/**'], permissions: ['read'] })).status).to.equal(201);
    await within(1000, async () => (await b.call('GET', '/v1/secrets/app/db', undefined, app)).status === 200, 'the policy made on A allows on B');
    expect((await a.call('PUT', '/v1/policies/app', { spiffe_id: 'spiffe://nexus.local/app', paths: ['other/**'], permissions: ['read'] })).status).to.equal(200);
    await within(1000, async () => (await b.call('GET', '/v1/secrets/app/db', undefined, app)).status === 403, 'the policy narrowed on A denies on B');
    expect((await a.call('DELETE', '/v1/policies/app')).status).to.be.oneOf([200, 204]);
  });

  it('an issuer made through A serves on B within 1 s, and its audiences narrowed through A bite on B within 1 s', async () => {
    const issuer = { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'] };
    expect((await a.call('PUT', '/v1/oidc/issuers/ci', issuer)).status).to.equal(201);
    const role = { issuer: 'ci', bound_claims: { sub: 'repo:org/app:ref:refs/heads/main' }, paths: ['ci/app/**'], permissions: ['read'] };
    expect((await a.call('PUT', '/v1/oidc/roles/deploy', role)).status).to.equal(201);
    expect((await a.call('PUT', '/v1/secrets/ci/app/token', { data: { t: 'ci-secret' } })).status).to.equal(201);
    const jwt = await idp.token({ sub: 'repo:org/app:ref:refs/heads/main', aud: 'nexus' });
    await within(1000, async () => (await b.oidc(jwt, 'GET', '/v1/secrets/ci/app/token')).status === 200, 'B accepts a JWT of the issuer made on A');
    expect((await a.call('PUT', '/v1/oidc/issuers/ci', { ...issuer, audiences: ['elsewhere'] })).status).to.equal(200);
    await within(1000, async () => (await b.oidc(jwt, 'GET', '/v1/secrets/ci/app/token')).status === 401, 'B refuses the audience A removed');
  });
});
