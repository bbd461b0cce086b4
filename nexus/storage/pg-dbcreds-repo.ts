import type { DbConnectionRow, DbCredsRepo, DbRoleRow, DueQuery, LeaseRow, LeasesRepo } from './dbcreds-rows.js';
import type { Queryable } from './pg-repos.js';

/** Database connections and credential roles on PostgreSQL. */
export class PgDbCredsRepo implements DbCredsRepo {
  constructor(private readonly q: Queryable) {}

  async connections() {
    return (await this.q.query<DbConnectionRow>('SELECT * FROM db_connections ORDER BY name')).rows;
  }
  async connection(name: string) {
    return (await this.q.query<DbConnectionRow>('SELECT * FROM db_connections WHERE name = $1', [name])).rows[0];
  }
  async upsertConnection(r: Omit<DbConnectionRow, 'created_at' | 'updated_at'>, now: string) {
    await this.q.query(
      `INSERT INTO db_connections (name, url, username, allowed_roles, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (name) DO UPDATE SET url = excluded.url, username = excluded.username, allowed_roles = excluded.allowed_roles, updated_at = excluded.updated_at`,
      [r.name, r.url, r.username, r.allowed_roles, now],
    );
  }
  async deleteConnection(name: string) {
    return (await this.q.query('DELETE FROM db_connections WHERE name = $1', [name])).rowCount > 0;
  }
  async roles() {
    return (await this.q.query<DbRoleRow>('SELECT * FROM db_roles ORDER BY name')).rows;
  }
  async role(name: string) {
    return (await this.q.query<DbRoleRow>('SELECT * FROM db_roles WHERE name = $1', [name])).rows[0];
  }
  async upsertRole(r: Omit<DbRoleRow, 'created_at' | 'updated_at'>, now: string) {
    await this.q.query(
      `INSERT INTO db_roles (name, connection, creation_statements, revocation_statements, default_ttl_s, max_ttl_s, username_template, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (name) DO UPDATE SET connection = excluded.connection, creation_statements = excluded.creation_statements,
       revocation_statements = excluded.revocation_statements, default_ttl_s = excluded.default_ttl_s, max_ttl_s = excluded.max_ttl_s,
       username_template = excluded.username_template, updated_at = excluded.updated_at`,
      [r.name, r.connection, r.creation_statements, r.revocation_statements, r.default_ttl_s, r.max_ttl_s, r.username_template, now],
    );
  }
  async deleteRole(name: string) {
    return (await this.q.query('DELETE FROM db_roles WHERE name = $1', [name])).rowCount > 0;
  }
}

// As on SQLite (see dbcreds-repo.ts); $1 now.
const DUE = `(l.claim_until IS NULL OR l.claim_until < $1) AND (
  (l.state = 'revoking' AND l.next_attempt_at <= $1)
  OR (l.state = 'active' AND (l.expires_at <= $1 OR (l.token_hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM oidc_tokens t WHERE t.hash = l.token_hash AND t.expires_at > $1))))
  OR l.state = 'pending')`;

/**
 * Leases on PostgreSQL. Claims are single autocommit statements (not the
 * engine's SERIALIZABLE transactions): `FOR UPDATE SKIP LOCKED` lets replicas
 * sweep side by side, each taking rows no other one holds.
 */
export class PgLeasesRepo implements LeasesRepo {
  constructor(private readonly q: Queryable) {}

  async insert(r: LeaseRow) {
    await this.q.query(
      `INSERT INTO leases (id, role, connection, username, token_hash, caller, created_at, expires_at, max_expires_at, state, attempts, next_attempt_at, last_error, claim_owner, claim_until)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [r.id, r.role, r.connection, r.username, r.token_hash, r.caller, r.created_at, r.expires_at, r.max_expires_at, r.state, r.attempts, r.next_attempt_at, r.last_error, r.claim_owner, r.claim_until],
    );
  }
  async get(id: string) {
    return (await this.q.query<LeaseRow>('SELECT * FROM leases WHERE id = $1', [id])).rows[0];
  }
  async activate(id: string) {
    return (await this.q.query("UPDATE leases SET state = 'active', claim_owner = NULL, claim_until = NULL WHERE id = $1 AND state = 'pending'", [id])).rowCount > 0;
  }
  async list(role: string | null, after: string, limit: number) {
    const r =
      role === null
        ? await this.q.query<LeaseRow>('SELECT * FROM leases WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT $2', [after, limit])
        : await this.q.query<LeaseRow>('SELECT * FROM leases WHERE role = $1 AND id COLLATE "C" > $2 ORDER BY id COLLATE "C" LIMIT $3', [role, after, limit]);
    return r.rows;
  }
  async countActive() {
    return (await this.q.query<{ n: number }>("SELECT count(*) AS n FROM leases WHERE state <> 'failed'")).rows[0]!.n;
  }
  async countOfConnection(connection: string) {
    return (await this.q.query<{ n: number }>('SELECT count(*) AS n FROM leases WHERE connection = $1', [connection])).rows[0]!.n;
  }
  async countHeld(tokenHash: Buffer | null, caller: string) {
    const r = tokenHash
      ? await this.q.query<{ n: number }>("SELECT count(*) AS n FROM leases WHERE token_hash = $1 AND state IN ('pending', 'active')", [tokenHash])
      : await this.q.query<{ n: number }>("SELECT count(*) AS n FROM leases WHERE token_hash IS NULL AND caller = $1 AND state IN ('pending', 'active')", [caller]);
    return Number(r.rows[0]!.n);
  }
  async extend(id: string, expiresAt: number) {
    return (await this.q.query<LeaseRow>("UPDATE leases SET expires_at = $1 WHERE id = $2 AND state = 'active' RETURNING *", [expiresAt, id])).rows[0];
  }
  async claimDue(q: DueQuery) {
    const sql = `UPDATE leases SET claim_owner = $2, claim_until = $3, state = 'revoking'
      WHERE id IN (SELECT id FROM leases l WHERE ${DUE} ORDER BY l.expires_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING *`;
    return (await this.q.query<LeaseRow>(sql, [q.now, q.owner, q.claimUntil, q.limit])).rows;
  }
  async claim(id: string, owner: string, now: number, claimUntil: number) {
    const sql = `UPDATE leases SET claim_owner = $2, claim_until = $4, state = 'revoking'
      WHERE id = $1 AND state <> 'pending' AND (claim_until IS NULL OR claim_until < $3 OR claim_owner = $2) RETURNING *`;
    return (await this.q.query<LeaseRow>(sql, [id, owner, now, claimUntil])).rows[0];
  }
  async idsOfTokens(hashes: Buffer[]) {
    if (hashes.length === 0) return [];
    return (await this.q.query<{ id: string }>('SELECT id FROM leases WHERE token_hash = ANY($1::bytea[])', [hashes])).rows.map((r) => r.id);
  }
  async markRevoking(ids: string[]) {
    if (ids.length === 0) return;
    await this.q.query("UPDATE leases SET state = 'revoking', next_attempt_at = 0 WHERE id = ANY($1::text[]) AND state = 'active'", [ids]);
  }
  async done(id: string, owner: string) {
    return (await this.q.query('DELETE FROM leases WHERE id = $1 AND claim_owner = $2', [id, owner])).rowCount > 0;
  }
  async failed(id: string, owner: string, error: string, nextAttemptAt: number, giveUp: boolean) {
    await this.q.query(
      `UPDATE leases SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4, claim_owner = NULL, claim_until = NULL,
       state = CASE WHEN $5 THEN 'failed' ELSE 'revoking' END WHERE id = $1 AND claim_owner = $2`,
      [id, owner, error, nextAttemptAt, giveUp],
    );
  }
}
