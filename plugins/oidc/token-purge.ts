import type { Logger } from '../../nexus/log.js';

/** What the purge needs of the store: one bounded batch (OidcStore.purgeExpired). */
export interface PurgeTarget {
  purgeExpired(now: number, limit: number): Promise<number>;
  /** After each round: the space of deleted rows made reusable, where the database does not (OidcStore.reclaim). */
  reclaim?(): Promise<boolean>;
}

export interface PurgeOptions {
  intervalMs: number;
  /** Rows per statement: small enough that one batch never stalls a request behind it. */
  batch: number;
  /** Called after each batch (tests watch the batches go by). */
  onBatch?: (deleted: number) => void;
}

export const PURGE_BATCH = 500;

/**
 * Prunes expired exchanged tokens on a schedule, so the token table holds
 * only live tokens however many logins a storm brings (revoked ones are
 * deleted at revocation). Each round deletes in batches of `batch` rows, each
 * its own short statement, and yields to the event loop between batches, so
 * requests interleave with a large purge instead of waiting behind it. A
 * round never overlaps the next. Keyed on expires_at alone: a token is gone
 * only once no request could accept it.
 */
export class TokenPurge {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;
  private toldReclaim = false;

  constructor(
    private readonly target: PurgeTarget,
    private readonly opts: PurgeOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.round().catch((err: unknown) => this.log.warn({ err }, 'could not purge expired exchanged tokens')), this.opts.intervalMs);
    this.timer.unref();
  }

  /** One round: batches until one comes back short; returns how many rows went. */
  round(now = Date.now()): Promise<number> {
    this.running ??= this.batches(now).finally(() => (this.running = null));
    return this.running;
  }

  private async batches(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      if (this.stopped) return total;
      const n = await this.target.purgeExpired(now, this.opts.batch);
      total += n;
      this.opts.onBatch?.(n);
      if (n < this.opts.batch) break;
      await new Promise((r) => setImmediate(r));
    }
    if (total > 0) this.log.debug({ purged: total }, 'purged expired exchanged tokens');
    // Revoke-self deletes rows between rounds too: reclaimed every round, not only when this one purged.
    if (!this.stopped && (await this.target.reclaim?.()) && !this.toldReclaim) {
      this.toldReclaim = true;
      this.log.info('autovacuum is off for the token table: each purge round vacuums it');
    }
    return total;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => 0);
  }
}
