import { expect } from 'chai';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg, sql } from '../helpers/pg.js';

// The default revocation reassigns what a job created to the connection's
// admin (migration tables must outlive the user). What the job planted must
// not then run or read with the admin's rights: its SECURITY DEFINER
// functions and procedures become SECURITY INVOKER, its views security_invoker.
describe('database credentials: objects a job leaves behind lose their owner rights before REASSIGN', function () {
  this.timeout(120_000);
  let e: OidcEnv;
  let target: Target;
  let role: string;

  const exchange = async () => {
    const r = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: await e.idp.token(github('org/repo', 'refs/heads/main')) });
    expect(r.status, r.text).to.equal(200);
    return r.body.token as string;
  };

  before(async function () {
    const server = await requirePg(this);
    target = await createTarget(server);
    role = `mig${target.tag}`;
    // The app schema belongs to the connection's admin, which lets migrator users create in it.
    await sql(target.db.url, `CREATE SCHEMA app AUTHORIZATION ${target.admin}`);
    e = await startOidcEnv();
    expect((await e.admin('PUT', '/v1/db/connections/main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: ['*'] })).status).to.equal(201);
    const r = await e.admin('PUT', `/v1/db/roles/${role}`, {
      connection: 'main',
      creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}', 'GRANT USAGE, CREATE ON SCHEMA app TO {{name}}'],
      default_ttl_s: 300,
      max_ttl_s: 600,
    });
    expect(r.status, r.text).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/migrator', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${role}`], permissions: ['read'] })).status).to.equal(201);
  });
  after(async () => {
    await e?.stop();
    await target?.drop();
  });

  it('a planted SECURITY DEFINER function, procedure and view run with the caller\'s rights after revocation; the migration table stays', async () => {
    const t1 = await exchange();
    const a = await e.oidc(t1, 'GET', `/v1/db/creds/${role}`);
    expect(a.status, a.text).to.equal(200);
    const back = `bd_${target.tag}`;
    const c = await target.login(a.body.username, a.body.password);
    await c.query('CREATE TABLE app.migrations (v int)');
    await c.query(`CREATE FUNCTION app.who() RETURNS text LANGUAGE sql SECURITY DEFINER AS $f$ SELECT current_user::text $f$`);
    // A name that needs quoting: the catalog's own text for it must be what is altered.
    await c.query(`CREATE FUNCTION app."we""ird f"(x int) RETURNS text LANGUAGE sql SECURITY DEFINER AS $f$ SELECT current_user::text $f$`);
    await c.query(`CREATE FUNCTION app.plant() RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $f$ BEGIN EXECUTE 'CREATE ROLE ${back} LOGIN PASSWORD ''pw'''; RETURN current_user; END $f$`);
    await c.query(`CREATE PROCEDURE app.p() LANGUAGE plpgsql SECURITY DEFINER AS $f$ BEGIN EXECUTE 'CREATE ROLE ${back} LOGIN PASSWORD ''pw'''; END $f$`);
    // The job cannot read the admin's table; a view it owns would, once the admin owns the view.
    await c.query(`CREATE VIEW app.peek AS SELECT v FROM public.${target.table}`);
    await c.query('GRANT SELECT ON app.peek TO PUBLIC');
    // A rule's actions run with its table's owner's rights: an insert by anyone would read the admin's table.
    await c.query('CREATE TABLE app.inbox (v text)');
    await c.query(`CREATE RULE leak AS ON INSERT TO app.inbox DO ALSO SELECT v FROM public.${target.table}`);
    await c.query('GRANT INSERT ON app.inbox TO PUBLIC');
    await c.end();
    expect((await e.oidc(t1, 'PUT', '/v1/leases/revoke', { lease_id: a.body.lease_id })).status).to.equal(204);

    const procs = await sql<{ proname: string; owner: string; prosecdef: boolean }>(target.db.url, `SELECT proname, pg_get_userbyid(proowner) AS owner, prosecdef FROM pg_proc WHERE pronamespace = 'app'::regnamespace ORDER BY 1`);
    expect(procs.map((p) => p.proname)).to.deep.equal(['p', 'plant', 'we"ird f', 'who']);
    for (const p of procs) expect(p, p.proname).to.include({ owner: target.admin, prosecdef: false });
    expect(await sql(target.db.url, `SELECT rulename FROM pg_rules WHERE schemaname = 'app'`)).to.deep.equal([]);
    const tables = await sql<{ relname: string; owner: string }>(target.db.url, `SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind = 'r'`);
    expect(tables.sort((x, y) => x.relname.localeCompare(y.relname))).to.deep.equal([
      { relname: 'inbox', owner: target.admin },
      { relname: 'migrations', owner: target.admin },
    ]);

    // A later job calls what the first one left.
    const t2 = await exchange();
    const b = await e.oidc(t2, 'GET', `/v1/db/creds/${role}`);
    expect(b.status, b.text).to.equal(200);
    const c2 = await target.login(b.body.username, b.body.password);
    try {
      expect((await c2.query('SELECT app.who() AS who')).rows[0].who).to.equal(b.body.username);
      expect((await c2.query('SELECT app."we""ird f"(1) AS who')).rows[0].who).to.equal(b.body.username);
      const planted = await c2.query('SELECT app.plant()').then(() => 'ran', (err: { code?: string }) => err.code);
      expect(planted).to.equal('42501');
      const called = await c2.query('CALL app.p()').then(() => 'ran', (err: { code?: string }) => err.code);
      expect(called).to.equal('42501');
      const peeked = await c2.query('SELECT v FROM app.peek').then(() => 'read', (err: { code?: string }) => err.code);
      expect(peeked).to.equal('42501');
      const inserted = await c2.query("INSERT INTO app.inbox VALUES ('x')").then((r) => JSON.stringify(r), (err: { code?: string }) => err.code);
      expect(inserted).to.not.include('hello');
    } finally {
      await c2.end();
    }
    expect(await target.users(back)).to.deep.equal([]);
    expect((await e.oidc(t2, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
  });
});
