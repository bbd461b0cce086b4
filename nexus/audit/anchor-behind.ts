import type { AnchorStore, ChainHead } from '../storage/audit-repo.js';
import type { AuditAnchorsStore } from '../storage/storage.js';

/**
 * An anchor kept in memory and written behind to an engine reached
 * asynchronously (PostgreSQL): the chain writer moves its anchor
 * synchronously after each batch. The database lags by at most the writes in
 * flight, like the file-side anchor on SQLite lags by its page cache: a trail
 * found ahead of its anchor at start is accepted when its last record's MAC
 * checks (chain.ts).
 */
export class WriteBehindAnchor implements AnchorStore {
  private readonly pending = new Map<string, ChainHead>();
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly heads: Map<string, ChainHead>,
    private readonly store: AuditAnchorsStore,
    private readonly onError: (err: unknown) => void,
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
    }
    this.flushing = null;
  }

  /** Resolves when every head set so far has been written (or failed). */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }
}
