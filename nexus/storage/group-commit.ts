import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';

interface Pending {
  op: () => unknown;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Small writes that arrive together, committed together: every write queued
 * in one turn of the event loop runs in one transaction, so one WAL fsync
 * (synchronous=FULL) covers them all, and each caller resolves only once its
 * write is committed. A CI storm makes two such writes a job (the exchanged
 * token, then its revoke-self), and one fsync each, run on the event loop's
 * own thread, was what capped the job rate; grouped, the busier the port, the
 * more writes share an fsync. A write that fails (a constraint) fails alone:
 * the group is rolled back and its writes run again one by one. (Committing
 * with synchronous=NORMAL and fsyncing the WAL on the thread pool instead was
 * measured in the storm bench: more CPU per job and a worse p99, as groups
 * shrink when the event loop never waits.)
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly db: Db,
    private readonly gate: SqliteGate,
  ) {}

  run<T>(op: () => T): Promise<T> {
    // Made inside a transaction, a write is part of it (and that transaction's commit is its fsync).
    if (this.gate.within()) return Promise.resolve().then(op);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    // Never inside another caller's open transaction (it could roll these writes back with its own).
    await this.gate.idle();
    const group = this.queue;
    this.queue = [];
    this.scheduled = false;
    const results: unknown[] = [];
    try {
      this.db.transaction(() => {
        for (const p of group) results.push(p.op());
      })();
    } catch {
      for (const p of group) {
        try {
          p.resolve(p.op());
        } catch (err) {
          p.reject(err);
        }
      }
      return;
    }
    group.forEach((p, i) => p.resolve(results[i]));
  }
}
