import type { ChangeTopic } from '../../nexus/storage/changes.js';
import type { IssuerRow, Repos, RoleRow, Storage } from '../../nexus/storage/storage.js';
import { bare, DEFAULT_MAX_TOKEN_LIFETIME_S } from './schema.js';
import type { IssuerConfig, RoleConfig } from './types.js';
import type { SigningKey } from './verify.js';

function issuerFrom(r: IssuerRow): IssuerConfig {
  return {
    name: r.name,
    issuer: r.issuer,
    audiences: JSON.parse(r.audiences) as string[],
    algorithms: JSON.parse(r.algorithms) as IssuerConfig['algorithms'],
    jwks_uri: r.jwks_uri ?? null,
    max_token_age_s: r.max_token_age_s ?? null,
    max_token_lifetime_s: r.max_token_lifetime_s ?? DEFAULT_MAX_TOKEN_LIFETIME_S,
    tenant_claims: r.tenant_claims ? (JSON.parse(r.tenant_claims) as string[]) : ['sub'],
    allowed_types: r.allowed_types ? (JSON.parse(r.allowed_types) as string[]) : [],
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

function roleFrom(r: RoleRow): RoleConfig {
  return {
    name: r.name,
    issuer: r.issuer,
    bound_claims: bare(JSON.parse(r.bound_claims) as RoleConfig['bound_claims']),
    bound_claims_glob: bare(JSON.parse(r.bound_claims_glob) as Record<string, string>),
    paths: JSON.parse(r.paths) as string[],
    permissions: JSON.parse(r.permissions) as RoleConfig['permissions'],
    token_ttl_s: r.token_ttl_s ?? null,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/**
 * What an exchanged token was minted from: the verified JWT's claims and
 * header, the issuer's URL and key source at that time, the roles it matched.
 * Never grants: those are re-resolved from the current configuration on every use.
 */
export interface StoredToken {
  issuer: string;
  issuer_url: string;
  jwks_uri: string | null;
  /** The JWT's protected header fields that policy looks at. */
  header: { alg: string; typ?: string };
  subject: string;
  roles: string[];
  claims: Record<string, unknown>;
  /** The issuer key that verified the JWT; null on rows from before migration 006 (refused). */
  key: SigningKey | null;
  expires_at: number;
  /** ms since epoch. */
  created_at: number;
}

/** The OIDC plugin's view of its tables: typed configs over the storage's rows. */
export class OidcStore {
  // Looked up on every request that carries an exchanged token: rows kept in
  // memory. Every revocation below clears the cache in the same step.
  private readonly tokenCache = new Map<string, StoredToken>();

  constructor(private readonly storage: Storage) {}

  /** Insert or update in one transaction; true when the row is new. */
  private upsert(exists: (r: Repos) => Promise<unknown>, write: (r: Repos, now: string) => Promise<void>): Promise<boolean> {
    return this.storage.tx(async (r) => {
      const existed = (await exists(r)) !== undefined;
      await write(r, new Date().toISOString());
      return !existed;
    });
  }

  async issuers(): Promise<IssuerConfig[]> {
    return (await this.storage.oidc.issuers()).map(issuerFrom);
  }

  async issuer(name: string): Promise<IssuerConfig | undefined> {
    const r = await this.storage.oidc.issuer(name);
    return r && issuerFrom(r);
  }

  /** Who manages an issuer or role: the config file that declares it, or null (the API). */
  async managedBy(kind: 'issuer' | 'role', name: string): Promise<string | null> {
    const row = kind === 'issuer' ? await this.storage.oidc.issuer(name) : await this.storage.oidc.role(name);
    return row?.managed_by ?? null;
  }

  /** Every replica drops or reloads its copies (the plugin listens). */
  private changed<T>(done: Promise<T>, ...topics: ChangeTopic[]): Promise<T> {
    return done.then(async (out) => {
      for (const t of topics) await this.storage.publish(t);
      return out;
    });
  }

  /** Drops exchanged-token rows kept in memory (a revocation here or on another replica). */
  forgetTokens(): void {
    this.tokenCache.clear();
  }

  /** Returns true when the issuer is new. `managedBy`: the config file that declares it (null: the API). */
  putIssuer(i: IssuerConfig, managedBy: string | null = null): Promise<boolean> {
    const row = {
      name: i.name,
      issuer: i.issuer,
      audiences: JSON.stringify(i.audiences),
      algorithms: JSON.stringify(i.algorithms),
      jwks_uri: i.jwks_uri,
      max_token_age_s: i.max_token_age_s,
      max_token_lifetime_s: i.max_token_lifetime_s,
      tenant_claims: JSON.stringify(i.tenant_claims),
      allowed_types: JSON.stringify(i.allowed_types),
      managed_by: managedBy,
    };
    return this.changed(
      this.upsert(
        (r) => r.oidc.issuer(i.name),
        (r, now) => r.oidc.upsertIssuer(row, now),
      ),
      'oidc',
    );
  }

  rolesOfIssuer(name: string): Promise<string[]> {
    return this.storage.oidc.rolesOfIssuer(name);
  }

  deleteIssuer(name: string): Promise<boolean> {
    return this.changed(this.storage.oidc.deleteIssuer(name), 'oidc');
  }

  async roles(): Promise<RoleConfig[]> {
    return (await this.storage.oidc.roles()).map(roleFrom);
  }

  async role(name: string): Promise<RoleConfig | undefined> {
    const r = await this.storage.oidc.role(name);
    return r && roleFrom(r);
  }

  putRole(r: RoleConfig, managedBy: string | null = null): Promise<boolean> {
    const row = {
      name: r.name,
      issuer: r.issuer,
      bound_claims: JSON.stringify(r.bound_claims),
      bound_claims_glob: JSON.stringify(r.bound_claims_glob),
      paths: JSON.stringify(r.paths),
      permissions: JSON.stringify(r.permissions),
      token_ttl_s: r.token_ttl_s,
      managed_by: managedBy,
    };
    return this.changed(
      this.upsert(
        (t) => t.oidc.role(r.name),
        (t, now) => t.oidc.upsertRole(row, now),
      ),
      'oidc',
    );
  }

  async deleteRole(name: string): Promise<boolean> {
    this.tokenCache.clear();
    return this.changed(
      this.storage.tx(async (r) => {
        await r.oidc.revokeRole(name);
        return r.oidc.deleteRole(name);
      }),
      'oidc',
      'tokens',
    );
  }

  insertToken(hash: Buffer, t: StoredToken): Promise<void> {
    return this.storage.oidc.insertToken(
      hash,
      {
        issuer: t.issuer,
        issuer_url: t.issuer_url,
        jwks_uri: t.jwks_uri,
        header: JSON.stringify(t.header),
        subject: t.subject,
        roles: JSON.stringify(t.roles),
        claims: JSON.stringify(t.claims),
        key_kid: t.key?.kid ?? null,
        key_thumbprint: t.key?.thumbprint ?? null,
        expires_at: t.expires_at,
      },
      new Date(t.created_at).toISOString(),
    );
  }

  async token(hash: Buffer): Promise<StoredToken | undefined> {
    const key = hash.toString('hex');
    // With replicas, another process may revoke it at any moment: read at every use.
    const cached = this.storage.shared ? undefined : this.tokenCache.get(key);
    if (cached) return cached;
    const r = await this.storage.oidc.token(hash);
    if (!r) return undefined;
    const t: StoredToken = {
      issuer: r.issuer,
      issuer_url: r.issuer_url,
      jwks_uri: r.jwks_uri ?? null,
      header: JSON.parse(r.header) as StoredToken['header'],
      subject: r.subject,
      roles: JSON.parse(r.roles) as string[],
      claims: JSON.parse(r.claims) as Record<string, unknown>,
      key: r.key_thumbprint ? { kid: r.key_kid ?? null, thumbprint: r.key_thumbprint } : null,
      expires_at: Number(r.expires_at),
      created_at: Date.parse(r.created_at!),
    };
    if (this.tokenCache.size >= 10_000) this.tokenCache.clear();
    this.tokenCache.set(key, t);
    return t;
  }

  /** Deletes every exchanged token that carries `role`; returns how many. */
  revokeRole(role: string): Promise<number> {
    this.tokenCache.clear();
    return this.changed(this.storage.oidc.revokeRole(role), 'tokens');
  }

  purgeExpired(now: number): Promise<number> {
    this.tokenCache.clear();
    return this.storage.oidc.purgeExpired(now);
  }
}
