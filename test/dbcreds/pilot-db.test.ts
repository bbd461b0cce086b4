import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { requirePg } from '../helpers/pg.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';

// Pilot's db and lease commands against a real server process and a real PostgreSQL target.
describe('pilot db and pilot lease (real bins, real server, real PostgreSQL target)', function () {
  this.timeout(120_000);
  let dir: string;
  let srv: ServerProcess;
  let target: Target;
  let env: Record<string, string>;
  let role: string;
  const pilot = (args: string[], input?: string) => runBin('pilot', args, env, input === undefined ? {} : { input });

  before(async function () {
    target = await createTarget(await requirePg(this));
    role = `p${target.tag}`;
    dir = tempDir('nexus-pilot-db');
    srv = await spawnServer(testEnv(dir));
    env = { NEXUS_DATA_DIR: dir, NEXUS_ADDR: `https://127.0.0.1:${srv.port}` };
  });
  after(async () => {
    srv?.child.kill('SIGTERM');
    await srv?.exited;
    await target?.drop();
  });

  it('connection put reads the password from a file or stdin only, and nothing shows it again', async () => {
    const pw = path.join(dir, 'pw');
    fs.writeFileSync(pw, `${target.adminPassword}\n`, { mode: 0o600 });
    const put = await pilot(['db', 'connection', 'put', 'main', '--url', target.url, '--username', target.admin, '--password-file', pw, '--allowed-role', role]);
    expect(put.code, put.stderr).to.equal(0);
    expect(put.stdout).to.contain('saved connection main');
    const viaStdin = await pilot(['db', 'connection', 'put', 'main', '--url', target.url, '--username', target.admin, '--password-file', '-', '--allowed-role', role], target.adminPassword);
    expect(viaStdin.code, viaStdin.stderr).to.equal(0);
    // The server's check on write (unreachable, authentication refused, no CREATEROLE) is in leases.test.ts; here, Pilot's side of it.
    const unreachable = await pilot(['db', 'connection', 'put', 'other', '--url', 'postgres://127.0.0.1:1/db', '--username', target.admin, '--password-file', pw]);
    expect(unreachable.code).to.equal(1);
    expect(unreachable.stderr).to.match(/^pilot: bad request: .*unreachable/im);
    const empty = await pilot(['db', 'connection', 'put', 'other', '--url', target.url, '--username', target.admin, '--password-file', '-'], '');
    expect(empty.code).to.equal(2);
    const list = await pilot(['--json', 'db', 'connection', 'list']);
    expect(list.code, list.stderr).to.equal(0);
    expect(JSON.parse(list.stdout).connections.map((c: { name: string }) => c.name)).to.deep.equal(['main']);
    for (const out of [list.stdout, (await pilot(['db', 'connection', 'get', 'main'])).stdout, put.stdout]) expect(out).to.not.contain(target.adminPassword);
  });

  it('role put, creds, lease list, renew, revoke and revoke-prefix end the users they made', async () => {
    const put = await pilot(['db', 'role', 'put', role, '--connection', 'main', '--creation-statement', 'CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}', '--creation-statement', `GRANT SELECT ON ${target.table} TO {{name}}`, '--default-ttl', '120', '--max-ttl', '600']);
    expect(put.code, put.stderr).to.equal(0);
    expect((await pilot(['db', 'role', 'list'])).stdout).to.contain(`${role}  on main  ttl 120s (max 600s)`);

    const minted = [];
    for (let i = 0; i < 3; i++) {
      const r = await pilot(['--json', 'db', 'creds', role]);
      expect(r.code, r.stderr).to.equal(0);
      minted.push(JSON.parse(r.stdout) as { username: string; password: string; lease_id: string; lease_duration: number });
    }
    const c = await target.login(minted[0]!.username, minted[0]!.password);
    expect((await c.query(`SELECT v FROM ${target.table}`)).rows).to.deep.equal([{ v: 'hello' }]);
    await c.end();

    const list = await pilot(['lease', 'list', '--prefix', `db/creds/${role}`]);
    expect(list.code, list.stderr).to.equal(0);
    for (const m of minted) expect(list.stdout).to.contain(m.lease_id);
    for (const m of minted) expect(list.stdout).to.not.contain(m.password);

    const renewed = await pilot(['lease', 'renew', minted[0]!.lease_id, '--increment', '300']);
    expect(renewed.code, renewed.stderr).to.equal(0);
    expect(renewed.stdout).to.match(/renewed .*: (29\d|300)s left/);
    const tooLong = await pilot(['db', 'creds', role, '--ttl', '601']);
    expect(tooLong.code).to.equal(1);
    expect(tooLong.stderr).to.contain('max_ttl_s');

    const one = await pilot(['lease', 'revoke', minted[0]!.lease_id]);
    expect(one.code, one.stderr).to.equal(0);
    expect(await target.users(minted[0]!.username)).to.deep.equal([]);
    expect(await target.users(minted[1]!.username)).to.deep.equal([minted[1]!.username]);

    const rest = await pilot(['lease', 'revoke-prefix', `db/creds/${role}`]);
    expect(rest.code, rest.stderr).to.equal(0);
    expect(rest.stdout).to.contain(`revoked 2 lease(s) under db/creds/${role}`);
    for (const m of minted) expect(await target.users(m.username)).to.deep.equal([]);
    expect((await pilot(['lease', 'list', '--prefix', `db/creds/${role}`])).stdout.trim()).to.equal('(no leases)');

    const gone = await pilot(['db', 'connection', 'delete', 'main']);
    expect(gone.code, gone.stderr).to.equal(0);
  });
});
