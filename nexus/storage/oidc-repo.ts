import type { Db } from './db.js';
import { GroupCommit } from './group-commit.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { IssuerRow, OidcRepo, RoleRow, TokenRow } from './storage.js';

/** The OIDC plugin's tables on SQLite. */
export class SqliteOidcRepo implements OidcRepo {
  // Prepared once, after the migrations (repositories are made on first use).
  private readonly s;
  /** Exchanged tokens come and go once per CI job each: grouped, one fsync for all of a turn's. */
  private readonly tokenWrites: GroupCommit;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
    this.tokenWrites = new GroupCommit(db, g);
    this.s = {
      issuers: db.prepare<[], IssuerRow>('SELECT * FROM oidc_issuers ORDER BY name'),
      issuer: db.prepare<[string], IssuerRow>('SELECT * FROM oidc_issuers WHERE name = ?'),
      upsertIssuer: db.prepare(
        `INSERT INTO oidc_issuers (name, issuer, audiences, algorithms, jwks_uri, max_token_age_s, max_token_lifetime_s, tenant_claims, allowed_types, jwks, jwks_file, jwks_stale_s, rate_limit, managed_by, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET issuer = excluded.issuer, audiences = excluded.audiences,
         algorithms = excluded.algorithms, jwks_uri = excluded.jwks_uri, max_token_age_s = excluded.max_token_age_s,
         max_token_lifetime_s = excluded.max_token_lifetime_s, tenant_claims = excluded.tenant_claims, allowed_types = excluded.allowed_types,
         jwks = excluded.jwks, jwks_file = excluded.jwks_file, jwks_stale_s = excluded.jwks_stale_s, rate_limit = excluded.rate_limit, managed_by = excluded.managed_by, updated_at = excluded.updated_at`,
      ),
      deleteIssuer: db.prepare('DELETE FROM oidc_issuers WHERE name = ?'),
      rolesOfIssuer: db.prepare<[string], { name: string }>('SELECT name FROM oidc_roles WHERE issuer = ? ORDER BY name'),
      roles: db.prepare<[], RoleRow>('SELECT * FROM oidc_roles ORDER BY name'),
      role: db.prepare<[string], RoleRow>('SELECT * FROM oidc_roles WHERE name = ?'),
      upsertRole: db.prepare(
        `INSERT INTO oidc_roles (name, issuer, bound_claims, bound_claims_glob, paths, permissions, token_ttl_s, managed_by, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET issuer = excluded.issuer, bound_claims = excluded.bound_claims,
         bound_claims_glob = excluded.bound_claims_glob, paths = excluded.paths, permissions = excluded.permissions,
         token_ttl_s = excluded.token_ttl_s, managed_by = excluded.managed_by, updated_at = excluded.updated_at`,
      ),
      deleteRole: db.prepare('DELETE FROM oidc_roles WHERE name = ?'),
      insertToken: db.prepare(
        'INSERT INTO oidc_tokens (hash, issuer, issuer_url, jwks_uri, header, subject, roles, claims, key_kid, key_thumbprint, expires_at, ci_run, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      revokeRole: db.prepare('DELETE FROM oidc_tokens WHERE EXISTS (SELECT 1 FROM json_each(oidc_tokens.roles) WHERE value = ?)'),
      revokeToken: db.prepare('DELETE FROM oidc_tokens WHERE hash = ?'),
      revokeIssuer: db.prepare('DELETE FROM oidc_tokens WHERE issuer = ?'),
      revokeIssuerRole: db.prepare('DELETE FROM oidc_tokens WHERE issuer = ? AND EXISTS (SELECT 1 FROM json_each(oidc_tokens.roles) WHERE value = ?)'),
      revokeCiRun: db.prepare<[string, string], { hash: Buffer }>('DELETE FROM oidc_tokens WHERE issuer = ? AND ci_run = ? RETURNING hash'),
      deliverySeen: db.prepare<[string, number], { n: number }>('SELECT 1 AS n FROM ci_event_deliveries WHERE key = ? AND expires_at > ?'),
      remember: db.prepare('INSERT INTO ci_event_deliveries (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at'),
      // By key through the expiry index, LIMIT inside: one batch holds the write lock briefly.
      purgeExpired: db.prepare('DELETE FROM oidc_tokens WHERE hash IN (SELECT hash FROM oidc_tokens WHERE expires_at <= ? LIMIT ?)'),
      purgeDeliveries: db.prepare('DELETE FROM ci_event_deliveries WHERE expires_at <= ?'),
      token: db.prepare<[Buffer], TokenRow>('SELECT issuer, issuer_url, jwks_uri, header, subject, roles, claims, key_kid, key_thumbprint, expires_at, ci_run, created_at FROM oidc_tokens WHERE hash = ?'),
    };
  }

  async issuers(): Promise<IssuerRow[]> {
    await this.g.idle();
    return this.s.issuers.all();
  }

  async issuer(name: string): Promise<IssuerRow | undefined> {
    await this.g.idle();
    return this.s.issuer.get(name);
  }

  async upsertIssuer(i: Omit<IssuerRow, 'created_at' | 'updated_at'>, now: string): Promise<void> {
    await this.g.idle();
    this.s.upsertIssuer.run(i.name, i.issuer, i.audiences, i.algorithms, i.jwks_uri, i.max_token_age_s, i.max_token_lifetime_s, i.tenant_claims, i.allowed_types, i.jwks, i.jwks_file, i.jwks_stale_s, i.rate_limit, i.managed_by, now, now);
  }

  async deleteIssuer(name: string): Promise<boolean> {
    await this.g.idle();
    return this.s.deleteIssuer.run(name).changes > 0;
  }

  async rolesOfIssuer(name: string): Promise<string[]> {
    await this.g.idle();
    return this.s.rolesOfIssuer.all(name).map((r) => r.name);
  }

  async roles(): Promise<RoleRow[]> {
    await this.g.idle();
    return this.s.roles.all();
  }

  async role(name: string): Promise<RoleRow | undefined> {
    await this.g.idle();
    return this.s.role.get(name);
  }

  async upsertRole(r: Omit<RoleRow, 'created_at' | 'updated_at'>, now: string): Promise<void> {
    await this.g.idle();
    this.s.upsertRole.run(r.name, r.issuer, r.bound_claims, r.bound_claims_glob, r.paths, r.permissions, r.token_ttl_s, r.managed_by, now, now);
  }

  async deleteRole(name: string): Promise<boolean> {
    await this.g.idle();
    return this.s.deleteRole.run(name).changes > 0;
  }

  async insertToken(hash: Buffer, t: TokenRow, now: string): Promise<void> {
    await this.tokenWrites.run(() => this.s.insertToken.run(hash, t.issuer, t.issuer_url, t.jwks_uri, t.header, t.subject, t.roles, t.claims, t.key_kid, t.key_thumbprint, t.expires_at, t.ci_run, now));
  }

  async token(hash: Buffer): Promise<TokenRow | undefined> {
    await this.g.idle();
    return this.s.token.get(hash);
  }

  async revokeRole(role: string): Promise<number> {
    await this.g.idle();
    return this.s.revokeRole.run(role).changes;
  }

  async revokeToken(hash: Buffer): Promise<boolean> {
    return (await this.tokenWrites.run(() => this.s.revokeToken.run(hash))).changes > 0;
  }

  async revokeIssuer(issuer: string, role: string | null): Promise<number> {
    await this.g.idle();
    return (role === null ? this.s.revokeIssuer.run(issuer) : this.s.revokeIssuerRole.run(issuer, role)).changes;
  }

  async revokeCiRun(issuer: string, ciRun: string): Promise<Buffer[]> {
    await this.g.idle();
    return this.s.revokeCiRun.all(issuer, ciRun).map((r) => r.hash);
  }

  async claimDelivery(keys: string[], now: number, expiresAt: number): Promise<boolean> {
    await this.g.idle();
    if (keys.some((k) => this.s.deliverySeen.get(k, now))) return false;
    for (const k of keys) this.s.remember.run(k, expiresAt);
    return true;
  }

  /** At most `limit` expired tokens, and deliveries remembered past their expiry. */
  async purgeExpired(now: number, limit: number): Promise<number> {
    await this.g.idle();
    this.s.purgeDeliveries.run(now);
    return this.s.purgeExpired.run(now, limit).changes;
  }
}
