/** Who is calling, as established by an auth plugin at the edge. */
export interface SpiffePrincipal {
  kind: 'spiffe';
  /** The SVID's SPIFFE ID, validated (see parseSpiffeId). */
  spiffeId: string;
  trustDomain: string;
}

/** A grant computed from OIDC roles: a path glob and what it allows. */
export interface Grant {
  path: string;
  permissions: Permission[];
  /** The role that granted it (so X-Nexus-Role can narrow an exchanged token too). */
  role: string;
}

/** A CI job, authenticated by its platform's JWT (or a token exchanged for one). */
export interface OidcPrincipal {
  kind: 'oidc';
  /** The configured issuer's name, and its URL (the token's `iss`). */
  issuer: string;
  issuerUrl: string;
  subject: string;
  roles: string[];
  grants: Grant[];
  via: 'jwt' | 'exchanged_token';
  /** HMAC of the token's jti or of the exchanged token, for the audit trail (never the token). */
  tokenId?: string;
  /** The values of all the issuer's tenant claims the token carries (`repository=org/repo,repository_owner=org`): with issuer and roles, the access signals' principal. */
  tenants?: string;
  /** When an exchanged token expires (ms since the epoch). */
  expiresAt?: number;
  /** The tenant claim and its value (`repository=acme/api`) whose rate limit the principal spends; absent, the subject's. */
  tenant?: string;
  /** SHA-256 of the exchanged token (its leases are found by it); never the token. */
  tokenHash?: Buffer;
  /** The verified claims it was minted from (a lease's username carries repository and run). */
  claims?: Readonly<Record<string, unknown>>;
}

export type Principal = SpiffePrincipal | OidcPrincipal;

export type Permission = 'read' | 'list' | 'write' | 'delete' | 'admin' | 'metrics';
export const PERMISSIONS: readonly Permission[] = ['read', 'list', 'write', 'delete', 'admin', 'metrics'];

/**
 * What a route needs from an ACL engine. The decision comes before any
 * storage lookup, so it sees only the principal, the action and the path.
 */
export interface Authorizer {
  allows(principal: Principal, action: Permission, path: string): boolean;
  /** Path-independent permissions (admin, metrics). */
  allowsGlobal(principal: Principal, action: 'admin' | 'metrics'): boolean;
  /** True if some grant could allow `action` somewhere (to tell 403 from an empty list). */
  mayEver(principal: Principal, action: Permission): boolean;
  /** The path globs under which `action` is allowed (a listing reads only where they can match). */
  globs(principal: Principal, action: Permission): string[];
}
