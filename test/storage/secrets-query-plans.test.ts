import { expect } from 'chai';
import Database from 'better-sqlite3';
import { migrateUp } from '../../nexus/storage/migrator.js';
import { SqliteGate } from '../../nexus/storage/sqlite-gate.js';
import { SqliteSecretsRepo } from '../../nexus/storage/secrets-repo.js';

// A million secrets: every statement the secrets repository runs per request
// (or per rotation batch) must seek by key, never walk the table. The one
// walk allowed is countNotUnderKey: once per rotation, to size its progress.
const WALK_ALLOWED = new Set(['countNotUnderKey']);

describe('secrets repository query plans (SQLite)', () => {
  it('every statement but the one-off rotation count seeks an index instead of scanning', () => {
    const db = new Database(':memory:');
    migrateUp(db);
    const repo = new SqliteSecretsRepo(db, new SqliteGate(db));
    const statements = (repo as unknown as { s: Record<string, Database.Statement> }).s;
    const plans = Object.entries(statements).map(([name, st]) => {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${st.source}`).all(...params(st.source)) as Array<{ detail: string }>).map((r) => r.detail);
      return { name, plan: plan.join('; ') };
    });
    db.close();
    expect(plans.length).to.be.greaterThan(15);
    const scans = plans.filter((p) => /\bSCAN\b/.test(p.plan) && !WALK_ALLOWED.has(p.name));
    expect(scans, JSON.stringify(scans)).to.deep.equal([]);
    // The guard would catch the walk it allows: the check is not vacuous.
    expect(plans.find((p) => p.name === 'countNotUnderKey')!.plan).to.match(/\bSCAN\b/);
  });
});

/** NULL for every parameter, positional or named: a plan does not depend on the values. */
function params(sql: string): unknown[] {
  const named = sql.match(/@\w+/g);
  if (named) return [Object.fromEntries(named.map((n) => [n.slice(1), null]))];
  return new Array((sql.match(/\?/g) ?? []).length).fill(null);
}
