import type { Logger } from '../log.js';
import type { LeaseService } from './leases.js';

/**
 * Revokes leases at their end: a pass every `intervalMs` (expired leases go
 * within about that much of their expiry), the first at start (those that
 * expired while Nexus was down, and rows orphaned by a crash). Several
 * replicas sweep side by side; their claims keep each lease to one of them.
 */
export class LeaseSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly leases: LeaseService,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {}

  /** Starts sweeping; resolves after the first pass. */
  async start(): Promise<void> {
    await this.pass();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.pass().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  /** One pass now (also what a caller uses to hurry the sweeper). */
  pass(): Promise<void> {
    this.running ??= this.leases
      .sweepNow()
      .then(
        () => undefined,
        (err: unknown) => this.log.warn({ err }, 'lease sweep failed; trying again'),
      )
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /**
   * A pass that starts after the caller's change (tokens deleted): one in
   * flight may have read the leases before it, so a new one follows it.
   */
  async sweepAfterChange(): Promise<void> {
    await this.running;
    await this.pass();
  }

  /** Stops after the pass in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
