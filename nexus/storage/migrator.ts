import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StartupError } from '../errors.js';
import type { Db } from './db.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
/** The same migrations, ported to PostgreSQL: same numbers and names, engine-specific SQL. */
export const PG_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/postgres/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  applied_at: string;
}

export interface MigrationStatus {
  applied: AppliedMigration[];
  pending: Migration[];
  /** Versions recorded in the db that this code does not know (a newer Nexus wrote them). */
  unknown: AppliedMigration[];
}

const FILE = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const f of fs.readdirSync(dir).sort()) {
    const m = FILE.exec(f);
    if (!m) continue;
    const sql = fs.readFileSync(`${dir}/${f}`, 'utf8');
    out.push({ version: Number(m[1]), name: m[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  // Numbers are reserved ahead (parallel work lands out of order), so a gap is
  // allowed; pending migrations are applied in number order whatever came first.
  out.forEach((m, i) => {
    if (i > 0 && m.version === out[i - 1]!.version) throw new Error(`two migrations are numbered ${m.version}`);
  });
  return out;
}

// The bookkeeping table is the one piece of schema not in a migration file:
// it must exist before the first migration can be recorded.
export const SCHEMA_MIGRATIONS_DDL = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`;

export function migrationStatus(db: Db, migrations = loadMigrations()): MigrationStatus {
  db.exec(SCHEMA_MIGRATIONS_DDL);
  return compareMigrations(db.prepare('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version').all() as AppliedMigration[], migrations);
}

/** What the db has applied against what this code knows; a changed checksum refuses. */
export function compareMigrations(applied: AppliedMigration[], migrations: Migration[]): MigrationStatus {
  const known = new Map(migrations.map((m) => [m.version, m]));
  const appliedSet = new Set(applied.map((a) => a.version));
  for (const a of applied) {
    const m = known.get(a.version);
    if (m && m.checksum !== a.checksum) {
      throw new StartupError(`migration ${a.version} (${a.name}) was changed after it was applied; refusing to continue`);
    }
  }
  return {
    applied: applied.filter((a) => known.has(a.version)),
    pending: migrations.filter((m) => !appliedSet.has(m.version)),
    unknown: applied.filter((a) => !known.has(a.version)),
  };
}

export function assertKnownSchema(status: MigrationStatus): void {
  if (status.unknown.length > 0) {
    const newest = status.unknown[status.unknown.length - 1]!;
    throw new StartupError(
      `database schema is newer than this Nexus (it has migration ${newest.version} "${newest.name}", this code knows up to ${status.applied.length + status.pending.length}); upgrade Nexus`,
    );
  }
}

/** Applies pending migrations in order, each in its own transaction. Returns those applied. */
export function migrateUp(db: Db, migrations = loadMigrations()): Migration[] {
  const status = migrationStatus(db, migrations);
  assertKnownSchema(status);
  const record = db.prepare('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
  for (const m of status.pending) {
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, m.checksum, new Date().toISOString());
    }).immediate();
  }
  return status.pending;
}
