import type { Principal } from '../auth/principal.js';

// Principals are kept per connection (SVIDs) or per token: so are their keys.
const keys = new WeakMap<Principal, string>();

/**
 * Who a baseline belongs to: the SPIFFE ID on the mTLS port; on the OIDC
 * port the issuer, the roles and the tenant (the issuer's tenant claim
 * values, set by the OIDC plugin), so two repositories sharing a role are
 * two principals. Never a token.
 */
export function principalKey(p: Principal | undefined): string | undefined {
  if (!p) return undefined;
  let k = keys.get(p);
  if (k === undefined) {
    k = p.kind === 'spiffe' ? p.spiffeId : `${p.issuer} ${p.roles.join('+')} ${p.tenants ?? `sub=${p.subject}`}`;
    keys.set(p, k);
  }
  return k;
}
