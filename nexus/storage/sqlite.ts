import { AuditKeysRepo } from './audit-repo.js';
import { EngineRepos } from './engine-base.js';
import { SqliteDataKeysRepo } from './data-keys-repo.js';
import { openDatabase, type Db } from './db.js';
import { SqliteMetaRepo } from './meta-repo.js';
import { SqliteConfigVersionsRepo } from './config-version-repo.js';
import { SqliteConfigSecretsRepo } from './config-secrets-repo.js';
import { SqliteSignalsRepo } from './signals-repo.js';
import { migrateUp, migrationStatus, type Migration, type MigrationStatus } from './migrator.js';
import { SqliteOidcRepo } from './oidc-repo.js';
import { SqliteDbCredsRepo, SqliteLeasesRepo } from './dbcreds-repo.js';
import { SqlitePoliciesRepo } from './policies-repo.js';
import { SqliteSecretsRepo } from './secrets-repo.js';
import { SqliteGate } from './sqlite-gate.js';
import type { AuditKeysStore, Repos, Storage } from './storage.js';
import { ChangeFeed, VersionPoll, type ChangeListener, type ChangeTopic } from './changes.js';

/** The synchronous audit-keys repository behind the gate. */
function gated(gate: SqliteGate, repo: AuditKeysRepo): AuditKeysStore {
  return {
    all: async () => {
      await gate.idle();
      return repo.all();
    },
    put: async (row) => {
      await gate.idle();
      repo.put(row);
    },
  };
}

/** The embedded engine: one SQLite file in the data dir (better-sqlite3). */
export class SqliteStorage extends EngineRepos implements Storage {
  readonly engine = 'sqlite' as const;
  /** One process owns the data dir (its lock): nothing else writes this file while it serves. */
  readonly shared = false;
  private readonly gate: SqliteGate;
  private readonly feed = new ChangeFeed();
  /** One process here, yet a reload that failed after a commit is retried by the poll. */
  private readonly poll = new VersionPoll(() => this.configVersions.all(), this.feed);
  private made: Repos | null = null;

  constructor(
    /** The better-sqlite3 handle (SQLite-only tools: backup, integrity check, tests). */
    readonly db: Db,
    readonly location: string,
  ) {
    super();
    this.gate = new SqliteGate(db);
  }

  // Repositories prepare their statements, so they are made on first use: after the migrations.
  protected repos(): Repos {
    return (this.made ??= {
      secrets: new SqliteSecretsRepo(this.db, this.gate),
      dataKeys: new SqliteDataKeysRepo(this.db, this.gate),
      policies: new SqlitePoliciesRepo(this.db, this.gate),
      meta: new SqliteMetaRepo(this.db, this.gate),
      oidc: new SqliteOidcRepo(this.db, this.gate),
      configVersions: new SqliteConfigVersionsRepo(this.db, this.gate),
      dbcreds: new SqliteDbCredsRepo(this.db, this.gate),
      leases: new SqliteLeasesRepo(this.db, this.gate),
      configSecrets: new SqliteConfigSecretsRepo(this.db, this.gate),
      signals: new SqliteSignalsRepo(this.db, this.gate),
      auditKeys: gated(this.gate, new AuditKeysRepo(this.db)),
    });
  }

  static open(file: string): SqliteStorage {
    return new SqliteStorage(openDatabase(file), file);
  }

  tx<T>(fn: (r: Repos) => Promise<T>): Promise<T> {
    // One connection, one writer: a transaction here is serializable by construction.
    return this.gate.tx(() => fn(this.repos()));
  }

  async publish(topic: ChangeTopic): Promise<void> {
    void this.feed.emit(topic);
  }

  subscribe(fn: ChangeListener): () => void {
    return this.feed.subscribe(fn);
  }

  async changesReady(): Promise<void> {
    await this.poll.start();
  }

  async ping(): Promise<boolean> {
    try {
      return this.db.open && this.db.prepare('SELECT 1 AS ok').get() !== undefined;
    } catch {
      return false;
    }
  }

  async scrub(): Promise<void> {
    await this.gate.idle();
    // Old page images holding erased bytes stay in the WAL until a checkpoint
    // rewrites the db file and truncates the log (secure_delete already zeroes
    // freed cells in the db file). Best effort: a busy reader can delay it,
    // and the next checkpoint completes it.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  async migrationStatus(): Promise<MigrationStatus> {
    return migrationStatus(this.db);
  }

  async migrateUp(): Promise<Migration[]> {
    return migrateUp(this.db);
  }

  async close(): Promise<void> {
    await this.poll.stop();
    this.db.close();
  }
}
