import { expect } from 'chai';
import { githubHeaders, raw, workflowRun } from '../helpers/ci-events.js';
import { github, startIdp, type TestIdp } from '../helpers/idp.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';
import { startReplicas, type ReplicaSet } from '../helpers/replicas.js';
import { call } from '../helpers/server.js';

// Two replicas on one PostgreSQL database: a workflow_run completed event
// delivered to A ends the run's tokens on B at once (B reads tokens from the
// shared database at every use), and the delivery, remembered in that
// database, is a replay on B too.
describe('replicas: a CI end-of-work event delivered to one replica revokes on the other', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let set: ReplicaSet;
  let idp: TestIdp;
  const SECRET = 'whsec-replicas-7Qm2Lx9Vb4Rt';

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

  it('event on A: run 100 attempt 1\'s tokens are refused by B; run 200\'s live on; the same delivery to B is a replay', async () => {
    const [a, b] = set.replicas;
    const put = await a!.call('PUT', '/v1/oidc/issuers/gh', { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: ['repository'], webhook_secret: SECRET });
    expect(put.status, put.text).to.equal(201);
    expect((await a!.call('PUT', '/v1/oidc/roles/repo', { issuer: 'gh', bound_claims: { repository: 'org/repo' }, paths: ['ci/**'], permissions: ['read'] })).status).to.equal(201);
    const exchange = async (runId: number) => {
      const jwt = await idp.token(github('org/repo', 'refs/heads/main', { run_id: String(runId), run_attempt: '1' }));
      const r = await b!.oidc(undefined, 'POST', '/v1/auth/token', { jwt });
      expect(r.status, r.text).to.equal(200);
      return r.body.token as string;
    };
    const ended = await exchange(100);
    const other = await exchange(200);
    expect((await b!.oidc(ended, 'GET', '/v1/whoami')).status).to.equal(200);
    const body = raw(workflowRun('org/repo', 100, 1));
    const headers = githubHeaders(SECRET, body);
    const post = (port: number) => call(port, { ca: set.admin.ca }, 'POST', '/v1/ci/events/github?issuer=gh', body, { headers });
    const r = await post(a!.proc.oidcPort!);
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.deep.include({ outcome: 'revoked', revoked: 1 });
    expect((await b!.oidc(ended, 'GET', '/v1/whoami')).status).to.equal(401);
    expect((await a!.oidc(ended, 'GET', '/v1/whoami')).status).to.equal(401);
    expect((await b!.oidc(other, 'GET', '/v1/whoami')).status).to.equal(200);
    const again = await post(b!.proc.oidcPort!);
    expect(again.status, again.text).to.equal(200);
    expect(again.body).to.deep.include({ outcome: 'replayed', revoked: 0 });
  });
});
