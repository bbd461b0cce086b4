import { createHash, randomBytes } from 'node:crypto';
import { Lru } from '../../nexus/lru.js';
import type { OidcPrincipal } from '../../nexus/auth/principal.js';
import { UnauthorizedError } from '../../nexus/errors.js';
import { tenantOf } from './limits.js';
import { resolveRoles, tenantClaimValues } from './roles.js';
import type { OidcStore, StoredToken } from './store.js';
import { DEFAULT_TOKEN_TTL_S, MAX_TOKEN_TTL_S, type IssuerConfig, type RoleConfig } from './types.js';
import { policyRefusal, type VerifiedToken } from './verify.js';

export const TOKEN_PREFIX = 'nxo_';

/** The SHA-256 a token is stored (and its leases found) by. */
export function hashOf(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** TTL: the shortest token_ttl_s among the matched roles (default 15 min), at most 1 h. */
export function ttlFor(roles: RoleConfig[]): number {
  const ttls = roles.map((r) => r.token_ttl_s ?? DEFAULT_TOKEN_TTL_S);
  return Math.min(MAX_TOKEN_TTL_S, ...ttls);
}

/**
 * Issues an opaque token for a verified JWT and the roles it matched. Only
 * the token's hash is stored, with the JWT's claims (not the JWT): grants
 * are worked out again from the current configuration on every use.
 */
export async function issueToken(store: OidcStore, jwt: VerifiedToken, roles: RoleConfig[], now = Date.now()): Promise<{ token: string; expires_in: number }> {
  const ttlS = ttlFor(roles);
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const c = jwt.issuer.config;
  await store.insertToken(hashOf(token), {
    issuer: c.name,
    issuer_url: c.issuer,
    jwks_uri: c.jwks_uri,
    header: jwt.header,
    subject: String(jwt.claims.sub ?? ''),
    roles: roles.map((r) => r.name),
    claims: jwt.claims as Record<string, unknown>,
    key: jwt.key,
    expires_at: now + ttlS * 1000,
    created_at: now,
  });
  return { token, expires_in: ttlS };
}

/** The configuration an exchanged token is re-resolved against. */
export interface CurrentConfig {
  issuer(name: string): IssuerConfig | undefined;
  roles(): RoleConfig[];
  /**
   * The thumbprints of the issuer's signing keys as last fetched: one object
   * per fetched set, replaced when the set changes. Null while no fetch has
   * succeeded (since start, or since the key source changed).
   */
  keySet(name: string): ReadonlySet<string> | null;
}

async function lookup(store: OidcStore, token: string, now: number): Promise<{ hash: Buffer; row: StoredToken }> {
  if (!/^nxo_[A-Za-z0-9_-]{43}$/.test(token)) throw new UnauthorizedError('exchanged_token_malformed');
  const hash = hashOf(token);
  const row = await store.token(hash);
  if (!row) throw new UnauthorizedError('exchanged_token_unknown_or_revoked');
  if (row.expires_at <= now) throw new UnauthorizedError('exchanged_token_expired');
  return { hash, row };
}

/** Revokes an exchanged token given back by its holder (revoke-self); false when it was not a live one. */
export async function revokeToken(store: OidcStore, token: string): Promise<boolean> {
  if (!/^nxo_[A-Za-z0-9_-]{43}$/.test(token)) return false;
  return store.revokeToken(hashOf(token));
}

/** What a stored token resolves to under an issuer's config, key set and the roles; nothing here depends on the time. */
function resolveStored(row: StoredToken, issuer: IssuerConfig | undefined, keySet: ReadonlySet<string> | null, configured: RoleConfig[]): OidcPrincipal {
  if (!issuer) throw new UnauthorizedError('exchanged_token_issuer_removed');
  // The JWT itself is gone, so a new key source cannot vouch for it.
  if (issuer.issuer !== row.issuer_url || issuer.jwks_uri !== row.jwks_uri) throw new UnauthorizedError('exchanged_token_issuer_changed');
  // Nor can a key the issuer has dropped (the answer to a leaked IdP key).
  // Only a set that was fetched says so: with none yet (the IdP unreachable
  // since start), the token stands, as the JWTs signed by known keys would.
  // A row without its key predates migration 006 or comes from a replica not
  // yet upgraded: no rotation could end it, so it is not honoured.
  if (!row.key) throw new UnauthorizedError('exchanged_token_signing_key_unknown');
  if (keySet && !keySet.has(row.key.thumbprint)) throw new UnauthorizedError('exchanged_token_signing_key_removed');
  const why = policyRefusal(issuer, row.claims, row.header, row.created_at / 1000);
  if (why) throw new UnauthorizedError(`exchanged_token_${why}`);
  const minted = configured.filter((r) => row.roles.includes(r.name));
  const { roles, grants } = resolveRoles(minted, issuer.name, row.claims);
  if (roles.length === 0) throw new UnauthorizedError('exchanged_token_roles_no_longer_match');
  // A role whose token_ttl_s was shortened since shortens the token too.
  const expiresAt = Math.min(row.expires_at, row.created_at + ttlFor(minted.filter((r) => roles.includes(r.name))) * 1000);
  const tenant = tenantOf(issuer, minted, roles, row.claims);
  return { kind: 'oidc', issuer: issuer.name, issuerUrl: issuer.issuer, subject: row.subject, roles, grants, via: 'exchanged_token', expiresAt, claims: row.claims, ...(tenant ? { tenant } : {}), tenants: tenantClaimValues(issuer.tenant_claims, row.claims) };
}

function expiring(p: OidcPrincipal, now: number): OidcPrincipal {
  if (p.expiresAt! <= now) throw new UnauthorizedError('exchanged_token_expired');
  return p;
}

interface Resolved {
  row: StoredToken;
  issuer: IssuerConfig | undefined;
  keySet: ReadonlySet<string> | null;
  roles: RoleConfig[];
  principal: OidcPrincipal;
}

/**
 * The principal an exchanged token stands for now: its stored claims checked
 * against the issuer's current settings and key set, and matched against the
 * current versions of the roles it was minted for (never more roles than
 * that). A narrowed role, a changed issuer or a signing key the issuer
 * dropped bites on the next request, not at expiry.
 *
 * Resolved once per token and configuration: the stored row (a revocation
 * drops it), the issuer's config, its key set and the roles array are
 * replaced, never changed in place, when anything changes, so an entry made
 * from the same four objects is still right. The expiry is checked on every request. The
 * audit token id (an HMAC) is computed once too.
 */
export class TokenPrincipals {
  private readonly memo = new Lru<string, Resolved>(10_000);

  constructor(
    private readonly store: OidcStore,
    private readonly current: CurrentConfig,
    private readonly tokenId: (raw: string) => string,
  ) {}

  async principal(token: string, now = Date.now()): Promise<OidcPrincipal> {
    const { hash, row } = await lookup(this.store, token, now);
    const key = hash.toString('base64');
    const issuer = this.current.issuer(row.issuer);
    const keySet = this.current.keySet(row.issuer);
    const roles = this.current.roles();
    const hit = this.memo.get(key);
    if (hit && hit.row === row && hit.issuer === issuer && hit.keySet === keySet && hit.roles === roles) return expiring(hit.principal, now);
    this.memo.delete(key);
    // A refusal is not remembered: the next request resolves again.
    const principal: OidcPrincipal = { ...resolveStored(row, issuer, keySet, roles), tokenId: this.tokenId(token), tokenHash: hash };
    this.memo.set(key, { row, issuer, keySet, roles, principal });
    return expiring(principal, now);
  }
}
