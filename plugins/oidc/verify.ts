import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { UnauthorizedError } from '../../nexus/errors.js';
import type { IssuerKeys, IssuerRegistry } from './issuers.js';
import type { IssuerConfig } from './types.js';

export const MAX_TOKEN_BYTES = 16 * 1024;
export const LEEWAY_S = 60;

/**
 * Headers that would let a token pick its own key or change the rules (RFC 8725).
 * Thumbprints (x5t, x5t#S256) are not among them: they carry no key, keys come
 * only from the issuer's JWKS, and GitHub Actions puts x5t on every token.
 */
export const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'];

/** The protected header fields policy looks at (the rest was refused or only served key lookup). */
export interface TokenHeader {
  alg: string;
  typ?: string;
}

/**
 * The issuer key that verified a JWT. The thumbprint (RFC 7638, SHA-256) is
 * its identity: an IdP may reuse a kid for new key material. The kid is kept
 * for people reading the row.
 */
export interface SigningKey {
  kid: string | null;
  thumbprint: string;
}

export interface VerifiedToken {
  issuer: IssuerKeys;
  header: TokenHeader;
  claims: JWTPayload;
  key: SigningKey;
}

export function audiences(claims: JWTPayload): string[] {
  return typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === 'string') : [];
}

/**
 * The checks that depend on the issuer's current configuration. They run at
 * verification and again on every use of a token exchanged for this JWT
 * (with `nowS` the time it was exchanged), so narrowing an issuer bites at
 * once. Returns the refusal reason, or null.
 */
export function policyRefusal(config: IssuerConfig, claims: JWTPayload, header: TokenHeader, nowS: number): string | null {
  if (claims.iss !== config.issuer) return 'wrong_issuer';
  if (!(config.algorithms as readonly string[]).includes(header.alg)) return `alg_not_allowed: ${header.alg}`;
  // RFC 8725 3.11: explicit typing. Access tokens (at+jwt) and other JWT kinds are not ID tokens.
  if (header.typ !== undefined && !['jwt', ...config.allowed_types].includes(header.typ.toLowerCase())) return 'typ_not_allowed';
  const aud = audiences(claims);
  if (!aud.some((a) => config.audiences.includes(a))) return 'wrong_audience';
  // OIDC Core 3.1.3.7: with several audiences, the authorized party must be us.
  if (aud.length > 1 && claims.azp !== undefined && !(typeof claims.azp === 'string' && config.audiences.includes(claims.azp))) return 'azp_not_an_audience';
  // A short lifetime is what makes a leaked CI token expire: cap it, measured from iat (or from now without one).
  if (typeof claims.exp === 'number' && claims.exp - (typeof claims.iat === 'number' ? claims.iat : nowS) > config.max_token_lifetime_s) return 'lifetime_too_long';
  return null;
}

/**
 * The checks that depend on the clock. A verified token is kept by the
 * verified-JWT cache, so these run on every request that presents it, cached
 * or not, with the same leeway jose applies at verification.
 */
export function timeRefusal(config: IssuerConfig, claims: JWTPayload, nowS: number): string | null {
  if (typeof claims.exp !== 'number') return 'missing_exp';
  if (claims.exp <= nowS - LEEWAY_S) return 'expired';
  if (typeof claims.nbf === 'number' && claims.nbf > nowS + LEEWAY_S) return 'not_yet_valid';
  if (typeof claims.iat === 'number' && claims.iat > nowS + LEEWAY_S) return 'iat_in_future';
  if (config.max_token_age_s) {
    if (typeof claims.iat !== 'number' || nowS - claims.iat - LEEWAY_S > config.max_token_age_s) return 'too_old';
  }
  return null;
}

/**
 * Everything that must hold on each use of a verified JWT: the issuer's
 * current policy and the clock. A rule added to token policy belongs here,
 * so that cached tokens obey it too.
 */
export function everyUseRefusal(config: IssuerConfig, claims: JWTPayload, header: TokenHeader, nowS: number): string | null {
  return policyRefusal(config, claims, header, nowS) ?? timeRefusal(config, claims, nowS);
}

function refuse(reason: string): never {
  throw new UnauthorizedError(reason);
}

/**
 * Verifies a CI platform's JWT. Every check happens before any claim is
 * trusted; each refusal carries a precise reason for the audit record, never
 * the token. The caller answers only "not accepted".
 */
export async function verifyJwt(token: string, registry: IssuerRegistry, nowS = Date.now() / 1000): Promise<VerifiedToken> {
  if (token.length > MAX_TOKEN_BYTES) refuse('token_too_large');
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) refuse('malformed: not JWS compact form');
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    refuse('malformed: header or payload is not base64url JSON');
  }
  for (const h of FORBIDDEN_HEADERS) if (h in header) refuse(`forbidden_header: ${h}`);
  if (typeof header.alg !== 'string' || header.alg === 'none') refuse('alg_none');
  if (/^HS/i.test(header.alg)) refuse(`alg_symmetric: ${header.alg}`);
  if (typeof unverified.iss !== 'string') refuse('missing_iss');
  // Key lookup only: jwtVerify checks iss again against the verified payload.
  const issuer = registry.byIssuerUrl(unverified.iss);
  if (!issuer) refuse('unknown_issuer');
  if (!(issuer.config.algorithms as readonly string[]).includes(header.alg)) refuse(`alg_not_allowed: ${header.alg}`);
  if (typeof unverified.iat === 'number' && unverified.iat > nowS + LEEWAY_S) refuse('iat_in_future');
  let payload: JWTPayload;
  let key: SigningKey;
  try {
    const verified = await jwtVerify(token, issuer.getKey, {
      issuer: issuer.config.issuer,
      audience: issuer.config.audiences,
      algorithms: issuer.config.algorithms,
      clockTolerance: LEEWAY_S,
      currentDate: new Date(nowS * 1000),
      requiredClaims: ['exp', 'aud', 'iss'],
      ...(issuer.config.max_token_age_s ? { maxTokenAge: issuer.config.max_token_age_s } : {}),
    });
    payload = verified.payload;
    key = { kid: typeof header.kid === 'string' ? header.kid : null, thumbprint: await issuer.thumbprintOf(verified.key) };
  } catch (err) {
    refuse(reasonFor(err));
  }
  if (header.typ !== undefined && typeof header.typ !== 'string') refuse('typ_not_allowed');
  const verifiedHeader: TokenHeader = { alg: header.alg, ...(typeof header.typ === 'string' ? { typ: header.typ } : {}) };
  const why = everyUseRefusal(issuer.config, payload, verifiedHeader, nowS);
  if (why) refuse(why);
  return { issuer, header: verifiedHeader, claims: payload, key };
}

/** The refusal reason of a jose error, as the audit record writes it. */
export function reasonFor(err: unknown): string {
  // jose reports a max-age failure as expired with claim iat.
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? 'too_old' : 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    const map: Record<string, string> = { nbf: 'not_yet_valid', aud: 'wrong_audience', iss: 'wrong_issuer', iat: 'too_old', exp: 'missing_exp' };
    return map[err.claim] ?? `claim_${err.claim}`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_kid';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'ambiguous_kid';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed';
  if ((err as { code?: string }).code === 'ERR_JWKS_UNAVAILABLE') return 'issuer_keys_unavailable';
  if ((err as { code?: string }).code === 'ERR_JWKS_STALE') return 'issuer_keys_stale';
  if (err instanceof errors.JOSEError) return `invalid: ${err.code}`;
  return 'verification_error';
}
