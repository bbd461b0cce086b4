import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { issueCert, loadIssuer } from '../../nexus/pki/x509.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';
import { startReplicas, within, type ReplicaSet } from '../helpers/replicas.js';
import type { ClientCreds } from '../helpers/server.js';

describe('access signals on PostgreSQL: replicas share one baseline', function () {
  this.timeout(90_000);
  let db: TestDatabase;
  let set: ReplicaSet;

  before(async function () {
    db = await createTestDatabase(await requirePg(this));
    set = await startReplicas(db.url, ['a', 'b'], { NEXUS_SIGNAL_LEARN_S: '1' });
  });
  after(async () => {
    await set?.stop();
    await db?.drop();
  });

  it('a path learned through one replica is known to the other; a new one is a signal every replica lists', async () => {
    const [a, b] = set.replicas as [ReplicaSet['replicas'][0], ReplicaSet['replicas'][0]];
    const ca = fs.readFileSync(path.join(set.pki, 'ca.crt'), 'utf8');
    const leaf = await issueCert(await loadIssuer(ca, fs.readFileSync(path.join(set.pki, 'ca.key'), 'utf8')), { uris: ['spiffe://nexus.local/svc-rep'] });
    const svc: ClientCreds = { ca, cert: leaf.certPem, key: leaf.keyPem };
    for (const p of ['app/a', 'app/b']) expect((await a.call('PUT', `/v1/secrets/${p}`, { data: { v: p } })).status).to.equal(201);
    expect((await a.call('PUT', '/v1/policies/svc', { spiffe_id: 'spiffe://nexus.local/svc-*', paths: ['app/**'], permissions: ['read'] })).status).to.equal(201);
    const mark = new Date().toISOString();
    expect((await a.call('GET', '/v1/secrets/app/a', undefined, svc)).status).to.equal(200);
    // Listing signals writes a's queued batch first: the baseline is in the database, not left to a's timer.
    expect((await a.call('GET', '/v1/signals?since=60')).status).to.equal(200);
    await sleep(1100);
    expect((await b.call('GET', '/v1/secrets/app/a', undefined, svc)).status).to.equal(200);
    expect((await b.call('GET', '/v1/secrets/app/b', undefined, svc)).status).to.equal(200);
    const listed = async (r: typeof a) => {
      const res = await r.call('GET', `/v1/signals?since=${encodeURIComponent(mark)}`);
      expect(res.status, res.text).to.equal(200);
      return JSON.stringify(res.body.signals.map((s: { signal: string; path?: string }) => [s.signal, s.path]));
    };
    // b judged its first reads once their baseline arrived from the database; a lists what b raised after b's next batch.
    await within(5000, async () => (await listed(b)) === '[["new_path","app/b"]]', 'b lists its new_path');
    await within(5000, async () => (await listed(a)) === '[["new_path","app/b"]]', 'a lists the new_path b raised');
  });
});
