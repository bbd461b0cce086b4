import { Lru } from '../lru.js';
import { BurstWindow } from './windows.js';
import { NO_PRINCIPAL, type ConfigChange, type Observation, type Signal, type SignalName, type SignalPort } from './types.js';

export interface SignalOptions {
  /** A principal's learning window, from its first request. */
  learnMs: number;
  /** denied_burst: this many denials within deniedWindowMs. */
  deniedBurst: number;
  deniedWindowMs: number;
  /** Principals, client addresses and tokens each kept (least recently seen forgotten first). */
  maxPrincipals: number;
  /** Paths kept per principal. */
  maxPathsPerPrincipal: number;
}

/** The learned part of a principal: what outlives a restart (signal_baselines, signal_paths). */
export interface Baseline {
  firstSeen: number;
  /** The most distinct paths read in one minute so far. */
  peak: number;
  paths: string[];
}

/** Where the engine's output goes: the raise (trail, counter, log, list), and the baseline writes and loads, all off the request path. */
export interface SignalSink {
  raise(s: Signal): void;
  /** A principal's baseline moved (firstSeen or peak), or it learned `path`. */
  remember(principal: string, firstSeen: number, peak: number, path?: string): void;
  /** Asks for a principal's stored baseline; the answer comes back through AccessSignals.merge. */
  load(principal: string): void;
}

/** What the audit layer feeds (auditRequests): `requests` null when requests feed no signals (NEXUS_SIGNALS=off). */
export interface RequestSignals {
  engine: Pick<AccessSignals, 'configChanged'>;
  requests: Pick<AccessSignals, 'observe'> | null;
}

/** Reads and lists: what new_path and read_spike watch. */
const READS = new Set(['read', 'list']);
/** Changes to a path: it is touched, hence learned (a job that writes then reads is no new_path), never judged. */
const CHANGES = new Set(['write', 'patch', 'rollback', 'delete', 'undelete', 'destroy', 'purge', 'metadata']);
const MINUTE_MS = 60_000;
/** A token seen from this many addresses is not reported again: one stolen token is not a log flood. */
const MAX_ADDRESSES_PER_TOKEN = 4;

class PrincipalState {
  /** Until its stored baseline has been read: learning, nothing judged. */
  loaded = false;
  paths: Lru<string, true>;
  minute = -1;
  /** Distinct paths read in `minute` (cleared, not replaced, at each new minute). */
  readonly minutePaths = new Set<string>();
  spiked = false;
  denials: BurstWindow | null = null;
  /** Reads seen before the stored baseline arrived: judged, and only then remembered, when it does. */
  unjudged: Array<{ port: Observation['port']; address: string; action: string; path: string }> | null = null;

  constructor(
    public firstSeen: number,
    public peak: number,
    maxPaths: number,
  ) {
    this.paths = new Lru(maxPaths);
  }
}

/**
 * The signal engine: synchronous, bounded, fed with decisions already made.
 * Every map is an LRU with a cap, so a flood of principals, addresses or
 * tokens costs the oldest entries, never memory; a forgotten principal is
 * reloaded from its stored baseline when it comes back.
 */
export class AccessSignals {
  private readonly principals: Lru<string, PrincipalState>;
  private readonly addresses: Lru<string, BurstWindow>;
  private readonly tokens: Lru<string, string[]>;

  constructor(
    readonly opts: SignalOptions,
    private readonly sink: SignalSink,
    private readonly now: () => number = Date.now,
  ) {
    this.principals = new Lru(opts.maxPrincipals);
    this.addresses = new Lru(opts.maxPrincipals);
    this.tokens = new Lru(opts.maxPrincipals);
  }

  /** Entries held (paths: the most any principal holds), for the tests of the cap. */
  sizes(): { principals: number; addresses: number; tokens: number; paths: number } {
    let paths = 0;
    for (const s of this.principals.values()) paths = Math.max(paths, s.paths.size);
    return { principals: this.principals.size, addresses: this.addresses.size, tokens: this.tokens.size, paths };
  }

  observe(o: Observation): void {
    const now = this.now();
    const denied = o.status === 403 || (o.status === 401 && o.port === 'oidc');
    const state = o.principal === undefined ? undefined : this.stateOf(o.principal, now);
    // A token is in use once it authenticated, whatever the request's answer.
    if (o.tokenId !== undefined && state !== undefined) this.tokenUse(o, o.tokenId);
    if (denied) return this.denied(o, state, now);
    // Only what was served is learned: a 404 names no path the principal touched.
    if (o.status >= 400 || state === undefined) return;
    if (o.path === undefined) return;
    if (READS.has(o.action)) this.read(o, state, o.principal!, o.path, now);
    else if (CHANGES.has(o.action) && !state.paths.get(o.path)) {
      state.paths.set(o.path, true);
      this.sink.remember(o.principal!, state.firstSeen, state.peak, o.path);
    }
  }

  /** One committed change to a configuration object: always a signal. The one call for every config writer. */
  configChanged(c: ConfigChange): void {
    this.raise('config_change', c.port, c.principal, c.address, undefined, `${c.kind}.${c.verb} ${c.name}`);
  }

  /** The audit trail broke or could not be written. */
  auditIntegrity(why: string, port: SignalPort = 'server'): void {
    this.raise('audit_integrity', port, undefined, '', undefined, why);
  }

  /** A stored baseline, read off the request path: joined with what this process saw meanwhile. */
  merge(principal: string, stored: Baseline | undefined): void {
    const s = this.principals.get(principal);
    if (!s) return;
    s.loaded = true;
    const unjudged = s.unjudged ?? [];
    s.unjudged = null;
    if (stored) {
      s.firstSeen = Math.min(s.firstSeen, stored.firstSeen);
      s.peak = Math.max(s.peak, stored.peak);
      for (const p of stored.paths) if (s.paths.size < this.opts.maxPathsPerPrincipal && !s.paths.get(p)) s.paths.set(p, true);
    }
    // What it read on this replica before the baseline came, judged now (late, but not lost), then learned.
    const judged = stored !== undefined && this.now() - s.firstSeen >= this.opts.learnMs;
    const known = new Set(stored?.paths);
    for (const u of unjudged) {
      if (known.has(u.path)) continue;
      known.add(u.path);
      this.sink.remember(principal, s.firstSeen, s.peak, u.path);
      if (judged) this.raise('new_path', u.port, principal, u.address, u.path, `first ${u.action} of this path by this principal since ${new Date(s.firstSeen).toISOString()}`);
    }
  }

  /** Baselines read at start: known before the first request, hence judged at once. */
  preload(principal: string, stored: Baseline): void {
    const s = new PrincipalState(stored.firstSeen, stored.peak, this.opts.maxPathsPerPrincipal);
    s.loaded = true;
    for (const p of stored.paths) s.paths.set(p, true);
    this.principals.set(principal, s);
  }

  private stateOf(principal: string, now: number): PrincipalState {
    let s = this.principals.get(principal);
    if (!s) {
      s = new PrincipalState(now, 0, this.opts.maxPathsPerPrincipal);
      this.principals.set(principal, s);
      this.sink.load(principal);
    }
    return s;
  }

  private read(o: Observation, s: PrincipalState, principal: string, path: string, now: number): void {
    const learning = !s.loaded || now - s.firstSeen < this.opts.learnMs;
    const minute = Math.floor(now / MINUTE_MS);
    if (minute !== s.minute) {
      if (s.minute >= 0 && !learning && s.minutePaths.size > s.peak) this.peakTo(principal, s, s.minutePaths.size);
      s.minute = minute;
      s.minutePaths.clear();
      s.spiked = false;
    }
    // The minute's set stops where no threshold can reach (4x the largest peak counted).
    if (s.minutePaths.size <= 4 * this.opts.maxPathsPerPrincipal) s.minutePaths.add(path);
    if (learning) {
      // While learning, the current minute counts at once: a test (or a first deploy) needs no wait for a minute to end.
      if (s.minutePaths.size > s.peak) this.peakTo(principal, s, s.minutePaths.size);
    } else if (!s.spiked && s.minutePaths.size > 4 * Math.min(Math.max(s.peak, 1), this.opts.maxPathsPerPrincipal)) {
      s.spiked = true;
      this.raise('read_spike', o.port, principal, o.address, path, `${s.minutePaths.size} distinct paths this minute; the highest minute before was ${s.peak}`);
    }
    if (s.paths.get(path)) return;
    s.paths.set(path, true);
    // Remembered only once judged: the load may read the database after this process's next batch, and a path
    // this process had already written there would look known to the very judgement it was waiting for.
    if (!s.loaded && (s.unjudged ??= []).length < this.opts.maxPathsPerPrincipal) return void s.unjudged.push({ port: o.port, address: o.address, action: o.action, path });
    this.sink.remember(principal, s.firstSeen, s.peak, path);
    if (!learning) this.raise('new_path', o.port, principal, o.address, path, `first ${o.action} of this path by this principal since ${new Date(s.firstSeen).toISOString()}`);
  }

  private peakTo(principal: string, s: PrincipalState, peak: number): void {
    s.peak = peak;
    this.sink.remember(principal, s.firstSeen, s.peak);
  }

  private denied(o: Observation, s: PrincipalState | undefined, now: number): void {
    let byAddress = this.addresses.get(o.address);
    if (!byAddress) this.addresses.set(o.address, (byAddress = new BurstWindow(this.opts.deniedBurst, this.opts.deniedWindowMs)));
    const fromAddress = byAddress.hit(now);
    let fromPrincipal = false;
    if (s) fromPrincipal = (s.denials ??= new BurstWindow(this.opts.deniedBurst, this.opts.deniedWindowMs)).hit(now);
    if (!fromAddress && !fromPrincipal) return;
    const who = fromPrincipal ? 'this principal' : 'this address';
    this.raise('denied_burst', o.port, o.principal, o.address, undefined, `${this.opts.deniedBurst} denials (${o.status}) within ${this.opts.deniedWindowMs / 1000} s from ${who}`);
  }

  private tokenUse(o: Observation, tokenId: string): void {
    const seen = this.tokens.get(tokenId);
    if (!seen) return this.tokens.set(tokenId, [o.address]);
    if (seen.includes(o.address) || seen.length >= MAX_ADDRESSES_PER_TOKEN) return;
    seen.push(o.address);
    this.raise('token_replay', o.port, o.principal, o.address, o.path, `token ${tokenId.slice(0, 12)} used from ${o.address} after ${seen[0]}`);
  }

  private raise(signal: SignalName, port: SignalPort, principal: string | undefined, address: string, path: string | undefined, why: string): void {
    this.sink.raise({ signal, port, principal: principal ?? NO_PRINCIPAL, address, ...(path !== undefined ? { path } : {}), at: new Date(this.now()).toISOString(), why });
  }
}
