import type pg from 'pg';

/**
 * The default revocation hands what a user owns to the connection's admin
 * (REASSIGN OWNED: a migration's tables outlive its job). Whatever ran with
 * its owner's rights would then run with the admin's, which can create
 * roles: a SECURITY DEFINER function or procedure the job planted, a view it
 * made over tables only the admin may read, a rule on its table (a rule's
 * actions run with the table owner's rights). So before the hand-over those
 * run with their caller's rights instead, and its rules go. Names reach SQL
 * only as the text PostgreSQL itself gives (regprocedure, regclass,
 * quote_ident: quoted, qualified where needed); the user's name only as a
 * bound parameter.
 */
export async function neutraliseOwned(client: pg.ClientBase, username: string): Promise<void> {
  const definers = await client.query<{ sig: string; prokind: string }>(
    `SELECT p.oid::regprocedure::text AS sig, p.prokind
       FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
      WHERE r.rolname = $1 AND p.prosecdef`,
    [username],
  );
  for (const d of definers.rows) await client.query(`ALTER ${d.prokind === 'p' ? 'PROCEDURE' : 'FUNCTION'} ${d.sig} SECURITY INVOKER`);

  // A view's own _RETURN rule is the view itself (handled below); any other rule on what the user owns is dropped.
  const rules = await client.query<{ rule: string; rel: string }>(
    `SELECT quote_ident(w.rulename) AS rule, c.oid::regclass::text AS rel
       FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class JOIN pg_roles r ON r.oid = c.relowner
      WHERE r.rolname = $1 AND w.rulename <> '_RETURN'`,
    [username],
  );
  for (const w of rules.rows) await client.query(`DROP RULE ${w.rule} ON ${w.rel}`);

  const views = await client.query<{ rel: string }>(
    `SELECT c.oid::regclass::text AS rel
       FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
      WHERE r.rolname = $1 AND c.relkind = 'v'`,
    [username],
  );
  if (views.rows.length === 0) return;
  const version = Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
  if (version >= 150000) {
    for (const v of views.rows) await client.query(`ALTER VIEW ${v.rel} SET (security_invoker = true)`);
  } else {
    // Before PostgreSQL 15 a view always reads with its owner's rights: it goes with its user.
    await client.query(`DROP VIEW ${views.rows.map((v) => v.rel).join(', ')}`);
  }
}
