import type { ConfigTopic } from '../../nexus/storage/changes.js';
import { commitConfigChange } from '../../nexus/storage/config-change.js';
import type { IssuerRow, Repos, RoleRow, Storage } from '../../nexus/storage/storage.js';
import { ciRunOf } from './ci-run.js';
import { bare, DEFAULT_JWKS_STALE_S, DEFAULT_MAX_TOKEN_LIFETIME_S } from './schema.js';
import type { IssuerConfig, RoleConfig } from './types.js';
import type { SigningKey } from './verify.js';
import { webhookOwner, type SealedWebhookSecret } from './webhook-secrets.js';

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
    jwks: r.jwks ? (JSON.parse(r.jwks) as IssuerConfig['jwks']) : null,
    jwks_file: r.jwks_file ?? null,
    jwks_stale_s: r.jwks_stale_s ?? DEFAULT_JWKS_STALE_S,
    rate_limit: r.rate_limit ? (JSON.parse(r.rate_limit) as IssuerConfig['rate_limit']) : null,
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

/**
 * Typed issuers and roles over one set of repositories: the storage itself
 * (reads) or one transaction's (a change and the rules it is checked against).
 */
export class OidcTables {
  constructor(private readonly r: Pick<Repos, 'oidc' | 'configSecrets'>) {}

  async issuers(): Promise<IssuerConfig[]> {
    return (await this.r.oidc.issuers()).map(issuerFrom);
  }

  async issuer(name: string): Promise<IssuerConfig | undefined> {
    const r = await this.r.oidc.issuer(name);
    return r && issuerFrom(r);
  }

  async roles(): Promise<RoleConfig[]> {
    return (await this.r.oidc.roles()).map(roleFrom);
  }

  async role(name: string): Promise<RoleConfig | undefined> {
    const r = await this.r.oidc.role(name);
    return r && roleFrom(r);
  }

  rolesOfIssuer(name: string): Promise<string[]> {
    return this.r.oidc.rolesOfIssuer(name);
  }

  /** Who manages an issuer or role: the config file that declares it, or null (the API); undefined: no such object. */
  async managedBy(kind: 'issuer' | 'role', name: string): Promise<string | null | undefined> {
    const row = kind === 'issuer' ? await this.r.oidc.issuer(name) : await this.r.oidc.role(name);
    return row && (row.managed_by ?? null);
  }

  /** Returns true when the issuer is new. `managedBy`: the config file that declares it (null: the API). */
  async putIssuer(i: IssuerConfig, managedBy: string | null): Promise<boolean> {
    const existed = (await this.r.oidc.issuer(i.name)) !== undefined;
    await this.r.oidc.upsertIssuer(
      {
        name: i.name,
        issuer: i.issuer,
        audiences: JSON.stringify(i.audiences),
        algorithms: JSON.stringify(i.algorithms),
        jwks_uri: i.jwks_uri,
        max_token_age_s: i.max_token_age_s,
        max_token_lifetime_s: i.max_token_lifetime_s,
        tenant_claims: JSON.stringify(i.tenant_claims),
        allowed_types: JSON.stringify(i.allowed_types),
        jwks: i.jwks && JSON.stringify(i.jwks),
        jwks_file: i.jwks_file,
        jwks_stale_s: i.jwks_stale_s,
        rate_limit: i.rate_limit && JSON.stringify(i.rate_limit),
        managed_by: managedBy,
      },
      new Date().toISOString(),
    );
    return !existed;
  }

  /** The issuer and its webhook secret. */
  async deleteIssuer(name: string): Promise<boolean> {
    await this.r.configSecrets.delete(webhookOwner(name));
    return this.r.oidc.deleteIssuer(name);
  }

  /** Stores (sealed), removes (null) or keeps (undefined) an issuer's webhook secret. */
  async setWebhookSecret(name: string, sealed: SealedWebhookSecret): Promise<void> {
    if (sealed === null) await this.r.configSecrets.delete(webhookOwner(name));
    else if (sealed !== undefined) await this.r.configSecrets.put(webhookOwner(name), sealed, new Date().toISOString());
  }

  async putRole(r: RoleConfig, managedBy: string | null): Promise<boolean> {
    const existed = (await this.r.oidc.role(r.name)) !== undefined;
    await this.r.oidc.upsertRole(
      {
        name: r.name,
        issuer: r.issuer,
        bound_claims: JSON.stringify(r.bound_claims),
        bound_claims_glob: JSON.stringify(r.bound_claims_glob),
        paths: JSON.stringify(r.paths),
        permissions: JSON.stringify(r.permissions),
        token_ttl_s: r.token_ttl_s,
        managed_by: managedBy,
      },
      new Date().toISOString(),
    );
    return !existed;
  }

  /** The role and every exchanged token that carries it. */
  async deleteRole(name: string): Promise<boolean> {
    await this.r.oidc.revokeRole(name);
    return this.r.oidc.deleteRole(name);
  }

  revokeRole(role: string): Promise<number> {
    return this.r.oidc.revokeRole(role);
  }

  revokeIssuer(issuer: string, role: string | null): Promise<number> {
    return this.r.oidc.revokeIssuer(issuer, role);
  }
}

/**
 * The OIDC plugin's view of its tables: typed configs over the storage's
 * rows. It reads; it writes configuration only through change().
 */
export class OidcStore {
  // Looked up on every request that carries an exchanged token: rows kept in
  // memory. Every revocation below clears the cache in the same step.
  private readonly tokenCache = new Map<string, StoredToken>();
  private readonly tables: OidcTables;

  constructor(private readonly storage: Storage) {
    this.tables = new OidcTables(storage);
  }

  issuers(): Promise<IssuerConfig[]> {
    return this.tables.issuers();
  }

  issuer(name: string): Promise<IssuerConfig | undefined> {
    return this.tables.issuer(name);
  }

  roles(): Promise<RoleConfig[]> {
    return this.tables.roles();
  }

  role(name: string): Promise<RoleConfig | undefined> {
    return this.tables.role(name);
  }

  /**
   * One configuration change in one transaction, checked and written through
   * `fn`'s tables; its version is bumped with it and every replica told.
   * Resolved, it is committed (see commitConfigChange).
   */
  async change<T>(topics: readonly ConfigTopic[], fn: (t: OidcTables) => Promise<T>): Promise<T> {
    const revokes = topics.includes('tokens');
    if (revokes) this.tokenCache.clear();
    try {
      return await commitConfigChange(this.storage, topics, (r) => fn(new OidcTables(r)));
    } finally {
      // A token read while the revocation was under way may have been cached again.
      if (revokes) this.tokenCache.clear();
    }
  }

  /** Drops exchanged-token rows kept in memory (a revocation here or on another replica). */
  forgetTokens(): void {
    this.tokenCache.clear();
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
        ci_run: ciRunOf(t.claims),
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

  /** Deletes every exchanged token that carries `role`, as a configuration change (versioned, announced); returns how many. */
  revokeRole(role: string): Promise<number> {
    return this.change(['tokens'], (t) => t.revokeRole(role));
  }

  /**
   * Deletes one exchanged token (revoke-self, at the end of every CI job). Not
   * a configuration change: replicas read tokens from the shared database at
   * every use, and one process needs only this row out of its cache, so no
   * version bump (one contended row per job) and no notice.
   */
  async revokeToken(hash: Buffer): Promise<boolean> {
    const key = hash.toString('hex');
    this.tokenCache.delete(key);
    try {
      return await this.storage.oidc.revokeToken(hash);
    } finally {
      // A use of the token while the delete was under way may have cached it again.
      this.tokenCache.delete(key);
    }
  }

  /** Deletes every exchanged token of an issuer, or of one of its roles; returns how many. */
  revokeIssuer(issuer: string, role: string | null): Promise<number> {
    return this.change(['tokens'], (t) => t.revokeIssuer(issuer, role));
  }

  /**
   * A CI platform's end-of-work event: in one transaction, the delivery is
   * remembered (under each of `deliveryKeys`, until `rememberUntil`) and every
   * token of `issuer` minted for `ciRun` deleted; null when the delivery was
   * already remembered (a replay, which changes nothing). Like revoke-self,
   * not a configuration change (one arrives at the end of every job):
   * replicas read tokens from the shared database at every use, and this
   * process drops the deleted rows from its cache.
   */
  async endCiRun(issuer: string, ciRun: string, deliveryKeys: string[], now: number, rememberUntil: number): Promise<Buffer[] | null> {
    const hashes = await this.storage.tx(async (r) => {
      if (!(await r.oidc.claimDelivery(deliveryKeys, now, rememberUntil))) return null;
      return r.oidc.revokeCiRun(issuer, ciRun);
    });
    for (const h of hashes ?? []) this.tokenCache.delete(h.toString('hex'));
    return hashes;
  }

  /**
   * One batch of expired tokens out of the database (see TokenPurge). The
   * cache is left alone: a cached token is checked against its expiry at every use.
   */
  purgeExpired(now: number, limit: number): Promise<number> {
    return this.storage.oidc.purgeExpired(now, limit);
  }

  /** After a purge round: the deleted rows' space made reusable where nothing else does it (storage's reclaimTokens). */
  reclaim(): Promise<boolean> {
    return this.storage.oidc.reclaimTokens?.() ?? Promise.resolve(false);
  }
}
