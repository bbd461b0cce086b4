import { expect } from 'chai';
import { BadRequestError } from '../../nexus/errors.js';
import { checkStatements, render } from '../../nexus/dbcreds/statements.js';
import { callerOf, checkUsernameTemplate, DEFAULT_USERNAME_TEMPLATE, renderUsername } from '../../nexus/dbcreds/username.js';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { requirePg, sql } from '../helpers/pg.js';

const NASTY = [`x"; DROP ROLE postgres; --`, `o'r\\"g;\\\\`, `ünï\u0000cödé`, `${'é'.repeat(100)}`, `a$$b$$;SELECT 1`, `x\nGRANT pg_read_server_files TO PUBLIC`];

// Values reach SQL only through the pg driver's quoting; names only through the sanitiser.
describe('database credentials: quoting and usernames', function () {
  this.timeout(60_000);

  it('usernames from hostile callers: only [a-z0-9_], at most 63 bytes, unique', () => {
    const seen = new Set<string>();
    for (const v of NASTY) {
      const caller = callerOf({ kind: 'oidc', issuer: 'ci', issuerUrl: 'https://x', subject: v, roles: [], grants: [], via: 'exchanged_token' }, { repository: v, run_id: v });
      for (const template of [DEFAULT_USERNAME_TEMPLATE, '{{caller}}{{caller}}{{caller}}{{run}}{{random}}', 'x']) {
        const name = renderUsername(template, v.slice(0, 128), caller, Date.now());
        expect(name).to.match(/^[a-z0-9_-]+$/);
        expect(Buffer.byteLength(name)).to.be.at.most(63);
        expect(seen.has(name)).to.equal(false);
        seen.add(name);
      }
    }
  });

  it('templates and statements with anything but the known placeholders are refused', () => {
    for (const t of [`v_'; DROP TABLE x; --`, 'v_{{role}}"', 'v\\{{role}}', 'v_ü', '{{name}}', '{{ caller; }}']) {
      expect(() => checkUsernameTemplate(t), t).to.throw(BadRequestError);
    }
    for (const s of ['CREATE ROLE {{name}} {{nope}}', "CREATE ROLE {{name'}}", 'CREATE ROLE {{name}', 'CREATE ROLE {{name}} \0']) {
      expect(() => checkStatements('creation_statements', [s], { needName: true }), s).to.throw(BadRequestError);
    }
  });

  describe('on PostgreSQL', () => {
    let target: Target;
    before(async function () {
      target = await createTarget(await requirePg(this));
    });
    after(async () => target?.drop());

    it('hostile names, passwords and expirations run as quoted identifiers and literals: the exact role is made, nothing else happens', async () => {
      const server = (await requirePg(this as unknown as Mocha.Context))!;
      for (const [i, v] of NASTY.filter((n) => !n.includes('\0')).entries()) {
        // PostgreSQL cuts names at 63 bytes itself (why usernames are made to fit).
        let name = `${target.tag}_${i}_${v}`;
        while (Buffer.byteLength(name) > 63) name = name.slice(0, -1);
        const stmt = render('CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}', { name, password: v, expiration: new Date(Date.now() + 60_000) });
        await sql(server, stmt);
        const rows = await sql<{ rolname: string }>(server, 'SELECT rolname FROM pg_roles WHERE rolname = $1', [name]);
        expect(rows.map((r) => r.rolname)).to.deep.equal([name]);
        await sql(server, render('DROP ROLE {{name}}', { name }));
      }
      expect((await sql(server, "SELECT 1 FROM pg_roles WHERE rolname = 'postgres'")).length).to.equal(1);
    });
  });
});
