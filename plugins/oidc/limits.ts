import { decodeJwt } from 'jose';
import { claimAt } from './roles.js';
import type { IssuerConfig, RoleConfig } from './types.js';

/**
 * Token buckets, one per key (client IP, tenant). Written by hand
 * rather than with rate-limiter-flexible: its memory limiter counts fixed
 * windows, while the contract asks for a refill rate with a 5x burst and a
 * Retry-After derived from it. Idle buckets are dropped to bound memory.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly ratePerS: number,
    private readonly burstFactor = 5,
    private readonly maxKeys = 100_000,
  ) {}

  private refilled(b: Bucket, now: number): number {
    return Math.min(b.rate * this.burstFactor, b.tokens + ((now - b.at) / 1000) * b.rate);
  }

  private bucket(key: string, rate: number, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      b = { tokens: rate * this.burstFactor, at: now, rate };
      this.buckets.set(key, b);
    } else {
      // A rate changed since (an issuer's rate_limit edited) applies from now on.
      b.tokens = this.refilled(b, now);
      b.rate = rate;
      b.tokens = Math.min(b.tokens, rate * this.burstFactor);
      b.at = now;
    }
    return b;
  }

  private evict(now: number): void {
    for (const [k, b] of this.buckets) {
      if (this.refilled(b, now) >= b.rate * this.burstFactor) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }

  /**
   * Takes one token; returns 0 on success, else the seconds to wait. `rate`:
   * this key's refill rate (an issuer's own), else the one it was made with.
   */
  take(key: string, rate = this.ratePerS, now = Date.now()): number {
    const b = this.bucket(key, rate, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / b.rate;
  }
}

interface Bucket {
  tokens: number;
  at: number;
  rate: number;
}

/**
 * Whose budget a request spends: its tenant, the value of the first of the
 * issuer's tenant claims (repository, project_path, ...) that the first
 * matching role binds. Every job of one repository shares it whatever its
 * ref or workflow (the subject differs per ref), and two repositories behind
 * one NAT'd runner address never share one. Without a matching role (a
 * refused request), the subject stands in.
 */
export function tenantOf(issuer: Pick<IssuerConfig, 'tenant_claims'>, roles: readonly RoleConfig[], matched: readonly string[], claims: Record<string, unknown>): string | undefined {
  const role = roles.find((r) => matched.includes(r.name));
  if (!role) return undefined;
  const bound = issuer.tenant_claims.find((c) => Object.hasOwn(role.bound_claims, c) || Object.hasOwn(role.bound_claims_glob, c));
  if (bound === undefined) return undefined;
  const value = claimAt(claims, bound);
  return value === undefined || value === null || typeof value === 'object' ? undefined : `${bound}=${String(value)}`;
}

/** Retry-After in whole seconds: at least 1, at most 30. */
export function retryAfter(seconds: number): number {
  return Math.min(30, Math.max(1, Math.ceil(seconds)));
}

/**
 * The `iss` a credential claims, unverified: which issuer's failure budget a
 * refused JWT spends. Anything that is not a JWT (an exchanged token, garbage)
 * claims none.
 */
export function claimedIssuer(credential: string | undefined): string | undefined {
  if (credential === undefined) return undefined;
  try {
    const iss = decodeJwt(credential).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}
