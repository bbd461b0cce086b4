import type { AnchorStore, ChainHead } from '../storage/audit-repo.js';
import type { AuditAnchorsStore } from '../storage/storage.js';

/**
 * An anchor kept in memory and written behind to an engine reached
 * asynchronously (PostgreSQL): the chain writer moves its anchor
 * synchronously after each batch. The database lags by at most the writes in
 * flight and `intervalMs`, like the file-side anchor on SQLite lags by its
 * page cache: a trail found ahead of its anchor at start is accepted when its
 * last record's MAC checks (chain.ts). The interval bounds the anchor's
 * writes, whatever the request rate: under a CI storm a batch a turn made
 * one round trip to PostgreSQL for every two requests or so, more than the
 * requests' own statements.
 */
export class WriteBehindAnchor implements AnchorStore {
  private readonly pending = new Map<string, ChainHead>();
  private flushing: Promise<void> | null = null;
  private draining = false;
  /** Ends the wait between writes (a stop). */
  private wake: (() => void) | null = null;

  constructor(
    private readonly heads: Map<string, ChainHead>,
    private readonly store: AuditAnchorsStore,
    private readonly onError: (err: unknown) => void,
    private readonly intervalMs = ANCHOR_INTERVAL_MS,
  ) {}

  static async load(store: AuditAnchorsStore, onError: (err: unknown) => void): Promise<WriteBehindAnchor> {
    return new WriteBehindAnchor(await store.all(), store, onError);
  }

  get(chain: string): ChainHead | null {
    return this.heads.get(chain) ?? null;
  }

  set(chain: string, head: ChainHead): void {
    this.heads.set(chain, head);
    this.pending.set(chain, head);
    this.flushing ??= this.flush();
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = [...this.pending];
      this.pending.clear();
      for (const [chain, head] of batch) {
        try {
          await this.store.set(chain, head);
        } catch (err) {
          this.onError(err);
        }
      }
      // Heads set meanwhile wait out the interval and go as one write (a stop does not wait).
      if (!this.draining && this.intervalMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.intervalMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
    this.flushing = null;
  }

  /** Resolves when every head set so far has been written (or failed), without waiting out the interval. */
  async drain(): Promise<void> {
    this.draining = true;
    this.wake?.();
    try {
      while (this.flushing) await this.flushing;
    } finally {
      this.draining = false;
    }
  }
}

/** How often, at most, a replica writes its anchor to PostgreSQL (ms). */
export const ANCHOR_INTERVAL_MS = 50;
