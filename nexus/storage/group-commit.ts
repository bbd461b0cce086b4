import fs from 'node:fs';
import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';

interface Pending {
  op: () => unknown;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Small writes that arrive together, committed together, made durable off
 * the event loop's thread. Every write queued in one turn runs in one
 * transaction, committed with synchronous=NORMAL (the WAL frames written, not
 * yet fsynced: tens of µs); the WAL is then fsynced on libuv's thread pool,
 * and only then does each caller hear its write is done: as durable as a
 * synchronous=FULL commit (which fsyncs the same WAL after the same frames;
 * a checkpoint in between has synced them into the database file first), but
 * the fsync, ~0.5 ms a commit here, no longer stops every other request. A CI
 * storm makes two such writes a job (the exchanged token, its revoke-self),
 * and one FULL commit each on the event loop was what capped the job rate.
 * A write that fails (a constraint) fails alone: the group is rolled back and
 * its writes run again one by one.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly synchronous: string;
  private walFd: number | null = null;
  /** Only a WAL can be committed first and fsynced after; any other journal commits as configured. */
  private readonly wal: boolean;

  constructor(
    private readonly db: Db,
    private readonly gate: SqliteGate,
  ) {
    this.synchronous = String(db.pragma('synchronous', { simple: true }));
    this.wal = !db.memory && db.pragma('journal_mode', { simple: true }) === 'wal';
  }

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
    const outcome = new Map<Pending, { ok: true; value: unknown } | { ok: false; err: unknown }>();
    if (this.wal) this.db.pragma('synchronous = NORMAL');
    try {
      this.db.transaction(() => {
        for (const p of group) results.push(p.op());
      })();
      group.forEach((p, i) => outcome.set(p, { ok: true, value: results[i] }));
    } catch {
      for (const p of group) {
        try {
          outcome.set(p, { ok: true, value: p.op() });
        } catch (err) {
          outcome.set(p, { ok: false, err });
        }
      }
    } finally {
      if (this.wal) this.db.pragma(`synchronous = ${this.synchronous}`);
    }
    let synced: unknown = null;
    try {
      if (this.wal) await this.syncWal();
    } catch (err) {
      synced = err;
    }
    for (const p of group) {
      const o = outcome.get(p)!;
      // Committed but not known to be on disk: the caller is told it failed (as a failed FULL commit would).
      if (o.ok && synced === null) p.resolve(o.value);
      else p.reject(o.ok ? synced : o.err);
    }
  }


  /** fdatasync of the WAL on libuv's thread pool, through a descriptor kept open (one open and close a group cost more than the sync's dispatch). */
  private async syncWal(): Promise<void> {
    this.walFd ??= fs.openSync(`${this.db.name}-wal`, 'r');
    const fd = this.walFd;
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Closes the WAL's descriptor (the database is closing). */
  close(): void {
    if (this.walFd !== null) fs.closeSync(this.walFd);
    this.walFd = null;
  }
}
