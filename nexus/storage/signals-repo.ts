import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { SignalBaselineRow, SignalEventRow, SignalsRepo } from './storage.js';

export class SqliteSignalsRepo implements SignalsRepo {
  private readonly s;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
    this.s = {
      recent: db.prepare<[number], SignalBaselineRow>('SELECT principal, first_seen, peak FROM signal_baselines ORDER BY updated_at DESC LIMIT ?'),
      baseline: db.prepare<[string], SignalBaselineRow>('SELECT principal, first_seen, peak FROM signal_baselines WHERE principal = ?'),
      paths: db.prepare<[string, number], { path: string }>('SELECT path FROM signal_paths WHERE principal = ? LIMIT ?'),
      save: db.prepare(
        `INSERT INTO signal_baselines (principal, first_seen, peak, updated_at) VALUES (@principal, @first_seen, @peak, @now)
         ON CONFLICT (principal) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen), peak = max(peak, excluded.peak), updated_at = excluded.updated_at`,
      ),
      addPath: db.prepare('INSERT OR IGNORE INTO signal_paths (principal, path) VALUES (?, ?)'),
      addEvent: db.prepare('INSERT INTO signal_events (at, signal, port, principal, address, path, why) VALUES (@at, @signal, @port, @principal, @address, @path, @why)'),
      events: db.prepare<[string, number], SignalEventRow>('SELECT at, signal, port, principal, address, path, why FROM signal_events WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?'),
      prune: db.prepare('DELETE FROM signal_events WHERE at < ?'),
    };
  }

  async recent(limit: number): Promise<SignalBaselineRow[]> {
    await this.g.idle();
    return this.s.recent.all(limit);
  }

  async baselines(principals: string[]): Promise<SignalBaselineRow[]> {
    await this.g.idle();
    return principals.flatMap((p) => this.s.baseline.all(p));
  }

  async paths(principals: string[], perPrincipal: number): Promise<Array<{ principal: string; path: string }>> {
    await this.g.idle();
    return principals.flatMap((principal) => this.s.paths.all(principal, perPrincipal).map(({ path }) => ({ principal, path })));
  }

  async saveBaselines(rows: SignalBaselineRow[], nowMs: number): Promise<void> {
    await this.g.idle();
    for (const r of rows) this.s.save.run({ ...r, now: nowMs });
  }

  async addPaths(rows: Array<{ principal: string; path: string }>): Promise<void> {
    await this.g.idle();
    for (const r of rows) this.s.addPath.run(r.principal, r.path);
  }

  async addEvents(rows: SignalEventRow[]): Promise<void> {
    await this.g.idle();
    for (const r of rows) this.s.addEvent.run(r);
  }

  async events(since: string, limit: number): Promise<SignalEventRow[]> {
    await this.g.idle();
    return this.s.events.all(since, limit).reverse();
  }

  async pruneEvents(before: string): Promise<number> {
    await this.g.idle();
    return this.s.prune.run(before).changes;
  }
}
