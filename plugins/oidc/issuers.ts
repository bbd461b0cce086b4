import * as client from 'openid-client';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters, type KeyObject } from 'jose';
import type { Logger } from '../../nexus/log.js';
import { isLoopbackUrl } from './net.js';
import type { IssuerConfig } from './types.js';

/** Key-source timings (contract: new keys within 60 s; unknown kids refetch at most every 30 s). */
export interface KeyTimings {
  maxAgeMs: number;
  cooldownMs: number;
  timeoutMs: number;
}

export const DEFAULT_TIMINGS: KeyTimings = { maxAgeMs: 60_000, cooldownMs: 30_000, timeoutMs: 5_000 };

const MAX_JWKS_BYTES = 512 * 1024;

type KeyGetter = ReturnType<typeof createLocalJWKSet>;

/** RFC 7638 SHA-256 thumbprints of a key set's members (one that has none, being unusable, is left out). */
async function thumbprintsOf(jwks: JSONWebKeySet): Promise<Set<string>> {
  const all = await Promise.all(jwks.keys.map((k) => calculateJwkThumbprint(k as JWK, 'sha256').catch(() => null)));
  return new Set(all.filter((t): t is string => t !== null));
}

/** Why a network error happened, in words: Node's fetch hides it in `cause`. */
function networkReason(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'no answer in time';
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unknown host';
  return e.cause?.message ?? e.message;
}

/**
 * The issuer's jwks_uri, by OIDC discovery. The discovered `issuer` must be
 * the configured one exactly (openid-client checks this too; the contract
 * makes it ours to guarantee).
 */
export async function discoverJwksUri(issuer: string, timeoutMs: number): Promise<string> {
  const url = new URL(issuer);
  let meta: client.ServerMetadata;
  try {
    const cfg = await client.discovery(url, 'nexus', undefined, undefined, {
      execute: url.protocol === 'http:' && isLoopbackUrl(url) ? [client.allowInsecureRequests] : [],
      timeout: Math.ceil(timeoutMs / 1000),
    });
    meta = cfg.serverMetadata();
  } catch (err) {
    const e = err as Error & { code?: string; cause?: { attribute?: string; body?: { issuer?: unknown } } };
    if (e.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && e.cause?.attribute === 'issuer') throw new Error(`discovered issuer ${String(e.cause.body?.issuer)} is not ${issuer}`);
    // openid-client's own refusals (a status, a bad document) say what is wrong; a fetch failure says only "fetch failed".
    const why = e instanceof TypeError || e.name === 'TimeoutError' || e.name === 'AbortError' ? networkReason(e) : e.message;
    throw new Error(`cannot fetch the discovery document of ${issuer}: ${why}`);
  }
  if (meta.issuer !== issuer) throw new Error(`discovered issuer ${meta.issuer} is not ${issuer}`);
  if (!meta.jwks_uri) throw new Error(`the discovery document of ${issuer} has no jwks_uri`);
  const jwks = new URL(meta.jwks_uri);
  if (jwks.protocol !== 'https:' && !(jwks.protocol === 'http:' && isLoopbackUrl(jwks))) throw new Error(`the discovered jwks_uri ${meta.jwks_uri} is not https`);
  return meta.jwks_uri;
}

/** One JWKS fetch: its text (to tell a changed set) and the parsed set. */
export async function fetchJwks(uri: string, timeoutMs: number): Promise<{ text: string; jwks: JSONWebKeySet }> {
  let res: Response;
  try {
    res = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { accept: 'application/json' } });
  } catch (err) {
    throw new Error(`cannot fetch the JWKS at ${uri}: ${networkReason(err)}`);
  }
  if (!res.ok) throw new Error(`the JWKS at ${uri} answered HTTP ${res.status}`);
  if (Number(res.headers.get('content-length') ?? 0) > MAX_JWKS_BYTES) throw new Error(`the JWKS at ${uri} is too large`);
  const text = await res.text();
  if (text.length > MAX_JWKS_BYTES) throw new Error(`the JWKS at ${uri} is too large`);
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(text) as JSONWebKeySet;
  } catch {
    throw new Error(`the JWKS at ${uri} is not JSON`);
  }
  if (!jwks || !Array.isArray(jwks.keys)) throw new Error(`the JWKS at ${uri} has no keys array`);
  return { text, jwks };
}

/**
 * One issuer's signing keys. Keys are refreshed when older than maxAge, and
 * on an unknown kid at most once per cooldown; a failed refresh keeps the
 * last good keys, so an IdP outage does not stop tokens signed by known keys.
 */
export class IssuerKeys {
  private keys: KeyGetter | null = null;
  private fetchedAt = 0;
  private keyCount = 0;
  private lastError: string | null = null;
  private lastAttempt = -Infinity;
  private inflight: Promise<void> | null = null;
  private jwksUri: string | null;
  private jwksText: string | null = null;
  private readonly thumbprintCache = new WeakMap<CryptoKey | KeyObject, string>();
  fetches = 0;
  /** Moves when the fetched key set differs from the last one (verified-JWT cache entries of older keys are stale). */
  keysVersion = 0;
  /**
   * The thumbprints of the last key set fetched, replaced (never changed in
   * place) when the set changes; null until a fetch has succeeded. An
   * exchanged token is honoured only while this holds its signing key.
   */
  thumbprints: ReadonlySet<string> | null;

  constructor(
    readonly config: IssuerConfig,
    private readonly log: Logger,
    private readonly timings: KeyTimings,
    private readonly onFetch?: (issuer: string, ok: boolean) => void,
    /** The key set of the same key source under its previous configuration, until this one fetches its own. */
    previous: ReadonlySet<string> | null = null,
  ) {
    this.jwksUri = config.jwks_uri;
    this.thumbprints = previous;
  }

  loaded(): boolean {
    return this.keys !== null;
  }

  /** Discovery (once) and a JWKS fetch; failures are logged and keep what we had. */
  private refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.lastAttempt = Date.now();
      try {
        this.jwksUri ??= await discoverJwksUri(this.config.issuer, this.timings.timeoutMs);
        const { text, jwks } = await fetchJwks(this.jwksUri, this.timings.timeoutMs);
        const keys = createLocalJWKSet(jwks);
        if (text !== this.jwksText) {
          const thumbprints = await thumbprintsOf(jwks);
          this.logChange(thumbprints);
          this.thumbprints = thumbprints;
          this.keysVersion++;
        }
        this.keys = keys;
        this.keyCount = jwks.keys.length;
        this.jwksText = text;
        this.fetchedAt = Date.now();
        this.lastError = null;
        this.fetches++;
        this.onFetch?.(this.config.name, true);
      } catch (err) {
        this.lastError = (err as Error).message;
        this.onFetch?.(this.config.name, false);
        this.log.warn({ issuer: this.config.name, err: { message: (err as Error).message } }, 'could not refresh issuer keys; keeping the previous ones');
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /** For /readyz details: the key set held now, when it was fetched, and why the last attempt failed (if it did). */
  state(): { keys: number; fetched_at: string | null; error?: string } {
    return { keys: this.keyCount, fetched_at: this.fetchedAt ? new Date(this.fetchedAt).toISOString() : null, ...(this.lastError === null ? {} : { error: this.lastError }) };
  }

  /** Only a set that was fetched says a key is gone; a failed fetch never gets here. */
  private logChange(next: ReadonlySet<string>): void {
    const removed = this.thumbprints ? [...this.thumbprints].filter((t) => !next.has(t)) : [];
    const added = this.thumbprints ? [...next].filter((t) => !this.thumbprints!.has(t)) : [...next];
    if (removed.length > 0) {
      this.log.warn({ issuer: this.config.name, removed, added }, 'issuer key set no longer holds some signing keys; tokens exchanged from JWTs they signed are refused');
    } else if (added.length > 0) this.log.info({ issuer: this.config.name, added }, 'issuer key set changed');
  }

  /** Warm the cache at start; never throws. */
  async preload(): Promise<void> {
    await this.refresh();
  }

  /** A refresh in the background when the keys are older than maxAge (and the cooldown allows); never waits. */
  private refreshIfStale(now: number): void {
    if (!this.inflight && now - this.fetchedAt > this.timings.maxAgeMs && now - this.lastAttempt >= this.timings.cooldownMs) void this.refresh(); // refresh() never rejects
  }

  /**
   * The current key set's thumbprints, for a token whose JWT is gone. Using
   * it counts as using the keys: when they are stale, a refresh starts in
   * the background, so a key the IdP dropped is seen even by traffic that
   * presents exchanged tokens only.
   */
  currentThumbprints(now = Date.now()): ReadonlySet<string> | null {
    this.refreshIfStale(now);
    return this.thumbprints;
  }

  /** RFC 7638 SHA-256 thumbprint of a key this issuer's set gave jose (they are imported extractable). */
  async thumbprintOf(key: CryptoKey | KeyObject): Promise<string> {
    let t = this.thumbprintCache.get(key);
    if (t === undefined) {
      t = await calculateJwkThumbprint(await exportJWK(key), 'sha256');
      this.thumbprintCache.set(key, t);
    }
    return t;
  }

  /**
   * A jose key resolver for jwtVerify. Known kids are answered from the
   * cached keys at once, whatever fetch is under way: a slow or hanging IdP
   * never delays valid tokens. Only a first load or an unknown kid waits for
   * a fetch, and no longer than its timeout.
   */
  getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const now = Date.now();
    if (!this.keys) {
      // A fetch already under way (start-up preload, another request) is awaited, never duplicated.
      if (this.inflight) await this.inflight;
      else if (now - this.lastAttempt >= Math.min(this.timings.cooldownMs, 5000)) await this.refresh();
      if (!this.keys) throw Object.assign(new Error('issuer keys unavailable'), { code: 'ERR_JWKS_UNAVAILABLE' });
    } else this.refreshIfStale(now);
    try {
      return await this.keys!(header, token);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      // An unknown kid may be a freshly rotated key: wait for the fetch under
      // way, or start one, but at most once per cooldown.
      if (this.inflight) await this.inflight;
      else if (Date.now() - this.lastAttempt >= this.timings.cooldownMs) await this.refresh();
      else throw err;
      return this.keys!(header, token);
    }
  };
}

/** Every configured issuer's keys, rebuilt when issuers change. */
export class IssuerRegistry {
  private byUrl = new Map<string, IssuerKeys>();
  private named = new Map<string, IssuerKeys>();
  private syncs = 0;

  constructor(
    private readonly log: Logger,
    private readonly timings: KeyTimings = DEFAULT_TIMINGS,
    private readonly onFetch?: (issuer: string, ok: boolean) => void,
  ) {}

  /** Replace the set; keeps the key cache of issuers whose config is unchanged. */
  sync(configs: IssuerConfig[]): IssuerKeys[] {
    const next = new Map<string, IssuerKeys>();
    const fresh: IssuerKeys[] = [];
    for (const c of configs) {
      const old = this.byUrl.get(c.issuer);
      if (old && JSON.stringify({ ...old.config, created_at: 0, updated_at: 0 }) === JSON.stringify({ ...c, created_at: 0, updated_at: 0 })) next.set(c.issuer, old);
      else {
        // Same key source: the key set known so far stands until the new instance fetches its own.
        const previous = old && old.config.jwks_uri === c.jwks_uri ? old.thumbprints : null;
        const k = new IssuerKeys(c, this.log, this.timings, this.onFetch, previous);
        next.set(c.issuer, k);
        fresh.push(k);
      }
    }
    this.byUrl = next;
    this.syncs++;
    this.named = new Map([...next.values()].map((k) => [k.config.name, k]));
    return fresh;
  }

  /** By exact `iss`: no normalisation, so a trailing-slash variant is another issuer. */
  byIssuerUrl(iss: string): IssuerKeys | undefined {
    return this.byUrl.get(iss);
  }

  /** By configured name (the current config, as of the last admin change). */
  byName(name: string): IssuerKeys | undefined {
    return this.named.get(name);
  }

  /** Moves whenever any issuer's configuration or keys change. */
  generation(): number {
    let g = this.syncs;
    for (const k of this.byUrl.values()) g += k.keysVersion;
    return g;
  }

  all(): IssuerKeys[] {
    return [...this.byUrl.values()];
  }
}
