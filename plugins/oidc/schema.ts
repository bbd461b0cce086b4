import { ObjectName, parseName, permissionList, Timestamps } from '../../nexus/policy/schema.js';
import { fail, parseInput, z } from '../../nexus/schema.js';
import { isLoopbackUrl } from './net.js';
import { MAX_TOKEN_BYTES } from './verify.js';

// Asymmetric JWS algorithms only: never `none`, never HMAC.
export const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** Permissions a role may grant on the OIDC port (never admin or metrics). */
export const ROLE_PERMISSIONS = ['read', 'list', 'write'] as const;
export const DEFAULT_TOKEN_TTL_S = 900;
/** CI platforms issue 5 to 60 min tokens: an hour covers them all. */
export const DEFAULT_MAX_TOKEN_LIFETIME_S = 3600;

export { TENANT_CLAIM_PRESETS } from './presets.js';
export const MAX_TOKEN_TTL_S = 3600;

function isIssuerUrl(raw: string): boolean {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return false;
  }
  const scheme = u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackUrl(u));
  return scheme && !u.username && !u.password && !u.hash;
}

const IssuerUrl = z.string().max(2048).refine(isIssuerUrl).describe('an https:// URL (http:// only on loopback hosts), without credentials or a fragment');

const optionalInt = (max: number) => z.int().min(1).max(max).nullable().default(null).describe(`an integer from 1 to ${max}, or null`);

const stringList = (max: number) =>
  z
    .array(z.string().min(1).max(1024))
    .min(1)
    .max(max)
    .overwrite((l) => [...new Set(l)])
    .describe(`a list of 1 to ${max} non-empty strings`);

const ignoredName = z.unknown().optional().describe('ignored: the name is the one in the URL');

const CLAIM_NAME = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;
const badClaimName = { error: (iss: { input?: unknown }) => `claim name ${JSON.stringify(iss.input)} is not valid (dotted names reach nested claims)` };
// JSON.parse makes `__proto__` an own key, and copying it into an ordinary
// object sets the prototype instead: the binding would vanish without a word.
// Such names are refused outright, in any segment of a dotted name.
const PROTOTYPE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
const ClaimName = z
  .string()
  .max(128, badClaimName)
  .regex(CLAIM_NAME, badClaimName)
  .refine((k) => !k.split('.').some((s) => PROTOTYPE_NAMES.has(s)), {
    error: (iss) => `claim name ${JSON.stringify(iss.input)} is not allowed (__proto__, constructor and prototype never name a claim)`,
  });

/** A map built from input, without a prototype: no inherited key can ever read as a binding. */
export function bare<V>(m: Record<string, V>): Record<string, V> {
  return Object.assign(Object.create(null) as Record<string, V>, m);
}

// A private member in a JWK Set handed to us is a mistake worth refusing: it would be stored and shown.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const PublicJwk = z
  .looseObject({ kty: z.string().min(1).max(16) })
  .refine((k) => !PRIVATE_JWK_MEMBERS.some((m) => Object.hasOwn(k, m)), { error: 'a key set holds public keys only (no d, p, q, dp, dq, qi, oth or k member)' });
export const JwkSet = z
  .strictObject({ keys: z.array(PublicJwk).min(1).max(100) })
  .describe('a JWK Set (RFC 7517) of 1 to 100 public keys')
  .meta({ id: 'JwkSet' });
export const DEFAULT_JWKS_STALE_S = 86400;

/**
 * Key sets for IdPs Nexus cannot reach (GHES, self-managed GitLab behind a
 * firewall): keys held inline or in a file, beside or instead of discovery.
 */
const KeySetFields = {
  jwks: JwkSet.nullable().default(null),
  jwks_file: z
    .string()
    .max(4096)
    .regex(/^\/[^\0]*$/)
    .nullable()
    .default(null)
    .describe('an absolute path on the server to a JWK Set file, re-read when it changes (within 60 s), or null'),
  jwks_stale_s: z
    .int()
    .min(1)
    .max(30 * 86400)
    .default(DEFAULT_JWKS_STALE_S)
    .describe('an integer from 1 to 2592000: how long keys fetched from the IdP keep verifying while it does not answer'),
};

const rate = (what: string, setting: string) =>
  z
    .number()
    .gt(0)
    .max(1e6)
    .optional()
    .describe(`a number in (0, 1000000]: ${what} per second, burst 5x (absent: ${setting})`);

/**
 * An issuer's own rates, for an IdP whose traffic differs from the rest (a
 * GHES with a few huge monorepos, a GitLab whose runners sit behind one NAT).
 * Each field absent: the global setting (NEXUS_OIDC_SUBJECT_RPS,
 * NEXUS_OIDC_FAILED_AUTH_RPS) for that limit.
 */
export const IssuerRateLimit = z
  .strictObject({
    per_tenant_rps: rate('requests per tenant (the repository or project a role binds)', 'NEXUS_OIDC_SUBJECT_RPS'),
    per_ip_failed_rps: rate('failed authentications per client IP with a JWT whose iss is this issuer', 'NEXUS_OIDC_FAILED_AUTH_RPS'),
  })
  .nullable()
  .default(null)
  .describe('an object {per_tenant_rps, per_ip_failed_rps} (each optional) of the issuer\'s own rate limits, or null (the global settings)')
  .meta({ id: 'IssuerRateLimit' });

/**
 * The secret the CI platform's end-of-work webhooks carry (GitHub: the HMAC
 * key of X-Hub-Signature-256; GitLab: the X-Gitlab-Token). Write-only: sealed
 * in config_secrets, never returned, logged or audited. Absent: unchanged;
 * null: removed (the issuer no longer accepts events).
 */
const WebhookSecret = z
  .string()
  .min(16)
  .max(512)
  .regex(/^[\x21-\x7e]+$/)
  .nullable()
  .optional()
  .describe('write-only: 16 to 512 printable ASCII characters, the CI platform\'s webhook secret (opts the issuer in to /v1/ci/events/*); absent keeps the stored one, null removes it');

/** PUT /v1/oidc/issuers/{name} (and NEXUS_CONFIG oidc.issuers.NAME). */
export const IssuerInput = z
  .strictObject({
    name: ignoredName,
    issuer: IssuerUrl,
    audiences: stringList(50),
    algorithms: z
      .array(z.enum(ASYMMETRIC_ALGS))
      .min(1)
      .max(10)
      .overwrite((l) => [...new Set(l)])
      .default(['RS256'])
      .describe(`a list of 1 to 10 asymmetric algorithms: ${ASYMMETRIC_ALGS.join(', ')}`),
    jwks_uri: IssuerUrl.nullable().default(null),
    max_token_age_s: optionalInt(86400),
    max_token_lifetime_s: z
      .int()
      .min(1)
      .max(86400)
      .default(DEFAULT_MAX_TOKEN_LIFETIME_S)
      .describe('an integer from 1 to 86400: the longest exp - iat (or exp - now without iat) accepted'),
    tenant_claims: z
      .array(ClaimName)
      .min(1)
      .max(20)
      .overwrite((l) => [...new Set(l)])
      .default(['sub'])
      .describe('a list of 1 to 20 claim names, one of which every role must bind (presets: github, gitlab)'),
    allowed_types: z
      .array(z.string().min(1).max(64))
      .max(10)
      .overwrite((l) => [...new Set(l.map((t) => t.toLowerCase()))])
      .default([])
      .describe('a list of up to 10 JWT `typ` values accepted besides JWT (e.g. at+jwt)'),
    ...KeySetFields,
    rate_limit: IssuerRateLimit,
    webhook_secret: WebhookSecret,
  })
  .meta({ id: 'IssuerInput' });

/**
 * The body of PUT /v1/oidc/issuers/{name}: the definition, and one request
 * option. `verify` is how this request is checked, not part of the issuer:
 * it is never stored or returned, and the config file has no such key.
 */
export const IssuerRequest = IssuerInput.extend({
  verify: z.boolean().default(true).describe('request option, not stored: false saves without fetching discovery and the JWKS (an IdP reachable only later)'),
}).meta({ id: 'IssuerRequest' });

/** A trusted issuer, as configured (contract: OIDC issuers and roles). */
export const Issuer = IssuerInput.omit({ name: true, webhook_secret: true })
  .extend({ name: ObjectName, ...Timestamps })
  .partial({ created_at: true, updated_at: true })
  .meta({ id: 'Issuer' });
export type IssuerConfig = z.output<typeof Issuer>;

const ClaimValue = z.union([z.string(), z.number(), z.boolean()]);
export type ClaimValue = z.output<typeof ClaimValue>;

export const TEMPLATE = /\{\{claims\.([A-Za-z0-9_:-]+(?:\.[A-Za-z0-9_:-]+)*)\}\}/g;

/** A path glob in which `{{claims.NAME}}` placeholders may stand. */
const PathTemplate = z.string().check((ctx) => {
  const p = ctx.value;
  const literal = p.replace(TEMPLATE, 'x');
  if (literal.includes('{') || literal.includes('}')) fail(ctx, `path ${JSON.stringify(p)}: only {{claims.NAME}} placeholders are allowed`);
  else if (!/^[A-Za-z0-9._/*-]{1,512}$/.test(literal) || literal.startsWith('/') || literal.includes('//') || literal.split('/').some((s) => s === '.' || s === '..')) {
    fail(ctx, `path ${JSON.stringify(p)} is not a valid path glob`);
  }
});

const RoleFields = z.strictObject({
  name: ignoredName,
  issuer: ObjectName.describe('the name of a configured issuer'),
  bound_claims: z
    .record(ClaimName, z.union([ClaimValue, z.array(ClaimValue).min(1).max(100)]).describe('a value or a list of 1 to 100 values (strings, numbers or booleans)'))
    .overwrite(bare)
    .default({})
    .describe('a mapping of claim names (dotted for nested claims) to a value or a list of 1 to 100 values (strings, numbers or booleans)'),
  bound_claims_glob: z
    .record(ClaimName, z.string().min(1).max(1024).describe('a non-empty glob'))
    .overwrite(bare)
    .default({})
    .describe('a mapping of claim names to non-empty globs (for string claims)'),
  paths: z.array(PathTemplate).min(1).max(100).overwrite((l) => [...new Set(l)]).describe('a list of 1 to 100 path globs with {{claims.NAME}} placeholders'),
  permissions: permissionList(ROLE_PERMISSIONS),
  token_ttl_s: optionalInt(MAX_TOKEN_TTL_S),
});

/** PUT /v1/oidc/roles/{name} (and NEXUS_CONFIG oidc.roles.NAME). */
export const RoleInput = RoleFields.check((ctx) => {
  // A role bound to nothing would admit every token of the issuer.
  const r = ctx.value;
  if (Object.keys(r.bound_claims).length + Object.keys(r.bound_claims_glob).length === 0) fail(ctx, 'a role needs at least one bound claim', { path: ['bound_claims'] });
}).meta({ id: 'RoleInput' });

/** Claims -> grants: every binding must hold; a list means any of its values. */
export const Role = RoleFields.omit({ name: true })
  .extend({ name: ObjectName, ...Timestamps })
  .partial({ created_at: true, updated_at: true })
  .meta({ id: 'Role' });
export type RoleConfig = z.output<typeof Role>;
/** A role as read, or as a PUT answers it: with the lint's warnings when there are some. */
export const RoleWritten = Role.extend({ warnings: z.array(z.string()).optional().describe('only in a PUT answer: what the lint found (the role was saved)') }).meta({ id: 'RoleWritten' });

/** The webhook secret as sent: a value to store, null to remove, undefined to keep. */
export type WebhookSecretChange = string | null | undefined;

/** An issuer as declared, and its webhook secret apart (never part of the configuration that is passed around). */
export function parseIssuer(name: string, raw: unknown): { issuer: IssuerConfig; webhookSecret: WebhookSecretChange } {
  const { name: _ignored, webhook_secret, ...cfg } = parseInput(IssuerInput, raw);
  return { issuer: { name: parseName(name), ...cfg }, webhookSecret: webhook_secret };
}

/** An admin PUT's body: the issuer, its webhook secret, and whether to verify it first. */
export function parseIssuerRequest(name: string, raw: unknown): { issuer: IssuerConfig; webhookSecret: WebhookSecretChange; verify: boolean } {
  const { name: _ignored, verify, webhook_secret, ...cfg } = parseInput(IssuerRequest, raw);
  return { issuer: { name: parseName(name), ...cfg }, webhookSecret: webhook_secret, verify };
}

/** A definition as sent, its webhook secret replaced by whether one was given: what an audit digest may cover. */
export function withoutWebhookSecret(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('webhook_secret' in body)) return body;
  const { webhook_secret: s, ...rest } = body as Record<string, unknown>;
  return { ...rest, webhook_secret: s === null ? null : '(write-only)' };
}

/** zod's record passes over a `__proto__` key without a word, so the raw keys are checked first. */
function refusePrototypeKeys(raw: unknown): void {
  if (typeof raw !== 'object' || raw === null) return;
  for (const field of ['bound_claims', 'bound_claims_glob'] as const) {
    const m = (raw as Record<string, unknown>)[field];
    if (typeof m === 'object' && m !== null) for (const k of Object.keys(m)) parseInput(ClaimName, k, field);
  }
}

export function parseRole(name: string, raw: unknown): RoleConfig {
  refusePrototypeKeys(raw);
  const { name: _ignored, ...cfg } = parseInput(RoleInput, raw);
  return { name: parseName(name), ...cfg };
}

export const IssuerList = z.object({ issuers: z.array(Issuer) }).meta({ id: 'IssuerList' });
export const RoleList = z.object({ roles: z.array(Role) }).meta({ id: 'RoleList' });
export const RevokeResult = z.object({ role: ObjectName, revoked: z.int().min(0).describe('how many exchanged tokens were revoked') }).meta({ id: 'RevokeResult' });
/** POST /v1/oidc/issuers/{name}:revoke-tokens: every token of the issuer, or only those of one of its roles (the body is optional). */
export const IssuerRevokeInput = z.strictObject({ role: ObjectName.optional().describe('only the tokens that carry this role') }).meta({ id: 'IssuerRevokeInput' });
export const IssuerRevokeResult = z
  .object({ issuer: ObjectName, role: ObjectName.optional(), revoked: z.int().min(0).describe('how many exchanged tokens were revoked') })
  .meta({ id: 'IssuerRevokeResult' });

/** POST /v1/auth/token. */
export const TokenRequest = z.object({ jwt: z.string().max(MAX_TOKEN_BYTES).describe('the CI platform\'s JWT') }).meta({ id: 'TokenRequest' });
export const TokenResponse = z
  .object({ token: z.string().describe('opaque; Bearer on the OIDC port only'), expires_in: z.int().min(1).max(MAX_TOKEN_TTL_S).describe('seconds') })
  .meta({ id: 'TokenResponse' });

export const Whoami = z
  .object({
    issuer: z.string().describe("the token's iss"),
    issuer_name: ObjectName,
    subject: z.string(),
    roles: z.array(ObjectName),
    grants: z.array(z.object({ path: z.string(), permissions: z.array(z.enum(ROLE_PERMISSIONS)) })),
    via: z.enum(['jwt', 'exchanged_token']),
  })
  .meta({ id: 'Whoami' });

/** POST /v1/ci/events/{github,gitlab}: what the CI platform's delivery log shows. */
export const CiEventResult = z
  .object({
    outcome: z.enum(['revoked', 'ignored', 'replayed']).describe('revoked: the event ended a run (revoked may still be 0); ignored: it ends nothing; replayed: this delivery was acted on before'),
    revoked: z.int().min(0).describe('how many exchanged tokens were revoked'),
    run: z.string().optional().describe('the run or job ended: github:<repository>:<run_id>:<run_attempt> or gitlab:<project_path>:<job_id>'),
  })
  .meta({ id: 'CiEventResult' });

/** A CI platform's webhook body: read as the platform sends it, only the fields named in the route's description. */
export const CiEventBody = z.looseObject({}).meta({ id: 'CiEventBody' });
