import type { Grant, Permission } from '../../nexus/auth/principal.js';
import { compileGlob } from '../../nexus/policy/glob.js';
import { isValidSegment } from '../../nexus/secrets/rules.js';
import { TEMPLATE } from './schema.js';
import type { ClaimValue, IssuerConfig, RoleConfig } from './types.js';

/** A claim by dotted name (`a.b` reaches `{"a":{"b":...}}`); own properties only. */
export function claimAt(claims: Record<string, unknown>, name: string): unknown {
  let cur: unknown = claims;
  for (const part of name.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Comparison by JSON type: the string "true" never equals the boolean true. */
export function sameJson(a: unknown, b: ClaimValue): boolean {
  return typeof a === typeof b && a === b;
}

export function roleMatches(role: RoleConfig, claims: Record<string, unknown>): boolean {
  for (const [name, expected] of Object.entries(role.bound_claims)) {
    const v = claimAt(claims, name);
    const options = Array.isArray(expected) ? expected : [expected];
    if (!options.some((o) => sameJson(v, o))) return false;
  }
  for (const [name, pattern] of Object.entries(role.bound_claims_glob)) {
    const v = claimAt(claims, name);
    if (typeof v !== 'string' || !compileGlob(pattern).test(v)) return false;
  }
  return true;
}

/**
 * The role's path globs with `{{claims.NAME}}` filled in, or null when any
 * placeholder cannot be (missing or non-string claim, or a part that is not a
 * valid segment): then the role grants nothing. Each `/`-separated part of
 * the value is inserted as a literal segment, so it can never be a wildcard.
 */
export function renderPaths(role: RoleConfig, claims: Record<string, unknown>): string[] | null {
  const out: string[] = [];
  for (const template of role.paths) {
    let ok = true;
    const rendered = template.replace(TEMPLATE, (_m, name: string) => {
      const v = claimAt(claims, name);
      if (typeof v !== 'string' || !v.split('/').every(isValidSegment)) ok = false;
      return typeof v === 'string' ? v : '';
    });
    if (!ok) return null;
    out.push(rendered);
  }
  return out;
}

/**
 * Why a role may not stand under this issuer, or null: it must bind one of
 * the issuer's tenant claims, exactly or by a glob that starts with a
 * literal. Anything else (`ref: refs/heads/main`, `sub: *`) matches tokens
 * that any account on a public CI platform can mint for any audience.
 */
export function tenantRefusal(role: Pick<RoleConfig, 'bound_claims' | 'bound_claims_glob'>, issuer: Pick<IssuerConfig, 'name' | 'tenant_claims'>): string | null {
  const tenants = issuer.tenant_claims;
  if (Object.keys(role.bound_claims).some((k) => tenants.includes(k))) return null;
  if (Object.entries(role.bound_claims_glob).some(([k, p]) => tenants.includes(k) && !p.startsWith('*'))) return null;
  return (
    `a role must bind one of issuer ${issuer.name}'s tenant claims (${tenants.join(', ')}) exactly, or by a glob that starts with a literal: ` +
    'other claims (such as ref) can be matched by a token any tenant of a public IdP can mint'
  );
}

export interface RoleResolution {
  roles: string[];
  grants: Grant[];
}

/** Union of the grants of every role of `issuer` that matches (or only `onlyRole`). */
export function resolveRoles(roles: RoleConfig[], issuer: string, claims: Record<string, unknown>, onlyRole?: string): RoleResolution {
  const matched: string[] = [];
  const grants: Grant[] = [];
  for (const role of roles) {
    if (role.issuer !== issuer || (onlyRole !== undefined && role.name !== onlyRole)) continue;
    if (!roleMatches(role, claims)) continue;
    const paths = renderPaths(role, claims);
    if (!paths) continue;
    matched.push(role.name);
    for (const path of paths) grants.push({ path, permissions: [...role.permissions], role: role.name });
  }
  return { roles: matched, grants };
}

/** Decisions over a principal's grants (compiled once per grant set). */
export function grantAllows(grants: Grant[], action: Permission, path: string): boolean {
  return grants.some((g) => g.permissions.includes(action) && compiled(g.path).test(path));
}

const cache = new Map<string, RegExp>();
function compiled(glob: string): RegExp {
  let re = cache.get(glob);
  if (!re) {
    if (cache.size > 10_000) cache.clear();
    re = compileGlob(glob);
    cache.set(glob, re);
  }
  return re;
}

/**
 * The token's tenant, for the access signals' principal key: the values of
 * the issuer's tenant claims it carries (`repository=org/repo,...`). `sub`
 * only when nothing else is there: on GitHub it names the branch too, and a
 * new branch must not be a new principal with a learning window of its own.
 */
export function tenantClaimValues(tenantClaims: readonly string[], claims: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const c of tenantClaims) {
    if (c === 'sub') continue;
    const v = claimAt(claims, c);
    if (typeof v === 'string' || typeof v === 'number') parts.push(`${c}=${v}`);
  }
  return parts.length ? parts.join(',') : `sub=${String(claims.sub ?? '')}`;
}
