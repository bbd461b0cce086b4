import { claimAt } from './roles.js';
import type { IssuerConfig, RoleConfig } from './types.js';

/**
 * Token buckets, one per key (client IP, tenant). Written by hand
 * rather than with rate-limiter-flexible: its memory limiter counts fixed
 * windows, while the contract asks for a refill rate with a 5x burst and a
 * Retry-After derived from it. Idle buckets are dropped to bound memory.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly capacity: number;

  constructor(
    private readonly ratePerS: number,
    burstFactor = 5,
    private readonly maxKeys = 100_000,
  ) {
    this.capacity = ratePerS * burstFactor;
  }

  private bucket(key: string, now: number): { tokens: number; at: number } {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      b = { tokens: this.capacity, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.capacity, b.tokens + ((now - b.at) / 1000) * this.ratePerS);
      b.at = now;
    }
    return b;
  }

  private evict(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.ratePerS >= this.capacity) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }

  /** Takes one token; returns 0 on success, else the seconds to wait. */
  take(key: string, now = Date.now()): number {
    const b = this.bucket(key, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.ratePerS;
  }
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
