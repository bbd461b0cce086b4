import type { Db } from './db.js';
import type { DbConnectionRow, DbCredsRepo, DbRoleRow, DueQuery, LeaseRow, LeasesRepo } from './dbcreds-rows.js';
import type { SqliteGate } from './sqlite-gate.js';

/** Database connections and credential roles on SQLite. */
export class SqliteDbCredsRepo implements DbCredsRepo {
  private readonly s;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
    this.s = {
      connections: db.prepare<[], DbConnectionRow>('SELECT * FROM db_connections ORDER BY name'),
      connection: db.prepare<[string], DbConnectionRow>('SELECT * FROM db_connections WHERE name = ?'),
      upsertConnection: db.prepare(
        `INSERT INTO db_connections (name, url, username, allowed_roles, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET url = excluded.url, username = excluded.username, allowed_roles = excluded.allowed_roles, updated_at = excluded.updated_at`,
      ),
      deleteConnection: db.prepare('DELETE FROM db_connections WHERE name = ?'),
      roles: db.prepare<[], DbRoleRow>('SELECT * FROM db_roles ORDER BY name'),
      role: db.prepare<[string], DbRoleRow>('SELECT * FROM db_roles WHERE name = ?'),
      upsertRole: db.prepare(
        `INSERT INTO db_roles (name, connection, creation_statements, revocation_statements, default_ttl_s, max_ttl_s, username_template, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET connection = excluded.connection, creation_statements = excluded.creation_statements,
         revocation_statements = excluded.revocation_statements, default_ttl_s = excluded.default_ttl_s, max_ttl_s = excluded.max_ttl_s,
         username_template = excluded.username_template, updated_at = excluded.updated_at`,
      ),
      deleteRole: db.prepare('DELETE FROM db_roles WHERE name = ?'),
    };
  }

  async connections() {
    await this.g.idle();
    return this.s.connections.all();
  }
  async connection(name: string) {
    await this.g.idle();
    return this.s.connection.get(name);
  }
  async upsertConnection(r: Omit<DbConnectionRow, 'created_at' | 'updated_at'>, now: string) {
    await this.g.idle();
    this.s.upsertConnection.run(r.name, r.url, r.username, r.allowed_roles, now, now);
  }
  async deleteConnection(name: string) {
    await this.g.idle();
    return this.s.deleteConnection.run(name).changes > 0;
  }
  async roles() {
    await this.g.idle();
    return this.s.roles.all();
  }
  async role(name: string) {
    await this.g.idle();
    return this.s.role.get(name);
  }
  async upsertRole(r: Omit<DbRoleRow, 'created_at' | 'updated_at'>, now: string) {
    await this.g.idle();
    this.s.upsertRole.run(r.name, r.connection, r.creation_statements, r.revocation_statements, r.default_ttl_s, r.max_ttl_s, r.username_template, now, now);
  }
  async deleteRole(name: string) {
    await this.g.idle();
    return this.s.deleteRole.run(name).changes > 0;
  }
}

/**
 * Due for revocation: marked revoking (and its back-off over), active and
 * expired or its exchanged token gone or expired, or pending with its
 * creator's claim run out (a crash between the row and the user). Never while another owner's claim lasts.
 */
const DUE = `(l.claim_until IS NULL OR l.claim_until < @now) AND (
  (l.state = 'revoking' AND l.next_attempt_at <= @now)
  OR (l.state = 'active' AND (l.expires_at <= @now OR (l.token_hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM oidc_tokens t WHERE t.hash = l.token_hash AND t.expires_at > @now))))
  OR l.state = 'pending')`;

/** Leases on SQLite (one process owns the file: a claim is plain bookkeeping here). */
export class SqliteLeasesRepo implements LeasesRepo {
  private readonly s;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
    this.s = {
      insert: db.prepare(
        `INSERT INTO leases (id, role, connection, username, token_hash, caller, created_at, expires_at, max_expires_at, state, attempts, next_attempt_at, last_error, claim_owner, claim_until)
         VALUES (@id, @role, @connection, @username, @token_hash, @caller, @created_at, @expires_at, @max_expires_at, @state, @attempts, @next_attempt_at, @last_error, @claim_owner, @claim_until)`,
      ),
      get: db.prepare<[string], LeaseRow>('SELECT * FROM leases WHERE id = ?'),
      activate: db.prepare("UPDATE leases SET state = 'active', claim_owner = NULL, claim_until = NULL WHERE id = ? AND state = 'pending'"),
      listAll: db.prepare<[string, number], LeaseRow>('SELECT * FROM leases WHERE id > ? ORDER BY id LIMIT ?'),
      listRole: db.prepare<[string, string, number], LeaseRow>('SELECT * FROM leases WHERE role = ? AND id > ? ORDER BY id LIMIT ?'),
      countActive: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM leases WHERE state <> 'failed'"),
      countOfConnection: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM leases WHERE connection = ?'),
      countHeldOfToken: db.prepare<[Buffer], { n: number }>("SELECT count(*) AS n FROM leases WHERE token_hash = ? AND state IN ('pending', 'active')"),
      countHeldOfCaller: db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM leases WHERE token_hash IS NULL AND caller = ? AND state IN ('pending', 'active')"),
      extend: db.prepare<[number, string], LeaseRow>("UPDATE leases SET expires_at = ? WHERE id = ? AND state = 'active' RETURNING *"),
      claimDue: db.prepare<[Record<string, unknown>], LeaseRow>(
        `UPDATE leases SET claim_owner = @owner, claim_until = @claimUntil, state = 'revoking'
         WHERE id IN (SELECT id FROM leases l WHERE ${DUE} ORDER BY l.expires_at LIMIT @limit) RETURNING *`,
      ),
      claim: db.prepare<[Record<string, unknown>], LeaseRow>(
        `UPDATE leases SET claim_owner = @owner, claim_until = @claimUntil, state = 'revoking'
         WHERE id = @id AND state <> 'pending' AND (claim_until IS NULL OR claim_until < @now OR claim_owner = @owner) RETURNING *`,
      ),
      idsOfToken: db.prepare<[Buffer], { id: string }>('SELECT id FROM leases WHERE token_hash = ?'),
      markRevoking: db.prepare("UPDATE leases SET state = 'revoking', next_attempt_at = 0 WHERE id = ? AND state = 'active'"),
      done: db.prepare('DELETE FROM leases WHERE id = ? AND claim_owner = ?'),
      failed: db.prepare(
        `UPDATE leases SET attempts = attempts + 1, last_error = @error, next_attempt_at = @next, claim_owner = NULL, claim_until = NULL,
         state = CASE WHEN @giveUp = 1 THEN 'failed' ELSE 'revoking' END WHERE id = @id AND claim_owner = @owner`,
      ),
    };
  }

  async insert(row: LeaseRow) {
    await this.g.idle();
    this.s.insert.run(row);
  }
  async get(id: string) {
    await this.g.idle();
    return this.s.get.get(id);
  }
  async activate(id: string) {
    await this.g.idle();
    return this.s.activate.run(id).changes > 0;
  }
  async list(role: string | null, after: string, limit: number) {
    await this.g.idle();
    return role === null ? this.s.listAll.all(after, limit) : this.s.listRole.all(role, after, limit);
  }
  async countActive() {
    await this.g.idle();
    return this.s.countActive.get()!.n;
  }
  async countOfConnection(connection: string) {
    await this.g.idle();
    return this.s.countOfConnection.get(connection)!.n;
  }
  async countHeld(tokenHash: Buffer | null, caller: string) {
    await this.g.idle();
    return (tokenHash ? this.s.countHeldOfToken.get(tokenHash) : this.s.countHeldOfCaller.get(caller))!.n;
  }
  async extend(id: string, expiresAt: number) {
    await this.g.idle();
    return this.s.extend.get(expiresAt, id);
  }
  async claimDue(q: DueQuery) {
    await this.g.idle();
    return this.s.claimDue.all({ owner: q.owner, now: q.now, claimUntil: q.claimUntil, limit: q.limit });
  }
  async claim(id: string, owner: string, now: number, claimUntil: number) {
    await this.g.idle();
    return this.s.claim.get({ id, owner, now, claimUntil });
  }
  async idsOfTokens(hashes: Buffer[]) {
    await this.g.idle();
    return hashes.flatMap((h) => this.s.idsOfToken.all(h).map((r) => r.id));
  }
  async markRevoking(ids: string[]) {
    await this.g.idle();
    for (const id of ids) this.s.markRevoking.run(id);
  }
  async done(id: string, owner: string) {
    await this.g.idle();
    return this.s.done.run(id, owner).changes > 0;
  }
  async failed(id: string, owner: string, error: string, nextAttemptAt: number, giveUp: boolean) {
    await this.g.idle();
    this.s.failed.run({ id, owner, error, next: nextAttemptAt, giveUp: giveUp ? 1 : 0 });
  }
}
