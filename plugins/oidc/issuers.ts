import * as client from 'openid-client';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters, type KeyObject } from 'jose';
import fs from 'node:fs';
import type { Logger } from '../../nexus/log.js';
import { JwkSet } from './schema.js';
import { isLoopbackUrl } from './net.js';
import type { IssuerConfig } from './types.js';

/** Key-source timings (contract: new keys within 60 s; unknown kids refetch at most every 30 s). */
export interface KeyTimings {
  maxAgeMs: number;
  cooldownMs: number;
  timeoutMs: number;
  /** How often a key-set file's stamp is checked (default DEFAULT_FILE_CHECK_MS). */
  fileCheckMs?: number;
}

export const DEFAULT_TIMINGS: KeyTimings = { maxAgeMs: 60_000, cooldownMs: 30_000, timeoutMs: 5_000 };

/** A key-set file is looked at this often (contract: a change is in effect within 60 s). */
export const DEFAULT_FILE_CHECK_MS = 10_000;

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

/** What an issuer's key source reports after each attempt (metrics). */
export type KeyFetchHook = (issuer: string, ok: boolean) => void;

/**
 * One issuer's signing keys, from up to three sources: a JWK Set held inline,
 * a file (re-read when it changes), and the IdP (jwks_uri, or discovery when
 * no static set is configured). Fetched keys are refreshed when older than
 * maxAge, and on an unknown kid at most once per cooldown; a failed refresh
 * keeps the last good keys for jwks_stale_s, so an IdP outage does not stop
 * tokens signed by known keys, yet does not extend their trust without end.
 */
export class IssuerKeys {
  private keys: KeyGetter | null = null;
  /** The members of the current getter (to tell whether the stale window changed it). */
  private usingFetched = false;
  private fetchedAt = 0;
  private fetchedKeys: JWK[] | null = null;
  /** The inline set and the file's keys (the inline ones first). */
  private staticKeys: JWK[];
  private readonly inlineKeys: JWK[];
  /** The static keys changed since the getter was last built. */
  private staticDirty: boolean;
  private loadedAt = 0;
  private keyCount = 0;
  private lastError: string | null = null;
  private lastAttempt = -Infinity;
  private inflight: Promise<void> | null = null;
  private jwksUri: string | null;
  private jwksText: string | null = null;
  private fileStamp: string | null = null;
  private fileText: string | null = null;
  private fileTimer: NodeJS.Timeout | null = null;
  private fileError: string | null = null;
  /** One warning per outage, one error when its keys run out: not a line per refresh. */
  private failing = false;
  private staleLogged = false;
  private readonly thumbprintCache = new WeakMap<CryptoKey | KeyObject, string>();
  /** Whether the IdP is asked at all: with only a static set and no jwks_uri, never. */
  readonly discovers: boolean;
  fetches = 0;
  /** Moves when the key set differs from the last one (verified-JWT cache entries of older keys are stale). */
  keysVersion = 0;
  /**
   * The thumbprints of the current key set (static keys and the last set
   * fetched), replaced (never changed in place) when the set changes; null
   * until a load has succeeded. An exchanged token is honoured only while
   * this holds its signing key.
   */
  thumbprints: ReadonlySet<string> | null;

  constructor(
    readonly config: IssuerConfig,
    private readonly log: Logger,
    private readonly timings: KeyTimings,
    private readonly onFetch?: KeyFetchHook,
    /** The key set of the same key source under its previous configuration, until this one fetches its own. */
    previous: ReadonlySet<string> | null = null,
  ) {
    this.jwksUri = config.jwks_uri;
    this.discovers = config.jwks_uri !== null || (config.jwks === null && config.jwks_file === null);
    this.thumbprints = previous;
    this.inlineKeys = config.jwks ? [...(config.jwks.keys as JWK[])] : [];
    this.staticKeys = [...this.inlineKeys];
    this.staticDirty = this.inlineKeys.length > 0;
    if (this.inlineKeys.length > 0) this.loadedAt = Date.now();
    if (config.jwks_file) {
      // A file is watched by its stamp: cheap, and it sees an atomic replace (rename) too.
      this.fileTimer = setInterval(() => void this.checkFile(), this.timings.fileCheckMs ?? DEFAULT_FILE_CHECK_MS);
      this.fileTimer.unref();
    }
  }

  loaded(): boolean {
    return this.keys !== null;
  }

  /** Stops watching the key-set file (the registry dropped this configuration). */
  close(): void {
    if (this.fileTimer) clearInterval(this.fileTimer);
    this.fileTimer = null;
  }

  private fetchedFresh(now: number): boolean {
    return this.fetchedKeys !== null && now - this.fetchedAt <= this.config.jwks_stale_s * 1000;
  }

  /**
   * The getter jose asks, over the static keys and the fetched ones still
   * inside the stale window; rebuilt when either changes. `changed`: the set
   * itself changed (not only its freshness).
   */
  private async rebuild(changed: boolean): Promise<void> {
    const now = Date.now();
    const fresh = this.fetchedFresh(now);
    const all = [...this.staticKeys, ...(this.fetchedKeys ?? [])];
    const serving = [...this.staticKeys, ...(fresh ? this.fetchedKeys! : [])];
    if (changed) {
      const thumbprints = await thumbprintsOf({ keys: all as JSONWebKeySet['keys'] });
      this.logChange(thumbprints);
      this.thumbprints = thumbprints;
      this.keysVersion++;
    }
    if (changed || fresh !== this.usingFetched) {
      if (!changed) this.keysVersion++;
      this.usingFetched = fresh;
      this.keys = serving.length > 0 ? createLocalJWKSet({ keys: serving as JSONWebKeySet['keys'] }) : null;
      this.keyCount = serving.length;
    }
  }

  /** The key-set file, when its stamp moved. True when the static keys changed. */
  private async loadStatic(): Promise<boolean> {
    const file = this.config.jwks_file;
    if (!file) return false;
    const st = await fs.promises.stat(file).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot read the key-set file ${file}: ${err.code ?? err.message}`);
    });
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (stamp === this.fileStamp) return false;
    // Taken before it is read: a version that does not parse is reported once, not at every look.
    this.fileStamp = stamp;
    const text = await readKeySetFile(file);
    const keys = text === this.fileText ? null : parseKeySetFile(file, text);
    this.fileError = null;
    this.loadedAt = Date.now();
    if (keys === null) return false;
    this.staticKeys = [...this.inlineKeys, ...keys];
    this.fileText = text;
    return true;
  }

  /** The key-set file re-read if it changed; a failure keeps the keys it last held and is reported once per cause. */
  private async reloadFile(): Promise<'changed' | 'same' | 'failed'> {
    try {
      return (await this.loadStatic()) ? 'changed' : 'same';
    } catch (err) {
      const message = (err as Error).message;
      this.onFetch?.(this.config.name, false);
      this.lastError = message;
      // The same failure again (a file still missing) is not a new line at every look.
      const line = { issuer: this.config.name, err: { message } };
      if (message === this.fileError) this.log.debug(line, 'could not reload the issuer key-set file; keeping the keys it held');
      else this.log.warn(line, 'could not reload the issuer key-set file; keeping the keys it held');
      this.fileError = message;
      return 'failed';
    }
  }

  /** The file timer's look: a changed file is in effect at once. */
  async checkFile(): Promise<void> {
    // A refresh under way reads the file itself.
    if (this.inflight) return;
    const file = await this.reloadFile();
    if (file === 'failed') return;
    this.lastError = null;
    if (file === 'same') return;
    await this.rebuild(true);
    this.log.info({ issuer: this.config.name, file: this.config.jwks_file, keys: this.keyCount }, 'issuer key-set file reloaded');
  }

  /** The key-set file, then discovery (once) and a JWKS fetch; failures are logged and keep what we had. */
  private refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.lastAttempt = Date.now();
      let changed = this.staticDirty;
      this.staticDirty = false;
      try {
        const file = await this.reloadFile();
        if (file === 'changed') changed = true;
        if (!this.discovers) {
          if (file !== 'failed') this.lastError = null;
          return;
        }
        try {
          this.jwksUri ??= await discoverJwksUri(this.config.issuer, this.timings.timeoutMs);
          const { text, jwks } = await fetchJwks(this.jwksUri, this.timings.timeoutMs);
          if (text !== this.jwksText) changed = true;
          this.fetchedKeys = jwks.keys as JWK[];
          this.jwksText = text;
          this.fetchedAt = Date.now();
          this.fetches++;
          if (file !== 'failed') this.lastError = null;
          this.onFetch?.(this.config.name, true);
          if (this.failing) this.log.info({ issuer: this.config.name }, 'issuer keys refreshed again');
          this.failing = false;
          this.staleLogged = false;
        } catch (err) {
          this.lastError = (err as Error).message;
          this.onFetch?.(this.config.name, false);
          // One warning when an outage starts; the retries that follow are debug lines.
          const line = { issuer: this.config.name, err: { message: (err as Error).message }, stale_after_s: this.config.jwks_stale_s };
          if (this.failing) this.log.debug(line, 'could not refresh issuer keys; keeping the previous ones');
          else this.log.warn(line, 'could not refresh issuer keys; keeping the previous ones');
          this.failing = true;
        }
      } finally {
        try {
          await this.rebuild(changed);
        } finally {
          this.inflight = null;
        }
      }
    })();
    return this.inflight;
  }

  /** For /readyz and metrics: the keys serving now, when they were last loaded, and why the last attempt failed (if it did). */
  state(): { keys: number; fetched_at: string | null; error?: string } {
    const at = this.discovers ? this.fetchedAt : this.loadedAt;
    return { keys: this.keyCount, fetched_at: at ? new Date(at).toISOString() : null, ...(this.lastError === null ? {} : { error: this.lastError }) };
  }

  /** Seconds since the keys serving now were fetched (or, with no IdP to ask, loaded); null before that. */
  ageS(now = Date.now()): number | null {
    const at = this.discovers && this.fetchedAt ? this.fetchedAt : this.loadedAt;
    return at ? (now - at) / 1000 : null;
  }

  /** Only a set that was loaded says a key is gone; a failed load never gets here. */
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
    if (!this.discovers) return;
    if (!this.inflight && now - this.fetchedAt > this.timings.maxAgeMs && now - this.lastAttempt >= this.timings.cooldownMs) void this.refresh(); // refresh() never rejects
  }

  /**
   * Past the stale window, fetched keys stop verifying: once, when that
   * happens, an error line says so (the warning came with the first failure).
   */
  private async expireStale(now: number): Promise<void> {
    if (!this.usingFetched || this.fetchedFresh(now)) return;
    // Past the window: one try to fetch (the IdP may be back), then judge.
    if (this.inflight) await this.inflight;
    else if (now - this.lastAttempt >= Math.min(this.timings.cooldownMs, 5000)) await this.refresh();
    if (this.fetchedFresh(Date.now())) return;
    await this.rebuild(false);
    if (!this.staleLogged) {
      this.staleLogged = true;
      this.log.error(
        { issuer: this.config.name, fetched_at: new Date(this.fetchedAt).toISOString(), stale_after_s: this.config.jwks_stale_s },
        'keys fetched from the issuer are past their stale window and the IdP does not answer; tokens they sign are refused until it does',
      );
    }
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
   * never delays valid tokens. Only a first load, an unknown kid or keys
   * past their stale window wait for a fetch, and no longer than its timeout.
   */
  getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const now = Date.now();
    if (!this.keys) {
      // A fetch already under way (start-up preload, another request) is awaited, never duplicated.
      if (this.inflight) await this.inflight;
      else if (now - this.lastAttempt >= Math.min(this.timings.cooldownMs, 5000)) await this.refresh();
      if (!this.keys) throw unavailable(this.fetchedKeys !== null);
    } else {
      await this.expireStale(now);
      this.refreshIfStale(now);
      if (!this.keys) throw unavailable(true);
    }
    try {
      return await this.keys!(header, token);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      // An unknown kid may be a freshly rotated key: wait for the fetch under
      // way, or start one, but at most once per cooldown.
      if (this.inflight) await this.inflight;
      else if (Date.now() - this.lastAttempt >= this.timings.cooldownMs) await this.refresh();
      else throw err;
      if (!this.keys) throw unavailable(true);
      return this.keys(header, token);
    }
  };
}

function unavailable(stale: boolean): Error {
  return stale
    ? Object.assign(new Error('issuer keys are past their stale window'), { code: 'ERR_JWKS_STALE' })
    : Object.assign(new Error('issuer keys unavailable'), { code: 'ERR_JWKS_UNAVAILABLE' });
}

/** The text of a key-set file (bounded: it is read on every change). */
async function readKeySetFile(file: string): Promise<string> {
  let text: string;
  try {
    const h = await fs.promises.open(file, 'r');
    try {
      const buf = Buffer.alloc(MAX_JWKS_BYTES + 1);
      const { bytesRead } = await h.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_JWKS_BYTES) throw new Error(`the key-set file ${file} is too large`);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await h.close();
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw e.code ? new Error(`cannot read the key-set file ${file}: ${e.code}`) : e;
  }
  return text;
}

/**
 * The public keys of a key-set file. Its content is never quoted back: the
 * path may name any file the server can read.
 */
export function parseKeySetFile(file: string, text: string): JWK[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`the key-set file ${file} is not JSON`);
  }
  const parsed = JwkSet.safeParse(raw);
  if (!parsed.success) throw new Error(`the key-set file ${file} is not a JWK Set of public keys`);
  return parsed.data.keys as JWK[];
}

/** Reads and checks a key-set file once (an issuer PUT, before saving). */
export async function loadKeySetFile(file: string): Promise<JWK[]> {
  return parseKeySetFile(file, await readKeySetFile(file));
}

/** Whether two configurations take their keys from the same places. */
export function sameKeySource(a: IssuerConfig, b: IssuerConfig): boolean {
  return a.jwks_uri === b.jwks_uri && a.jwks_file === b.jwks_file && JSON.stringify(a.jwks) === JSON.stringify(b.jwks);
}

/** Every configured issuer's keys, rebuilt when issuers change. */
export class IssuerRegistry {
  private byUrl = new Map<string, IssuerKeys>();
  private named = new Map<string, IssuerKeys>();
  private syncs = 0;

  constructor(
    private readonly log: Logger,
    private readonly timings: KeyTimings = DEFAULT_TIMINGS,
    private readonly onFetch?: KeyFetchHook,
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
        const previous = old && sameKeySource(old.config, c) ? old.thumbprints : null;
        const k = new IssuerKeys(c, this.log, this.timings, this.onFetch, previous);
        next.set(c.issuer, k);
        fresh.push(k);
      }
    }
    for (const old of this.byUrl.values()) if (![...next.values()].includes(old)) old.close();
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
