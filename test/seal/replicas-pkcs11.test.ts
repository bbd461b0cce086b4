import { expect } from 'chai';
import { createTestDatabase, requirePg, sql, type TestDatabase } from '../helpers/pg.js';
import { startReplicas, type ReplicaSet } from '../helpers/replicas.js';
import { operatorInit } from '../helpers/seal.js';
import { initSoftToken, type SoftToken } from '../helpers/softhsm.js';
import { tempDir } from '../helpers/env.js';
import fs from 'node:fs';
import path from 'node:path';

describe('replicas on PostgreSQL with a pkcs11 seal: each unseals unattended, one sealed answers 503 while the other serves', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let set: ReplicaSet;
  let token: SoftToken;

  before(async function () {
    const server = await requirePg(this);
    db = await createTestDatabase(server);
    token = initSoftToken();
    await operatorInit(tempDir('nexus-rep-init'), { ...token.env, NEXUS_DATABASE_URL: db.url }, 3, 2);
    // No NEXUS_ROOT_KEY: the token is the only way to the key.
    set = await startReplicas(db.url, ['a', 'b'], { ...token.env, NEXUS_ROOT_KEY: '' });
  });
  after(async () => {
    await set?.stop();
    await db?.drop();
  });

  it('both replicas unsealed at start and share the secrets', async () => {
    const [a, b] = set.replicas;
    for (const r of [a!, b!]) expect((await r.call('GET', '/v1/sys/seal-status')).body).to.include({ sealed: false, type: 'pkcs11' });
    expect((await a!.call('PUT', '/v1/secrets/shared/one', { data: { v: 'from-a' } })).status).to.equal(201);
    expect((await b!.call('GET', '/v1/secrets/shared/one')).body.data).to.deep.equal({ v: 'from-a' });
  });

  it('B sealed by an admin: 503 sealed on both its ports, A keeps serving and writing', async () => {
    const [a, b] = set.replicas;
    expect((await b!.call('PUT', '/v1/sys/seal')).body.sealed).to.equal(true);
    const versionBefore = await sql<{ n: string }>(db.url, 'SELECT count(*)::text AS n FROM secret_versions');
    for (const r of [await b!.call('GET', '/v1/secrets/shared/one'), await b!.call('PUT', '/v1/secrets/shared/two', { data: { v: 'x' } }), await b!.oidc(undefined, 'GET', '/v1/secrets/shared/one')]) {
      expect(r.status).to.equal(503);
      expect(r.body.error.code).to.equal('sealed');
    }
    expect((await b!.call('GET', '/readyz')).status).to.equal(503);
    expect(await sql<{ n: string }>(db.url, 'SELECT count(*)::text AS n FROM secret_versions')).to.deep.equal(versionBefore);
    expect((await a!.call('GET', '/v1/secrets/shared/one')).body.data).to.deep.equal({ v: 'from-a' });
    expect((await a!.call('PUT', '/v1/secrets/shared/three', { data: { v: 'still' } })).status).to.equal(201);
    expect((await a!.call('GET', '/readyz')).status).to.equal(200);
  });

  it('a replica started sealed (shamir) listens, answers 503, and writes nothing: no trail, no anchor, no row', async () => {
    const db2 = await createTestDatabase(await requirePg(this as never));
    try {
      await operatorInit(tempDir('nexus-rep-shamir'), { NEXUS_SEAL: 'shamir', NEXUS_DATABASE_URL: db2.url }, 3, 2);
      const snapshot = () => sql(db2.url, "SELECT (SELECT count(*) FROM meta)::text AS meta, (SELECT count(*) FROM audit_anchor)::text AS anchors, (SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM meta) AS kv");
      const before = await snapshot();
      const sealed = await set.start('sealed', { NEXUS_SEAL: 'shamir', NEXUS_DATABASE_URL: db2.url, NEXUS_ROOT_KEY: '' });
      expect((await sealed.call('GET', '/v1/sys/seal-status')).body).to.include({ sealed: true, threshold: 2 });
      expect((await sealed.call('PUT', '/v1/secrets/x', { data: { v: '1' } })).body.error.code).to.equal('sealed');
      expect((await sealed.oidc(undefined, 'GET', '/v1/secrets/x')).status).to.equal(503);
      expect(await snapshot()).to.deep.equal(before);
      expect(fs.existsSync(path.join(sealed.dir, 'audit.jsonl'))).to.equal(false);
      await sealed.kill('SIGKILL');
    } finally {
      await db2.drop();
    }
  });

  it('B restarted: unseals itself through the token and reads what A wrote meanwhile', async () => {
    const b = set.replicas[1]!;
    await b.kill('SIGKILL');
    const again = await set.start('b2', { ...token.env, NEXUS_ROOT_KEY: '' });
    expect((await again.call('GET', '/v1/secrets/shared/three')).body.data).to.deep.equal({ v: 'still' });
  });
});
