import type { Grant } from '../../nexus/auth/principal.js';
import type { Db } from '../../nexus/storage/db.js';
import type { IssuerConfig, RoleConfig } from './types.js';

type Row = Record<string, unknown>;

function issuerFrom(r: Row): IssuerConfig {
  return {
    name: r.name as string,
    issuer: r.issuer as string,
    audiences: JSON.parse(r.audiences as string) as string[],
    algorithms: JSON.parse(r.algorithms as string) as string[],
    jwks_uri: (r.jwks_uri as string | null) ?? null,
    max_token_age_s: (r.max_token_age_s as number | null) ?? null,
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
  };
}

function roleFrom(r: Row): RoleConfig {
  return {
    name: r.name as string,
    issuer: r.issuer as string,
    bound_claims: JSON.parse(r.bound_claims as string) as RoleConfig['bound_claims'],
    bound_claims_glob: JSON.parse(r.bound_claims_glob as string) as Record<string, string>,
    paths: JSON.parse(r.paths as string) as string[],
    permissions: JSON.parse(r.permissions as string) as RoleConfig['permissions'],
    token_ttl_s: (r.token_ttl_s as number | null) ?? null,
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
  };
}

export interface StoredToken {
  issuer: string;
  issuer_url: string;
  subject: string;
  roles: string[];
  grants: Grant[];
  expires_at: number;
}

/** The OIDC plugin's tables: issuers, roles, exchanged-token hashes. */
export class OidcStore {
  // Looked up on every request that carries an exchanged token: prepared once,
  // and rows kept in memory. This process is the only writer of the table, so
  // every revocation below clears the cache in the same step.
  private readonly tokenStmt;
  private readonly tokenCache = new Map<string, StoredToken>();

  constructor(private readonly db: Db) {
    this.tokenStmt = db.prepare('SELECT * FROM oidc_tokens WHERE hash = ?');
  }

  issuers(): IssuerConfig[] {
    return (this.db.prepare('SELECT * FROM oidc_issuers ORDER BY name').all() as Row[]).map(issuerFrom);
  }

  issuer(name: string): IssuerConfig | undefined {
    const r = this.db.prepare('SELECT * FROM oidc_issuers WHERE name = ?').get(name) as Row | undefined;
    return r && issuerFrom(r);
  }

  /** Returns true when the issuer is new. */
  putIssuer(i: IssuerConfig): boolean {
    const now = new Date().toISOString();
    return this.db.transaction(() => {
      const existed = this.issuer(i.name) !== undefined;
      this.db
        .prepare(
          `INSERT INTO oidc_issuers (name, issuer, audiences, algorithms, jwks_uri, max_token_age_s, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET issuer = excluded.issuer, audiences = excluded.audiences,
           algorithms = excluded.algorithms, jwks_uri = excluded.jwks_uri, max_token_age_s = excluded.max_token_age_s, updated_at = excluded.updated_at`,
        )
        .run(i.name, i.issuer, JSON.stringify(i.audiences), JSON.stringify(i.algorithms), i.jwks_uri, i.max_token_age_s, now, now);
      return !existed;
    }).immediate();
  }

  rolesOfIssuer(name: string): string[] {
    return (this.db.prepare('SELECT name FROM oidc_roles WHERE issuer = ?').all(name) as Array<{ name: string }>).map((r) => r.name);
  }

  deleteIssuer(name: string): boolean {
    return this.db.prepare('DELETE FROM oidc_issuers WHERE name = ?').run(name).changes > 0;
  }

  roles(): RoleConfig[] {
    return (this.db.prepare('SELECT * FROM oidc_roles ORDER BY name').all() as Row[]).map(roleFrom);
  }

  role(name: string): RoleConfig | undefined {
    const r = this.db.prepare('SELECT * FROM oidc_roles WHERE name = ?').get(name) as Row | undefined;
    return r && roleFrom(r);
  }

  putRole(r: RoleConfig): boolean {
    const now = new Date().toISOString();
    return this.db.transaction(() => {
      const existed = this.role(r.name) !== undefined;
      this.db
        .prepare(
          `INSERT INTO oidc_roles (name, issuer, bound_claims, bound_claims_glob, paths, permissions, token_ttl_s, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET issuer = excluded.issuer, bound_claims = excluded.bound_claims,
           bound_claims_glob = excluded.bound_claims_glob, paths = excluded.paths, permissions = excluded.permissions,
           token_ttl_s = excluded.token_ttl_s, updated_at = excluded.updated_at`,
        )
        .run(r.name, r.issuer, JSON.stringify(r.bound_claims), JSON.stringify(r.bound_claims_glob), JSON.stringify(r.paths), JSON.stringify(r.permissions), r.token_ttl_s, now, now);
      return !existed;
    }).immediate();
  }

  deleteRole(name: string): boolean {
    return this.db.transaction(() => {
      this.revokeRole(name);
      return this.db.prepare('DELETE FROM oidc_roles WHERE name = ?').run(name).changes > 0;
    }).immediate();
  }

  insertToken(hash: Buffer, t: StoredToken): void {
    this.db
      .prepare('INSERT INTO oidc_tokens (hash, issuer, issuer_url, subject, roles, grants, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(hash, t.issuer, t.issuer_url, t.subject, JSON.stringify(t.roles), JSON.stringify(t.grants), t.expires_at, new Date().toISOString());
  }

  token(hash: Buffer): StoredToken | undefined {
    const key = hash.toString('hex');
    const cached = this.tokenCache.get(key);
    if (cached) return cached;
    const r = this.tokenStmt.get(hash) as Row | undefined;
    if (!r) return undefined;
    const t: StoredToken = {
      issuer: r.issuer as string,
      issuer_url: r.issuer_url as string,
      subject: r.subject as string,
      roles: JSON.parse(r.roles as string) as string[],
      grants: JSON.parse(r.grants as string) as Grant[],
      expires_at: r.expires_at as number,
    };
    if (this.tokenCache.size >= 10_000) this.tokenCache.clear();
    this.tokenCache.set(key, t);
    return t;
  }

  /** Deletes every exchanged token that carries `role`; returns how many. */
  revokeRole(role: string): number {
    this.tokenCache.clear();
    return this.db.prepare('DELETE FROM oidc_tokens WHERE EXISTS (SELECT 1 FROM json_each(oidc_tokens.roles) WHERE value = ?)').run(role).changes;
  }

  purgeExpired(now: number): number {
    this.tokenCache.clear();
    return this.db.prepare('DELETE FROM oidc_tokens WHERE expires_at <= ?').run(now).changes;
  }
}
