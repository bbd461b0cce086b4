import { AsyncLocalStorage } from 'node:async_hooks';
import { UnavailableError } from '../errors.js';
import type { Db } from './db.js';

/**
 * better-sqlite3 is synchronous and has one connection, but the storage
 * interface is async: a transaction's callback awaits between statements, and
 * another request's statements could run in that gap, inside the open
 * transaction (seeing its uncommitted rows, or being rolled back with it).
 * The gate serializes transactions and holds other callers' statements until
 * the open one ends; statements made from inside the transaction (tracked by
 * AsyncLocalStorage) pass straight through.
 */
export class SqliteGate {
  private readonly inside = new AsyncLocalStorage<true>();
  private tail: Promise<void> = Promise.resolve();
  private open = false;

  constructor(private readonly db: Db) {}

  /** True when called from inside the open transaction (a statement made now joins it). */
  within(): boolean {
    return this.open && this.inside.getStore() === true;
  }

  /** Undefined when a statement may run now; otherwise resolves when it may. */
  idle(): Promise<void> | undefined {
    if (!this.open || this.inside.getStore()) return undefined;
    return this.waitIdle();
  }

  private async waitIdle(): Promise<void> {
    while (this.open && !this.inside.getStore()) await this.tail;
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    // A nested call joins the transaction already open.
    if (this.inside.getStore()) return fn();
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((resolve) => (release = resolve));
    await prev;
    this.open = true;
    try {
      return await this.inside.run(true, async () => {
        // IMMEDIATE takes the write lock up front (other processes wait on busy_timeout).
        this.db.exec('BEGIN IMMEDIATE');
        try {
          const out = await fn();
          this.db.exec('COMMIT');
          return out;
        } catch (err) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          // A full disk is an outage, not a bug: 503, nothing committed, and it recovers once space is freed.
          if ((err as { code?: unknown }).code === 'SQLITE_FULL') throw new UnavailableError('the database cannot be written: its disk is full');
          throw err;
        }
      });
    } finally {
      this.open = false;
      // An enabled AsyncLocalStorage installs promise hooks that tax every
      // promise in the process (about a tenth of a secret read's CPU): keep
      // them on only while a transaction is open. run() enables them again.
      this.inside.disable();
      release();
    }
  }
}
