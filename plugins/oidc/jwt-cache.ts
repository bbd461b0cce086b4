import { createHash } from 'node:crypto';
import { UnauthorizedError } from '../../nexus/errors.js';
import { Lru } from '../../nexus/lru.js';
import type { IssuerKeys, IssuerRegistry } from './issuers.js';
import { everyUseRefusal, LEEWAY_S, verifyJwt, type VerifiedToken } from './verify.js';

export interface JwtCacheOptions {
  /** Longest time a verification is reused, whatever the token's own limits (s). */
  capS: number;
  /** Entries kept (least recently used go first). */
  max: number;
}

export const DEFAULT_JWT_CACHE: JwtCacheOptions = { capS: 60, max: 10_000 };

interface Entry {
  verified: VerifiedToken;
  /** The issuer's key set the signature was checked against. */
  keysVersion: number;
  untilS: number;
}

/**
 * Verified JWTs by a hash of the token (the token itself is not kept), so a
 * CI job repeating one JWT pays for the signature once. An entry is only
 * trusted while its issuer is the same configuration object with the same
 * key set; policy and every clock-dependent check run again on each use.
 * Only successful verifications are stored.
 */
export class VerifiedJwtCache {
  private readonly entries: Lru<string, Entry>;

  constructor(
    private readonly registry: IssuerRegistry,
    private readonly opts: JwtCacheOptions = DEFAULT_JWT_CACHE,
  ) {
    this.entries = new Lru(opts.max);
  }

  get size(): number {
    return this.entries.size;
  }

  async verify(token: string, nowS = Date.now() / 1000): Promise<VerifiedToken> {
    const key = createHash('sha256').update(token).digest('base64');
    const hit = this.entries.get(key);
    if (hit) {
      const issuer = hit.verified.issuer;
      if (this.current(issuer, hit.keysVersion) && nowS < hit.untilS) {
        const why = everyUseRefusal(issuer.config, hit.verified.claims, hit.verified.header, nowS);
        if (!why) return hit.verified;
        this.entries.delete(key);
        throw new UnauthorizedError(why);
      }
      this.entries.delete(key);
    }
    // A configuration or key change while this verification was under way
    // could make it stale before it is stored: then it is used once, not kept.
    const generation = this.registry.generation();
    const verified = await verifyJwt(token, this.registry, nowS);
    if (this.registry.generation() === generation) {
      this.entries.set(key, { verified, keysVersion: verified.issuer.keysVersion, untilS: this.until(verified, nowS) });
    }
    return verified;
  }

  /**
   * Invalidation hook: forget the verifications of one issuer (by URL) or of
   * all. Local changes are caught without it (entries name their issuer's
   * configuration object and key set); another replica's change calls it.
   */
  clear(issuerUrl?: string): void {
    this.entries.clear(issuerUrl === undefined ? undefined : (e) => e.verified.issuer.config.issuer === issuerUrl);
  }

  private current(issuer: IssuerKeys, keysVersion: number): boolean {
    return this.registry.byIssuerUrl(issuer.config.issuer) === issuer && issuer.keysVersion === keysVersion;
  }

  /** The earliest of exp, the issuer's max age and the cap (leeway as at verification). */
  private until(v: VerifiedToken, nowS: number): number {
    const { exp, iat } = v.claims;
    const maxAge = v.issuer.config.max_token_age_s;
    return Math.min(
      nowS + this.opts.capS,
      typeof exp === 'number' ? exp + LEEWAY_S : nowS,
      maxAge && typeof iat === 'number' ? iat + maxAge + LEEWAY_S : Infinity,
    );
  }
}
