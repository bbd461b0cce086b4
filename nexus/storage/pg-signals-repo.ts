import type { Queryable } from './pg-repos.js';
import type { SignalBaselineRow, SignalEventRow, SignalsRepo } from './storage.js';

// BIGINT comes back as text from pg: numbers again here.
const baseline = (r: { principal: string; first_seen: string | number; peak: number }): SignalBaselineRow => ({ principal: r.principal, first_seen: Number(r.first_seen), peak: Number(r.peak) });

export class PgSignalsRepo implements SignalsRepo {
  constructor(private readonly q: Queryable) {}

  async recent(limit: number): Promise<SignalBaselineRow[]> {
    return (await this.q.query<SignalBaselineRow>('SELECT principal, first_seen, peak FROM signal_baselines ORDER BY updated_at DESC LIMIT $1', [limit])).rows.map(baseline);
  }

  async baselines(principals: string[]): Promise<SignalBaselineRow[]> {
    if (!principals.length) return [];
    return (await this.q.query<SignalBaselineRow>('SELECT principal, first_seen, peak FROM signal_baselines WHERE principal = ANY($1)', [principals])).rows.map(baseline);
  }

  async paths(principals: string[], perPrincipal: number): Promise<Array<{ principal: string; path: string }>> {
    if (!principals.length) return [];
    return (
      await this.q.query<{ principal: string; path: string }>(
        `SELECT principal, path FROM (SELECT principal, path, row_number() OVER (PARTITION BY principal) AS n FROM signal_paths WHERE principal = ANY($1)) t WHERE n <= $2`,
        [principals, perPrincipal],
      )
    ).rows;
  }

  async saveBaselines(rows: SignalBaselineRow[], nowMs: number): Promise<void> {
    if (!rows.length) return;
    await this.q.query(
      `INSERT INTO signal_baselines (principal, first_seen, peak, updated_at)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::integer[]) AS t(principal, first_seen, peak) CROSS JOIN (SELECT $4::bigint) n
       ON CONFLICT (principal) DO UPDATE SET first_seen = least(signal_baselines.first_seen, excluded.first_seen),
         peak = greatest(signal_baselines.peak, excluded.peak), updated_at = excluded.updated_at`,
      [rows.map((r) => r.principal), rows.map((r) => r.first_seen), rows.map((r) => r.peak), nowMs],
    );
  }

  async addPaths(rows: Array<{ principal: string; path: string }>): Promise<void> {
    if (!rows.length) return;
    await this.q.query('INSERT INTO signal_paths (principal, path) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING', [rows.map((r) => r.principal), rows.map((r) => r.path)]);
  }

  async addEvents(rows: SignalEventRow[]): Promise<void> {
    if (!rows.length) return;
    const cols = ['at', 'signal', 'port', 'principal', 'address', 'path', 'why'] as const;
    await this.q.query(
      `INSERT INTO signal_events (at, signal, port, principal, address, path, why) SELECT * FROM unnest(${cols.map((_, i) => `$${i + 1}::text[]`).join(', ')})`,
      cols.map((c) => rows.map((r) => r[c])),
    );
  }

  async events(since: string, limit: number): Promise<SignalEventRow[]> {
    return (await this.q.query<SignalEventRow>('SELECT at, signal, port, principal, address, path, why FROM signal_events WHERE at >= $1 ORDER BY at DESC, id DESC LIMIT $2', [since, limit])).rows.reverse();
  }

  async pruneEvents(before: string): Promise<number> {
    return (await this.q.query('DELETE FROM signal_events WHERE at < $1', [before])).rowCount;
  }
}
