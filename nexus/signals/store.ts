import type { Logger } from '../log.js';
import type { SignalBaselineRow, SignalEventRow, Storage } from '../storage/storage.js';
import type { AccessSignals, Baseline } from './engine.js';
import type { Signal } from './types.js';

/** Queued writes beyond this are dropped (and counted in the log): a database that stays down must not grow memory. */
const MAX_QUEUED = 50_000;
/** A principal first seen here waits this long, at most, for its stored baseline. */
const LOAD_DELAY_MS = 20;

/**
 * The engine's link to the database, off the request path: baseline changes,
 * learned paths and raised signals are queued and written in one transaction
 * per batch; baselines of principals this process had not seen are read in
 * batches too, and merged into the engine when they arrive.
 */
export class BaselineStore {
  private engine: AccessSignals | null = null;
  private baselines = new Map<string, SignalBaselineRow>();
  private paths: Array<{ principal: string; path: string }> = [];
  private events: SignalEventRow[] = [];
  private loads = new Set<string>();
  private dropped = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Infinity;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly storage: Pick<Storage, 'tx' | 'signals'>,
    private readonly log: Logger,
    private readonly flushMs: number,
    private readonly maxPathsPerPrincipal: number,
  ) {}

  attach(engine: AccessSignals): void {
    this.engine = engine;
  }

  /** The most recently active baselines, into the engine before the first request. */
  async preload(limit: number): Promise<number> {
    const rows = await this.storage.signals.recent(limit);
    const stored = await this.read(rows);
    for (const [principal, b] of stored) this.engine!.preload(principal, b);
    return stored.size;
  }

  remember(principal: string, firstSeen: number, peak: number, path?: string): void {
    if (this.full()) return;
    this.baselines.set(principal, { principal, first_seen: firstSeen, peak });
    if (path !== undefined) this.paths.push({ principal, path });
    this.arm(this.flushMs);
  }

  record(s: Signal): void {
    if (this.full()) return;
    this.events.push({ at: s.at, signal: s.signal, port: s.port, principal: s.principal, address: s.address, path: s.path ?? null, why: s.why });
    this.arm(this.flushMs);
  }

  load(principal: string): void {
    if (this.loads.size >= MAX_QUEUED) return;
    this.loads.add(principal);
    this.arm(LOAD_DELAY_MS);
  }

  /** Signals since `since` (ISO), this process's queued ones included. */
  async list(since: string, limit: number): Promise<SignalEventRow[]> {
    await this.flush();
    return this.storage.signals.events(since, limit);
  }

  async prune(before: string): Promise<number> {
    return this.storage.signals.pruneEvents(before);
  }

  /** Writes what is queued; one batch at a time. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.flush();
  }

  private full(): boolean {
    if (this.paths.length + this.events.length < MAX_QUEUED) return false;
    this.dropped++;
    return true;
  }

  private arm(delayMs: number): void {
    if (this.closed) return;
    const due = Date.now() + delayMs;
    if (this.timer && due >= this.timerDue) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerDue = Infinity;
      void this.flush();
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Reads the baselines asked for first: merging one judges the reads that
   * waited for it and queues them to be remembered, so this same batch
   * writes them (the last flush at close included).
   */
  private async flushOnce(): Promise<void> {
    await this.loadAsked();
    await this.writeQueued();
  }

  private async loadAsked(): Promise<void> {
    const loads = [...this.loads];
    this.loads = new Set();
    if (!loads.length || !this.engine) return;
    try {
      const stored = await this.read(await this.storage.signals.baselines(loads));
      for (const p of loads) this.engine.merge(p, stored.get(p));
    } catch (err) {
      // Unjudged until the next try: a principal is never judged on a baseline it may not have.
      for (const p of loads) this.loads.add(p);
      this.log.warn({ err }, 'access signals: could not read baselines; retrying');
      this.arm(this.flushMs * 5);
    }
  }

  private async writeQueued(): Promise<void> {
    const baselines = [...this.baselines.values()];
    const paths = this.paths;
    const events = this.events;
    this.baselines = new Map();
    this.paths = [];
    this.events = [];
    try {
      if (baselines.length || paths.length || events.length) {
        await this.storage.tx(async (r) => {
          await r.signals.saveBaselines(baselines, Date.now());
          await r.signals.addPaths(paths);
          await r.signals.addEvents(events);
        });
      }
      if (this.dropped) {
        this.log.warn({ dropped: this.dropped }, 'access signals: writes dropped while the database was behind');
        this.dropped = 0;
      }
    } catch (err) {
      // Kept for the next batch (bounded by MAX_QUEUED): the baseline is worth a retry.
      for (const b of baselines) if (!this.baselines.has(b.principal)) this.baselines.set(b.principal, b);
      this.paths = paths.concat(this.paths).slice(-MAX_QUEUED);
      this.events = events.concat(this.events).slice(-MAX_QUEUED);
      this.log.warn({ err }, 'access signals: could not write the baseline; retrying');
      this.arm(this.flushMs * 5);
    }
  }

  private async read(rows: SignalBaselineRow[]): Promise<Map<string, Baseline>> {
    const out = new Map<string, Baseline>(rows.map((r) => [r.principal, { firstSeen: r.first_seen, peak: r.peak, paths: [] }]));
    for (const { principal, path } of await this.storage.signals.paths([...out.keys()], this.maxPathsPerPrincipal)) out.get(principal)?.paths.push(path);
    return out;
  }
}
