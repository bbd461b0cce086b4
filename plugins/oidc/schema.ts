import { BadRequestError } from '../../nexus/errors.js';
import { parsePermissions, parsePolicyName } from '../../nexus/policy/service.js';
import { isLoopbackUrl } from './net.js';
import { MAX_TOKEN_TTL_S, ROLE_PERMISSIONS, type ClaimValue, type IssuerConfig, type RoleConfig } from './types.js';

// Asymmetric JWS algorithms only: never `none`, never HMAC.
export const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function object(raw: unknown, rule: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BadRequestError(rule, `${rule} must be a JSON object`);
  return raw as Record<string, unknown>;
}

function onlyFields(b: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(b)) if (!allowed.includes(k)) throw new BadRequestError('body', `unknown field ${JSON.stringify(k)}`);
}

function httpsUrl(raw: unknown, rule: string): string {
  if (typeof raw !== 'string' || raw.length > 2048) throw new BadRequestError(rule, `${rule} must be a URL`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BadRequestError(rule, `${rule} must be a URL`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackUrl(u))) {
    throw new BadRequestError(rule, `${rule} must be https:// (http:// only on loopback hosts)`);
  }
  if (u.username || u.password || u.hash) throw new BadRequestError(rule, `${rule} must not carry credentials or a fragment`);
  return raw;
}

function optionalInt(raw: unknown, rule: string, min: number, max: number): number | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) throw new BadRequestError(rule, `${rule} must be an integer from ${min} to ${max}`);
  return raw;
}

function stringList(raw: unknown, rule: string, max = 50): string[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > max || raw.some((v) => typeof v !== 'string' || v.length === 0 || v.length > 1024)) {
    throw new BadRequestError(rule, `${rule} must be a list of 1 to ${max} non-empty strings`);
  }
  return [...new Set(raw as string[])];
}

export function parseIssuer(name: string, raw: unknown): IssuerConfig {
  const b = object(raw, 'body');
  onlyFields(b, ['name', 'issuer', 'audiences', 'algorithms', 'jwks_uri', 'max_token_age_s']);
  const algorithms = stringList(b.algorithms ?? ['RS256'], 'algorithms', 10);
  for (const a of algorithms) {
    if (!ASYMMETRIC_ALGS.includes(a)) throw new BadRequestError('algorithms', `algorithm ${a} is not allowed; use asymmetric ones: ${ASYMMETRIC_ALGS.join(', ')}`);
  }
  return {
    name: parsePolicyName(name),
    issuer: httpsUrl(b.issuer, 'issuer'),
    audiences: stringList(b.audiences, 'audiences'),
    algorithms,
    jwks_uri: b.jwks_uri === undefined || b.jwks_uri === null ? null : httpsUrl(b.jwks_uri, 'jwks_uri'),
    max_token_age_s: optionalInt(b.max_token_age_s, 'max_token_age_s', 1, 86400),
  };
}

const CLAIM_NAME = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;

function claimName(k: string, rule: string): string {
  if (!CLAIM_NAME.test(k) || k.length > 128) throw new BadRequestError(rule, `claim name ${JSON.stringify(k)} is not valid (dotted names reach nested claims)`);
  return k;
}

function scalar(v: unknown, rule: string): ClaimValue {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  throw new BadRequestError(rule, 'bound claim values must be strings, numbers or booleans (or lists of them)');
}

export function parseRole(name: string, raw: unknown): RoleConfig {
  const b = object(raw, 'body');
  onlyFields(b, ['name', 'issuer', 'bound_claims', 'bound_claims_glob', 'paths', 'permissions', 'token_ttl_s']);
  if (typeof b.issuer !== 'string') throw new BadRequestError('issuer', 'issuer must name a configured issuer');
  const bound_claims: RoleConfig['bound_claims'] = {};
  for (const [k, v] of Object.entries(object(b.bound_claims ?? {}, 'bound_claims'))) {
    if (Array.isArray(v)) {
      if (v.length === 0 || v.length > 100) throw new BadRequestError('bound_claims', `bound_claims.${k} must list 1 to 100 values`);
      bound_claims[claimName(k, 'bound_claims')] = v.map((x) => scalar(x, 'bound_claims'));
    } else bound_claims[claimName(k, 'bound_claims')] = scalar(v, 'bound_claims');
  }
  const bound_claims_glob: Record<string, string> = {};
  for (const [k, v] of Object.entries(object(b.bound_claims_glob ?? {}, 'bound_claims_glob'))) {
    if (typeof v !== 'string' || v.length === 0 || v.length > 1024) throw new BadRequestError('bound_claims_glob', `bound_claims_glob.${k} must be a non-empty string`);
    bound_claims_glob[claimName(k, 'bound_claims_glob')] = v;
  }
  if (Object.keys(bound_claims).length + Object.keys(bound_claims_glob).length === 0) {
    // A role bound to nothing would admit every token of the issuer.
    throw new BadRequestError('bound_claims', 'a role needs at least one bound claim');
  }
  const paths = stringList(b.paths, 'paths', 100);
  for (const p of paths) validatePathTemplate(p);
  return {
    name: parsePolicyName(name),
    issuer: parsePolicyName(b.issuer),
    bound_claims,
    bound_claims_glob,
    paths,
    permissions: parsePermissions(b.permissions, ROLE_PERMISSIONS),
    token_ttl_s: optionalInt(b.token_ttl_s, 'token_ttl_s', 1, MAX_TOKEN_TTL_S),
  };
}

export const TEMPLATE = /\{\{claims\.([A-Za-z0-9_:-]+(?:\.[A-Za-z0-9_:-]+)*)\}\}/g;

/** A path glob in which `{{claims.NAME}}` placeholders may stand. */
export function validatePathTemplate(p: string): void {
  const literal = p.replace(TEMPLATE, 'x');
  if (literal.includes('{') || literal.includes('}')) throw new BadRequestError('paths', `path ${JSON.stringify(p)}: only {{claims.NAME}} placeholders are allowed`);
  if (!/^[A-Za-z0-9._/*-]{1,512}$/.test(literal) || literal.startsWith('/') || literal.includes('//') || literal.split('/').some((s) => s === '.' || s === '..')) {
    throw new BadRequestError('paths', `path ${JSON.stringify(p)} is not a valid path glob`);
  }
}
