/** Who is calling, as established by an auth plugin at the edge. */
export interface SpiffePrincipal {
  kind: 'spiffe';
  /** The SVID's SPIFFE ID, validated (see parseSpiffeId). */
  spiffeId: string;
  trustDomain: string;
}

export type Principal = SpiffePrincipal;

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
}
