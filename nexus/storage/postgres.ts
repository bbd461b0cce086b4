import pg from 'pg';
import { UnavailableError } from '../errors.js';
import { assertKnownSchema, compareMigrations, loadMigrations, PG_MIGRATIONS_DIR, SCHEMA_MIGRATIONS_DDL, type AppliedMigration, type Migration, type MigrationStatus } from './migrator.js';
import { EngineRepos } from './engine-base.js';
import { VersionPoll, type ChangeListener, type ChangeTopic } from './changes.js';
import { CHANNEL, PgChangeFeed } from './pg-changes.js';
import { PgAuditAnchors, pgRepos, type Queryable } from './pg-repos.js';
import type { Repos, Storage } from './storage.js';

/** Any fixed 64-bit number: the advisory lock every Nexus process takes to migrate. */
const MIGRATION_LOCK = 0x4e65787573_01n; // "Nexus" 01
const MAX_TX_ATTEMPTS = 12;

// PostgreSQL says a transaction lost a race (serialization failure, deadlock,
// or a unique key another transaction inserted first): run it again.
const RETRYABLE = new Set(['40001', '40P01', '23505']);
/** For a checked-out client's 'error' event: its next query fails instead. */
const ignore = () => {};

// Codes and messages that mean "the server cannot be reached now", not "the query is wrong".
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '53300']);

export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && (UNAVAILABLE_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Client was closed/i.test(e.message ?? '');
}

function unavailable(err: unknown): never {
  if (isUnavailable(err)) throw new UnavailableError('the database is unavailable');
  throw err;
}

/** int8 (count, ms timestamps) as a JS number: every value Nexus stores fits in 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

function clientQueryable(client: pg.PoolClient): Queryable {
  return {
    query: async <R>(text: string, params?: unknown[]) => {
      const r = await client.query(text, params);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
  };
}

/** The URL for logs: never the password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable)';
  }
}

export interface PgOptions {
  /** Pool size per process. */
  max?: number;
  connectionTimeoutMillis?: number;
}

/**
 * The PostgreSQL engine (`pg`), for several replicas sharing one database.
 * Writes run as SERIALIZABLE transactions and are retried when PostgreSQL
 * reports a lost race, so check-and-set is exact across processes.
 */
export class PgStorage extends EngineRepos implements Storage {
  readonly engine = 'postgres' as const;
  readonly shared = true;
  readonly location: string;
  readonly pool: pg.Pool;
  private readonly q: Queryable;
  private readonly pooled: Repos;
  private readonly feed: PgChangeFeed;
  private readonly poll: VersionPoll;

  constructor(
    readonly url: string,
    opts: PgOptions = {},
  ) {
    super();
    this.location = redactUrl(url);
    this.pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5000, types });
    // An idle client whose server went away emits here; without a listener the process would die.
    this.pool.on('error', () => {});
    this.q = {
      query: async <R>(text: string, params?: unknown[]) => {
        try {
          const r = await this.pool.query(text, params);
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        } catch (err) {
          return unavailable(err);
        }
      },
    };
    this.pooled = pgRepos(this.q);
    this.feed = new PgChangeFeed(url);
    this.poll = new VersionPoll(() => this.pooled.configVersions.all(), this.feed);
  }

  protected repos(): Repos {
    return this.pooled;
  }

  /**
   * NOTIFY after the change committed. A notice lost here (the server just
   * went away, or this process dies before sending it) is covered on the
   * listening side: a replica whose LISTEN connection broke hears 'all' when
   * it is back, and every replica's version poll hears a configuration
   * change within CONFIG_POLL_MS whether or not its notice came.
   */
  async publish(topic: ChangeTopic): Promise<void> {
    try {
      await this.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, topic]);
    } catch {
      /* see above */
    }
  }

  subscribe(fn: ChangeListener): () => void {
    return this.feed.subscribe(fn);
  }

  async changesReady(): Promise<void> {
    await this.feed.ready();
    await this.poll.start();
  }

  /** Audit chain heads, one row per chain and replica. */
  get auditAnchors() {
    return new PgAuditAnchors(this.q);
  }

  private async client(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      return unavailable(err);
    }
  }

  async tx<T>(fn: (r: Repos) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.client();
      // pg-pool listens for errors only on idle clients: a server that goes away
      // while this one is checked out would otherwise crash the process (the
      // next query fails instead, and the transaction is refused as unavailable).
      client.on('error', ignore);
      let broken = false;
      try {
        await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
        const out = await fn(pgRepos(clientQueryable(client)));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        const code = (err as { code?: string }).code;
        if (code && RETRYABLE.has(code)) {
          // Still losing after every attempt: a hot spot, not a broken request; the caller may retry (503).
          if (attempt >= MAX_TX_ATTEMPTS) throw new UnavailableError('the database is busy with conflicting writes; retry');
          // Jittered backoff, so racing replicas do not collide again in step.
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
          continue;
        }
        broken ||= isUnavailable(err);
        return unavailable(err);
      } finally {
        client.removeListener('error', ignore);
        client.release(broken);
      }
    }
  }

  async ping(): Promise<boolean> {
    try {
      await this.q.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A destroyed ciphertext (or a key wrapped by a retired root key) leaves a
   * dead tuple behind its UPDATE; VACUUM removes dead tuples no snapshot can
   * still see, so they are no longer in the table's pages as rows. See README
   * (Running several replicas) for what this does not reach: WAL segments not
   * yet recycled, free space not yet overwritten, base backups.
   */
  async scrub(): Promise<void> {
    await this.q.query('VACUUM secret_versions, data_keys');
  }

  private async applied(q: Queryable): Promise<AppliedMigration[]> {
    await q.query(SCHEMA_MIGRATIONS_DDL);
    return (await q.query<AppliedMigration>('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version')).rows;
  }

  async migrationStatus(): Promise<MigrationStatus> {
    return compareMigrations(await this.applied(this.q), loadMigrations(PG_MIGRATIONS_DIR));
  }

  /**
   * Under a session advisory lock: a second process migrating at the same
   * time waits here, then finds nothing left to do. Each migration and its
   * record commit together (DDL is transactional in PostgreSQL).
   */
  async migrateUp(): Promise<Migration[]> {
    const client = await this.client();
    const q = clientQueryable(client);
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
      try {
        const status = compareMigrations(await this.applied(q), loadMigrations(PG_MIGRATIONS_DIR));
        assertKnownSchema(status);
        for (const m of status.pending) {
          await client.query('BEGIN');
          try {
            await client.query(m.sql);
            await client.query('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)', [m.version, m.name, m.checksum, new Date().toISOString()]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          }
        }
        return status.pending;
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]);
      }
    } catch (err) {
      return unavailable(err);
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.poll.stop();
    await this.feed.close();
    await this.pool.end();
  }
}
