import { createHash, randomBytes } from 'node:crypto';
import type { OidcPrincipal } from '../../nexus/auth/principal.js';
import { UnauthorizedError } from '../../nexus/errors.js';
import type { OidcStore } from './store.js';
import { DEFAULT_TOKEN_TTL_S, MAX_TOKEN_TTL_S, type RoleConfig } from './types.js';

export const TOKEN_PREFIX = 'nxo_';

function hashOf(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** TTL: the shortest token_ttl_s among the matched roles (default 15 min), at most 1 h. */
export function ttlFor(roles: RoleConfig[]): number {
  const ttls = roles.map((r) => r.token_ttl_s ?? DEFAULT_TOKEN_TTL_S);
  return Math.min(MAX_TOKEN_TTL_S, ...ttls);
}

/** Issues an opaque token carrying the principal's grants; only its hash is stored. */
export async function issueToken(store: OidcStore, p: OidcPrincipal, ttlS: number, now = Date.now()): Promise<{ token: string; expires_in: number }> {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  await store.insertToken(hashOf(token), { issuer: p.issuer, issuer_url: p.issuerUrl, subject: p.subject, roles: p.roles, grants: p.grants, expires_at: now + ttlS * 1000 });
  return { token, expires_in: ttlS };
}

/** The principal an exchanged token stands for; no JWT verification involved. */
export async function principalFromToken(store: OidcStore, token: string, now = Date.now()): Promise<OidcPrincipal> {
  if (!/^nxo_[A-Za-z0-9_-]{43}$/.test(token)) throw new UnauthorizedError('exchanged_token_malformed');
  const row = await store.token(hashOf(token));
  if (!row) throw new UnauthorizedError('exchanged_token_unknown_or_revoked');
  if (row.expires_at <= now) throw new UnauthorizedError('exchanged_token_expired');
  return { kind: 'oidc', issuer: row.issuer, issuerUrl: row.issuer_url, subject: row.subject, roles: row.roles, grants: row.grants, via: 'exchanged_token' };
}
