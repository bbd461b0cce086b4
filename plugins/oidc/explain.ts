import { compactVerify, decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { UnauthorizedError } from '../../nexus/errors.js';
import { compileGlob } from '../../nexus/policy/glob.js';
import type { IssuerKeys, IssuerRegistry } from './issuers.js';
import { roleLint } from './presets.js';
import type { BindingVerdict, RoleVerdict, TokenCheck, TokenExplanation } from './role-test-schema.js';
import { claimAt, renderPaths, sameJson } from './roles.js';
import type { ClaimValue, IssuerConfig, RoleConfig } from './types.js';
import { audiences, FORBIDDEN_HEADERS, LEEWAY_S, MAX_TOKEN_BYTES, reasonFor, verifyJwt } from './verify.js';

const show = (v: unknown): string => (v === undefined ? 'absent' : JSON.stringify(v));
const iso = (s: number) => new Date(s * 1000).toISOString();
const ago = (s: number, nowS: number) => (s <= nowS ? `${Math.round(nowS - s)} s ago` : `in ${Math.round(s - nowS)} s`);

/** Decodes the token without trusting it: the checks that need no issuer, and its parts. */
function decode(jwt: string, checks: TokenCheck[]): { header: ProtectedHeaderParameters; claims: JWTPayload } | null {
  const fail = (detail: string) => (checks.push({ check: 'format', ok: false, detail }), null);
  if (jwt.length > MAX_TOKEN_BYTES) return fail(`the token is ${jwt.length} bytes, more than ${MAX_TOKEN_BYTES}`);
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(jwt)) return fail('not a JWS in compact form (three base64url parts)');
  try {
    const parts = { header: decodeProtectedHeader(jwt), claims: decodeJwt(jwt) };
    checks.push({ check: 'format', ok: true, detail: 'JWS compact form' });
    return parts;
  } catch {
    return fail('the header or payload is not base64url JSON');
  }
}

/** The signature, against the issuer's current key set (jose resolves the key as verification does). */
async function signatureCheck(jwt: string, issuer: IssuerKeys, header: ProtectedHeaderParameters): Promise<TokenCheck> {
  const kid = typeof header.kid === 'string' ? header.kid : null;
  try {
    const { key } = await compactVerify(jwt, issuer.getKey, { algorithms: [...issuer.config.algorithms] });
    return { check: 'signature', ok: true, detail: `verified by key ${kid === null ? '(no kid)' : JSON.stringify(kid)}, thumbprint ${await issuer.thumbprintOf(key)}` };
  } catch (err) {
    const reason = reasonFor(err);
    const known = issuer.state().keys;
    const detail: Record<string, string> = {
      unknown_kid: `no key with kid ${show(kid)} in issuer ${issuer.config.name}'s key set (${known} key(s))`,
      bad_signature: `the signature does not verify with issuer ${issuer.config.name}'s key ${show(kid)}`,
      issuer_keys_unavailable: `issuer ${issuer.config.name}'s keys could not be loaded`,
      issuer_keys_stale: `issuer ${issuer.config.name}'s fetched keys are past their stale window (${issuer.config.jwks_stale_s} s) and the IdP does not answer`,
      ambiguous_kid: `several keys in issuer ${issuer.config.name}'s set match kid ${show(kid)}`,
    };
    return { check: 'signature', ok: false, detail: `${reason}: ${detail[reason] ?? 'the signature was not verified'}` };
  }
}

/** The checks that read the claims under the issuer's policy (as verifyJwt applies them, each on its own). */
function claimChecks(cfg: IssuerConfig, header: ProtectedHeaderParameters, c: JWTPayload, nowS: number): TokenCheck[] {
  const out: TokenCheck[] = [];
  const add = (check: string, ok: boolean, detail: string) => out.push({ check, ok, detail });
  const aud = audiences(c);
  add('aud', aud.some((a) => cfg.audiences.includes(a)), `aud ${show(c.aud)}; issuer ${cfg.name} accepts ${show(cfg.audiences)}`);
  if (aud.length > 1 && c.azp !== undefined) add('azp', typeof c.azp === 'string' && cfg.audiences.includes(c.azp), `azp ${show(c.azp)} must be one of our audiences when aud lists several`);
  else add('azp', true, c.azp === undefined ? 'absent' : `azp ${show(c.azp)} (one audience: not checked)`);
  if (typeof c.exp !== 'number') add('exp', false, 'missing_exp: absent');
  else add('exp', c.exp > nowS - LEEWAY_S, `${c.exp > nowS - LEEWAY_S ? 'valid' : 'expired'}: exp ${iso(c.exp)} (${ago(c.exp, nowS)}; leeway ${LEEWAY_S} s)`);
  if (typeof c.nbf === 'number') add('nbf', c.nbf <= nowS + LEEWAY_S, `nbf ${iso(c.nbf)} (${ago(c.nbf, nowS)})${c.nbf <= nowS + LEEWAY_S ? '' : ': not_yet_valid'}`);
  else add('nbf', true, 'absent');
  if (typeof c.iat === 'number') {
    const future = c.iat > nowS + LEEWAY_S;
    const old = cfg.max_token_age_s !== null && nowS - c.iat - LEEWAY_S > cfg.max_token_age_s;
    add('iat', !future && !old, `iat ${iso(c.iat)} (${ago(c.iat, nowS)})${future ? ': iat_in_future' : old ? `: too_old (max_token_age_s ${cfg.max_token_age_s})` : ''}`);
  } else add('iat', cfg.max_token_age_s === null, cfg.max_token_age_s === null ? 'absent' : `too_old: absent, and issuer ${cfg.name} sets max_token_age_s`);
  if (typeof c.exp === 'number') {
    const life = c.exp - (typeof c.iat === 'number' ? c.iat : nowS);
    add('lifetime', life <= cfg.max_token_lifetime_s, `exp - ${typeof c.iat === 'number' ? 'iat' : 'now'} = ${Math.round(life)} s; cap max_token_lifetime_s ${cfg.max_token_lifetime_s}`);
  }
  const typ = header.typ;
  add('typ', typ === undefined || (typeof typ === 'string' && ['jwt', ...cfg.allowed_types].includes(typ.toLowerCase())), `typ ${show(typ)}; accepted: JWT${cfg.allowed_types.length ? `, ${cfg.allowed_types.join(', ')}` : ''}`);
  return out;
}

/**
 * Every check the OIDC port applies to a JWT, each with its verdict, and
 * the decision the port itself reaches (verifyJwt, so the two cannot part).
 * The token is never echoed; only its claims are, and they come back to the
 * admin who sent it.
 */
export async function explainToken(jwt: string, registry: IssuerRegistry, nowS = Date.now() / 1000): Promise<{ token: TokenExplanation; claims: JWTPayload | null; issuer: IssuerConfig | null }> {
  const checks: TokenCheck[] = [];
  const decoded = decode(jwt, checks);
  let issuer: IssuerKeys | undefined;
  if (decoded) {
    const { header, claims } = decoded;
    const forbidden = FORBIDDEN_HEADERS.filter((h) => h in header);
    const alg = typeof header.alg === 'string' ? header.alg : undefined;
    checks.push({ check: 'header', ok: forbidden.length === 0, detail: forbidden.length ? `forbidden_header: ${forbidden.join(', ')}` : 'no header that picks its own key' });
    issuer = typeof claims.iss === 'string' ? registry.byIssuerUrl(claims.iss) : undefined;
    checks.push({
      check: 'iss',
      ok: issuer !== undefined,
      detail: issuer ? `${claims.iss} is issuer ${issuer.config.name}` : typeof claims.iss === 'string' ? `unknown_issuer: no issuer is configured for ${show(claims.iss)}` : 'missing_iss',
    });
    if (issuer) {
      const algOk = alg !== undefined && (issuer.config.algorithms as readonly string[]).includes(alg);
      checks.push({ check: 'alg', ok: algOk, detail: `alg ${show(alg)}; issuer ${issuer.config.name} allows ${issuer.config.algorithms.join(', ')}` });
      if (algOk) checks.push(await signatureCheck(jwt, issuer, header));
      checks.push(...claimChecks(issuer.config, header, claims, nowS));
    } else if (alg === undefined || alg === 'none' || /^HS/i.test(alg)) checks.push({ check: 'alg', ok: false, detail: `alg ${show(alg)}: only asymmetric algorithms` });
  }
  let reason: string | null = null;
  try {
    await verifyJwt(jwt, registry, nowS);
  } catch (err) {
    reason = err instanceof UnauthorizedError ? err.reason : 'verification_error';
  }
  // Should a rule ever be missing above, the port's own refusal still shows.
  if (reason !== null && checks.every((c) => c.ok)) checks.push({ check: 'verification', ok: false, detail: reason });
  return { token: { accepted: reason === null, reason, checks }, claims: decoded?.claims ?? null, issuer: issuer?.config ?? null };
}

function bindingWhy(actual: unknown, options: ClaimValue[]): string {
  if (actual === undefined) return 'the token has no such claim';
  if (!options.some((o) => typeof o === typeof actual)) return `is a ${Array.isArray(actual) ? 'list' : typeof actual}; the binding wants a ${typeof options[0]} (the string "1" never equals the number 1)`;
  return `is ${show(actual)}, not ${options.length > 1 ? `any of ${show(options)}` : show(options[0])}`;
}

/** One role against a token's claims: each binding with the claim's value, the paths its templates expand to. */
export function explainRole(role: RoleConfig, issuer: IssuerConfig, claims: Record<string, unknown>): RoleVerdict {
  const bindings: BindingVerdict[] = [];
  for (const [claim, expected] of Object.entries(role.bound_claims)) {
    const actual = claimAt(claims, claim);
    const options = Array.isArray(expected) ? expected : [expected];
    const ok = options.some((o) => sameJson(actual, o));
    bindings.push({ claim, match: 'exact', expected, actual, ok, ...(ok ? {} : { why: bindingWhy(actual, options) }) });
  }
  for (const [claim, pattern] of Object.entries(role.bound_claims_glob)) {
    const actual = claimAt(claims, claim);
    const ok = typeof actual === 'string' && compileGlob(pattern).test(actual);
    const why = actual === undefined ? 'the token has no such claim' : typeof actual !== 'string' ? 'is not a string (globs match strings only)' : `${show(actual)} does not match the glob ${show(pattern)}`;
    bindings.push({ claim, match: 'glob', expected: pattern, actual, ok, ...(ok ? {} : { why }) });
  }
  const grants: RoleVerdict['grants'] = [];
  let why: string | undefined;
  for (const template of role.paths) {
    const [path] = renderPaths({ ...role, paths: [template] }, claims) ?? [];
    if (path === undefined) why ??= `path ${show(template)} cannot be filled in: a claim it names is absent, not a string, or not a valid path segment (the role grants nothing then)`;
    else grants.push({ path, permissions: [...role.permissions] });
  }
  const failed = bindings.filter((b) => !b.ok);
  if (failed.length) why = `${failed.map((b) => `${b.claim} ${b.why}`).join('; ')}`;
  const matched = failed.length === 0 && grants.length === role.paths.length;
  return { role: role.name, matched, bindings, grants, ...(why ? { why } : {}), warnings: roleLint(role, issuer) };
}

/** Every role of the issuer (or only `only`), in name order. */
export function explainRoles(roles: RoleConfig[], issuer: IssuerConfig, claims: Record<string, unknown>, only?: string): RoleVerdict[] {
  return roles.filter((r) => r.issuer === issuer.name && (only === undefined || r.name === only)).map((r) => explainRole(r, issuer, claims));
}

const MAX_REASON = 400;

/**
 * The short reason for the audit record of a token no role matched: each
 * role with its first failing binding and the claim's value (claim values
 * name repositories and branches, never secrets). Never sent to the caller.
 */
export function noRoleReason(verdicts: RoleVerdict[], issuer: string): string {
  if (verdicts.length === 0) return `no_role_matched: issuer ${issuer} has no such role`;
  const parts = verdicts.map((v) => {
    const b = v.bindings.find((x) => !x.ok);
    return b ? `${v.role}: ${b.claim}=${show(b.actual).slice(0, 64)}` : `${v.role}: path_template`;
  });
  const text = `no_role_matched: ${parts.join(', ')}`;
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON - 1)}…` : text;
}
