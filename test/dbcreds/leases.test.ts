import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { createTarget, refusingPostgres, relay, type Target } from '../helpers/dbcreds.js';
import { github } from '../helpers/idp.js';
import { githubHeaders, raw, workflowRun } from '../helpers/ci-events.js';
import { GITHUB_TENANT_CLAIMS } from '../helpers/oidc.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg } from '../helpers/pg.js';
import { call } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

// Issue 21: a CI job's token buys a PostgreSQL user that did not exist before
// the job and stops working when its lease ends, however it ends.
describe('database credentials: leases on a real PostgreSQL', function () {
  this.timeout(120_000);
  let e: OidcEnv;
  let target: Target;
  let role: string;
  const passwords: string[] = [];

  const exchange = async (repo = 'org/repo', extra: Record<string, unknown> = {}) => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github(repo, 'refs/heads/main', extra)) });
    expect(r.status, r.text).to.equal(200);
    return r.body.token as string;
  };
  const creds = async (token: string, r = role, query = '') => {
    const res = await e.oidc(token, 'GET', `/v1/db/creds/${r}${query}`);
    if (res.status === 200) passwords.push(res.body.password as string);
    return res;
  };
  const alive = async (username: string) => (await target.users(username)).includes(username);
  const terminated = async (c: pg.Client) => {
    try {
      await c.query('SELECT 1');
      return false;
    } catch {
      return true;
    }
  };

  before(async function () {
    const server = await requirePg(this);
    target = await createTarget(server);
    role = `d${target.tag}`;
    e = await startOidcEnv();
    const conn = await e.admin('PUT', '/v1/db/connections/main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: [role, `${role}_short`] });
    expect(conn.status, conn.text).to.equal(201);
    expect(conn.body).to.not.have.property('password');
    const r = await e.admin('PUT', `/v1/db/roles/${role}`, {
      connection: 'main',
      creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}', `GRANT SELECT ON ${target.table} TO {{name}}`],
      default_ttl_s: 300,
      max_ttl_s: 600,
    });
    expect(r.status, r.text).to.equal(201);
    const o = await e.admin('PUT', '/v1/oidc/roles/deployer', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${role}`, `db/creds/${role}_short`], permissions: ['read'] });
    expect(o.status, o.text).to.equal(201);
  });
  after(async () => {
    await e?.stop();
    await target?.drop();
  });

  it("a job's exchanged token gets a user that can do exactly what the statements grant, VALID UNTIL its lease's end", async () => {
    const token = await exchange('org/repo', { run_id: '4242' });
    const r = await creds(token);
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.have.keys('username', 'password', 'lease_id', 'lease_duration', 'renewable');
    expect(r.body.lease_duration).to.equal(300);
    expect(r.body.username).to.match(new RegExp(`^v_${role}_org_repo_4242_[0-9a-f]{10}$`));
    const c = await target.login(r.body.username, r.body.password);
    try {
      expect((await c.query(`SELECT v FROM ${target.table}`)).rows).to.deep.equal([{ v: 'hello' }]);
      let refused = '';
      await c.query(`INSERT INTO ${target.table} VALUES ('x')`).catch((err: { code: string }) => (refused = err.code));
      expect(refused).to.equal('42501');
      const [row] = (await c.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = current_user')).rows as { rolvaliduntil: Date }[];
      expect(Math.abs(row!.rolvaliduntil.getTime() - (Date.now() + 300_000))).to.be.below(30_000);
    } finally {
      await c.end();
    }
    // The lease is listed (admin) by id, never with a password.
    const list = await e.admin('GET', `/v1/leases?prefix=db/creds/${role}`);
    expect(list.status, list.text).to.equal(200);
    const mine = (list.body.leases as { lease_id: string; username: string; state: string }[]).find((l) => l.lease_id === r.body.lease_id);
    expect(mine).to.include({ username: r.body.username, state: 'active' });
    expect(list.text).to.not.include(r.body.password);
  });

  it('revoke-self ends the token and its leases before the 204: the open session is terminated, the login refused', async () => {
    const token = await exchange();
    const r = await creds(token);
    const c = await target.login(r.body.username, r.body.password);
    expect((await e.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
    expect(await alive(r.body.username)).to.equal(false);
    expect(await terminated(c)).to.equal(true);
    await c.end().catch(() => {});
    let code = '';
    await target.login(r.body.username, r.body.password).catch((err: { code: string }) => (code = err.code));
    expect(code).to.equal('28000'); // role does not exist
  });

  it('an explicit lease revoke (its own token only; another token does not even see it) drops the user', async () => {
    const token = await exchange();
    const other = await exchange();
    const r = await creds(token);
    const c = await target.login(r.body.username, r.body.password);
    const stranger = await e.oidc(other, 'PUT', '/v1/leases/revoke', { lease_id: r.body.lease_id });
    expect(stranger.status).to.equal(404);
    expect(await alive(r.body.username)).to.equal(true);
    const renew = await e.oidc(token, 'PUT', '/v1/leases/renew', { lease_id: r.body.lease_id, increment: 86_400 });
    expect(renew.status, renew.text).to.equal(200);
    // Never past max_ttl_s (600).
    expect(renew.body.lease_duration).to.be.within(590, 600);
    expect(renew.body.renewable).to.equal(false);
    const res = await e.oidc(token, 'PUT', '/v1/leases/revoke', { lease_id: r.body.lease_id });
    expect(res.status, res.text).to.equal(204);
    expect(await alive(r.body.username)).to.equal(false);
    expect(await terminated(c)).to.equal(true);
    await c.end().catch(() => {});
    expect((await e.oidc(token, 'PUT', '/v1/leases/revoke', { lease_id: r.body.lease_id })).status).to.equal(404);
  });

  it('a 2 s lease is revoked by the sweeper within 5 s of its expiry, its session ended', async () => {
    const token = await exchange();
    const r = await creds(token, role, '?ttl=2');
    expect(r.status, r.text).to.equal(200);
    expect(r.body.lease_duration).to.equal(2);
    const c = await target.login(r.body.username, r.body.password);
    await until(async () => !(await alive(r.body.username)), 'the expired user dropped', 2000 + 5000);
    expect(await terminated(c)).to.equal(true);
    await c.end().catch(() => {});
  });

  it("a lease never outlives its token: a token's expiry ends the user too", async () => {
    const o = await e.admin('PUT', '/v1/oidc/roles/brief', { issuer: 'ci', bound_claims: { repository: 'org/brief' }, paths: [`db/creds/${role}`], permissions: ['read'], token_ttl_s: 3 });
    expect(o.status, o.text).to.equal(201);
    const token = await exchange('org/brief');
    const r = await creds(token);
    expect(r.status, r.text).to.equal(200);
    expect(r.body.lease_duration).to.be.at.most(3);
    await until(async () => !(await alive(r.body.username)), 'the user dropped at the token end', 3000 + 5000);
  });

  it("deleting the OIDC role (its tokens revoked) ends the tokens' leases", async () => {
    const o = await e.admin('PUT', '/v1/oidc/roles/doomed', { issuer: 'ci', bound_claims: { repository: 'org/doomed' }, paths: [`db/creds/${role}`], permissions: ['read'] });
    expect(o.status, o.text).to.equal(201);
    const token = await exchange('org/doomed');
    const r = await creds(token);
    expect(r.status, r.text).to.equal(200);
    const c = await target.login(r.body.username, r.body.password);
    expect((await e.admin('DELETE', '/v1/oidc/roles/doomed')).status).to.equal(204);
    // Before the 204 (the sweeper would have within a second anyway).
    expect(await alive(r.body.username)).to.equal(false);
    expect(await terminated(c)).to.equal(true);
    await c.end().catch(() => {});
  });

  it("revoking an issuer's tokens (a leaked IdP key) ends their leases before the answer", async () => {
    const token = await exchange();
    const r = await creds(token);
    expect(r.status, r.text).to.equal(200);
    const res = await e.admin('POST', '/v1/oidc/issuers/ci:revoke-tokens', { role: 'deployer' });
    expect(res.status, res.text).to.equal(200);
    expect(await alive(r.body.username)).to.equal(false);
  });

  it("a signed GitHub workflow_run completed event ends that run's leases before its answer; another run's stay", async () => {
    const secret = 'leases-webhook-secret-0123';
    const issuer = await e.admin('PUT', '/v1/oidc/issuers/ci', { issuer: e.idp.url, audiences: ['nexus'], algorithms: ['RS256', 'ES256'], tenant_claims: GITHUB_TENANT_CLAIMS, webhook_secret: secret });
    expect(issuer.status, issuer.text).to.equal(200);
    const ended = await creds(await exchange('org/repo', { run_id: '9001', run_attempt: '1' }));
    const other = await creds(await exchange('org/repo', { run_id: '9002', run_attempt: '1' }));
    expect(ended.status, ended.text).to.equal(200);
    const body = raw(workflowRun('org/repo', 9001, 1));
    const r = await e.oidc(undefined, 'POST', '/v1/ci/events/github?issuer=ci', body, githubHeaders(secret, body));
    expect(r.status, r.text).to.equal(200);
    expect(r.body.revoked).to.equal(1);
    expect(await alive(ended.body.username)).to.equal(false);
    expect(await alive(other.body.username)).to.equal(true);
  });

  it('bad input is refused with the problem named, and no user is created', async () => {
    const token = await exchange();
    const before = await target.users(`v_${role}`);
    const over = await creds(token, role, '?ttl=601');
    expect(over.status).to.equal(400);
    expect(over.body.error.message).to.match(/exceeds .*max_ttl_s \(600\)/);
    // A JWT (not an exchanged token) cannot hold a lease: it cannot be revoked.
    const jwt = await e.idp.token(github('org/repo'));
    const viaJwt = await e.oidc(jwt, 'GET', `/v1/db/creds/${role}`);
    expect(viaJwt.status).to.equal(400);
    expect(viaJwt.body.error.message).to.match(/exchanged token/);
    // Not granted: 403 before anything.
    expect((await creds(token, 'other')).status).to.equal(403);
    const bad = (body: Record<string, unknown>) => e.admin('PUT', `/v1/db/roles/${role}_bad`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} VALID UNTIL {{expiration}}'], ...body });
    for (const [body, why] of [
      [{ creation_statements: ["CREATE ROLE {{name}} PASSWORD {{password'; DROP TABLE x; --}}"] }, /unknown placeholder/],
      [{ creation_statements: ['CREATE ROLE {{ nam\\e }}'] }, /unknown placeholder/],
      [{ creation_statements: ['CREATE ROLE {{name}'] }, /malformed placeholder/],
      [{ creation_statements: ['CREATE ROLE x'] }, /must create the user \{\{name\}\}/],
      [{ creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}}'] }, /creation_statements must give the user VALID UNTIL \{\{expiration\}\}/],
      [{ username_template: "v_{{role}}'; DROP ROLE postgres; --" }, /username_template may hold only/],
      [{ username_template: 'v_{{role}}\\ü' }, /username_template may hold only/],
      [{ username_template: '{{password}}' }, /unknown placeholder/],
      [{ default_ttl_s: 700, max_ttl_s: 600 }, /default_ttl_s/],
    ] as [Record<string, unknown>, RegExp][]) {
      const r = await bad(body);
      expect(r.status, JSON.stringify(body)).to.equal(400);
      expect(r.body.error.message).to.match(why);
    }
    // The connection does not allow this role.
    const notAllowed = await bad({});
    expect(notAllowed.status).to.equal(400);
    expect(notAllowed.body.error.message).to.match(/does not allow role/);
    expect(await target.users(`v_${role}`)).to.deep.equal(before);
  });

  it('a role the connection stopped allowing is refused (403) at creds time; a creation statement the database refuses leaves no user and no lease', async () => {
    const token = await exchange();
    const short = `${role}_short`;
    const r = await e.admin('PUT', `/v1/db/roles/${short}`, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}', 'GRANT SELECT ON no_such_table TO {{name}}'] });
    expect(r.status, r.text).to.equal(201);
    const failed = await creds(token, short);
    expect(failed.status).to.equal(400);
    expect(failed.body.error.message).to.match(/creation statement 2 failed .*42P01.*no user was left behind/);
    expect(await target.users(`v_${short.slice(0, 16)}`)).to.deep.equal([]);
    expect((await e.admin('GET', `/v1/leases?prefix=db/creds/${short}`)).body.leases).to.deep.equal([]);
    const put = await e.admin('PUT', '/v1/db/connections/main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: [role] });
    expect(put.status, put.text).to.equal(200);
    const refused = await creds(token, short);
    expect(refused.status).to.equal(403);
    expect(refused.body.error.message).to.match(/does not allow role/);
  });

  it('a connection write connects once: unreachable, authentication refused and missing CREATEROLE are each a 400 naming it', async () => {
    const put = (body: Record<string, unknown>) => e.admin('PUT', '/v1/db/connections/probe', { username: target.admin, password: 'pw', allowed_roles: ['*'], ...body });
    const unreachable = await put({ url: 'postgres://127.0.0.1:1/x' });
    expect(unreachable.status).to.equal(400);
    expect(unreachable.body.error.message).to.match(/unreachable \(ECONNREFUSED\)/);
    const refusing = await refusingPostgres();
    try {
      const auth = await put({ url: `postgres://127.0.0.1:${refusing.port}/x` });
      expect(auth.status).to.equal(400);
      expect(auth.body.error.message).to.match(/authentication refused/);
    } finally {
      await refusing.close();
    }
    const weak = `nx_weak_${target.tag}`;
    const { sql } = await import('../helpers/pg.js');
    const server = (await import('../helpers/pg.js')).pgServerUrl;
    await sql((await server())!, `CREATE ROLE ${weak} LOGIN`);
    try {
      const r = await put({ url: target.url, username: weak });
      expect(r.status).to.equal(400);
      expect(r.body.error.message).to.match(/lacks CREATEROLE/);
    } finally {
      await sql((await server())!, `DROP ROLE ${weak}`);
    }
    const creds1 = await put({ url: 'postgres://admin:pw@127.0.0.1/x' });
    expect(creds1.status).to.equal(400);
    expect(creds1.body.error.message).to.match(/must not hold credentials/);
    expect((await e.admin('GET', '/v1/db/connections/probe')).status).to.equal(404);
  });

  it('a target that becomes unreachable: creds answer 503 naming it, and no lease is left', async () => {
    const r = await relay(5432);
    const put = await e.admin('PUT', '/v1/db/connections/flaky', { url: target.url.replace(':5432/', `:${r.port}/`), username: target.admin, password: target.adminPassword, allowed_roles: [`${role}_flaky`] });
    expect(put.status, put.text).to.equal(201);
    const rr = await e.admin('PUT', `/v1/db/roles/${role}_flaky`, { connection: 'flaky', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'] });
    expect(rr.status, rr.text).to.equal(201);
    await e.admin('PUT', '/v1/oidc/roles/flaky', { issuer: 'ci', bound_claims: { repository: 'org/flaky' }, paths: [`db/creds/${role}_flaky`], permissions: ['read'] });
    await r.cut();
    const token = await exchange('org/flaky');
    const res = await creds(token, `${role}_flaky`);
    expect(res.status).to.equal(503);
    expect(res.body.error.message).to.match(/database connection flaky is unreachable/);
    // The row stays only while its cleanup cannot reach the database either; it is marked for the sweeper, never left active.
    const leases = (await e.admin('GET', `/v1/leases?prefix=db/creds/${role}_flaky`)).body.leases as { state: string }[];
    expect(leases.every((l) => l.state === 'revoking')).to.equal(true);
    // Cleanup so the connection can go: revoke-prefix cannot reach it either, so the lease stays listed until then.
  });

  it('admin: connections and roles read back without the password; the metrics count leases and revocations', async () => {
    const c = await e.admin('GET', '/v1/db/connections/main');
    expect(c.status).to.equal(200);
    expect(c.body).to.include({ name: 'main', username: target.admin });
    expect(c.text).to.not.include(target.adminPassword);
    const list = await e.admin('GET', '/v1/db/connections');
    expect(list.text).to.not.include(target.adminPassword);
    const role1 = await e.admin('GET', `/v1/db/roles/${role}`);
    expect(role1.body.username_template).to.equal('v_{{role}}_{{caller}}_{{run}}');
    const nobody = await e.t.svid('spiffe://nexus.local/nobody');
    expect((await call(e.t.port, nobody, 'GET', '/v1/db/connections')).status).to.equal(403);
    expect((await call(e.t.port, nobody, 'GET', `/v1/db/creds/${role}`)).status).to.equal(403);
    expect((await call(e.t.port, nobody, 'GET', '/v1/leases')).status).to.equal(403);
    // A connection with leases cannot go: revoking them needs its credential.
    const held = await e.admin('GET', `/v1/db/creds/${role}`);
    expect(held.status, held.text).to.equal(200);
    passwords.push(held.body.password);
    expect((await e.admin('DELETE', '/v1/db/connections/main')).status).to.equal(409);
    const m = await e.admin('GET', '/metrics');
    expect(m.text).to.match(/^nexus_leases_active \d+$/m);
    expect(m.text).to.match(/^nexus_lease_revocations_total\{outcome="revoked"\} [1-9]\d*$/m);
  });

  it('an mTLS workload with read on db/creds/ROLE gets a user; admin revoke-prefix ends every lease of the role', async () => {
    const p = await e.admin('PUT', '/v1/policies/worker', { spiffe_id: 'spiffe://nexus.local/worker', paths: [`db/creds/${role}`], permissions: ['read'] });
    expect(p.status, p.text).to.equal(201);
    const worker = await e.t.svid('spiffe://nexus.local/worker');
    const r = await call(e.t.port, worker, 'GET', `/v1/db/creds/${role}`);
    expect(r.status, r.text).to.equal(200);
    passwords.push(r.body.password);
    expect(r.body.username).to.match(new RegExp(`^v_${role}_worker_[0-9a-f]{10}$`));
    const renew = await call(e.t.port, worker, 'PUT', '/v1/leases/renew', { lease_id: r.body.lease_id, increment: 60 });
    expect(renew.status, renew.text).to.equal(200);
    expect((await call(e.t.port, worker, 'PUT', '/v1/leases/revoke-prefix', { prefix: `db/creds/${role}` })).status).to.equal(403);
    const all = await e.admin('PUT', '/v1/leases/revoke-prefix', { prefix: `db/creds/${role}` });
    expect(all.status, all.text).to.equal(200);
    expect(all.body.revoked).to.be.at.least(1);
    expect(all.body.failed).to.equal(0);
    expect(await target.users(`v_${role}_`)).to.deep.equal([]);
  });

  it('every lease event is an audit record naming role, connection, username, lease id and caller; no password in any log or audit line', async () => {
    const trail = fs.readFileSync(path.join(e.t.dir, 'audit.jsonl'), 'utf8');
    const records = trail
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; lease?: Record<string, string>; decision: string });
    const created = records.filter((r) => r.action === 'lease.create' && r.decision === 'allow');
    expect(created.length).to.be.at.least(7);
    expect(created[0]!.lease).to.include.keys('id', 'role', 'connection', 'username', 'caller');
    expect(records.some((r) => r.action === 'lease.renew')).to.equal(true);
    expect(records.filter((r) => r.action === 'lease.revoke' && r.decision === 'allow').length).to.be.at.least(6);
    expect(passwords.length).to.be.at.least(7);
    for (const secret of [...passwords, target.adminPassword]) {
      expect(trail).to.not.include(secret);
      expect(e.logs()).to.not.include(secret);
    }
  });
});
