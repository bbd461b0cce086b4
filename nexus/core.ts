import fs from 'node:fs';
import type { Config } from './config/index.js';
import { Keyring, verifyRootKey } from './crypto/keyring.js';
import { loadRootKey, type RootKey } from './crypto/root-key.js';
import { initSodium } from './crypto/sodium.js';
import { StartupError } from './errors.js';
import type { Logger } from './log.js';
import { ListCursors } from './secrets/cursor.js';
import { SecretsService } from './secrets/service.js';
import { openDatabase, type Db } from './storage/db.js';
import { AuditTrail } from './audit/trail.js';
import { AuditKeys } from './audit/keys.js';
import { AuditAnchorRepo } from './storage/audit-repo.js';
import { WriteBehindAnchor } from './audit/anchor-behind.js';
import { Metrics } from './metrics.js';
import { SignalService } from './signals/service.js';
import path from 'node:path';
import { assertKnownSchema } from './storage/migrator.js';
import { META } from './storage/meta-repo.js';
import { PgStorage } from './storage/postgres.js';
import { SqliteStorage } from './storage/sqlite.js';
import { CiphertextRowCache } from './storage/row-cache.js';
import type { Storage } from './storage/storage.js';

/** The storage core every listener and plugin stands on. */
export interface Core {
  config: Config;
  log: Logger;
  storage: Storage;
  /** The SQLite handle (SQLite engine only: backup, integrity checks, tests); throws on another engine. */
  readonly db: Db;
  rootKey: RootKey;
  keyring: Keyring;
  secrets: SecretsService;
  audit: AuditTrail;
  metrics: Metrics;
  /** Access signals (nexus/signals/): fed by the audit layer, listed by GET /v1/signals. */
  signals: SignalService;
  /** Ciphertext rows of secret reads (null on a shared database, where other replicas write unannounced). */
  rowCache: CiphertextRowCache | null;
  close(): Promise<void>;
}

/**
 * The audit trail, its anchor on a connection of its own: the anchor moves
 * with every batch, and on the main connection (synchronous=FULL) that would
 * be an fsync per batch. Here the anchor is as durable as the trail itself:
 * page cache by default, fsynced with NEXUS_AUDIT_FSYNC=batch.
 */
async function openAuditTrail(config: Config, storage: Storage, rootKey: RootKey, log: Logger): Promise<{ trail: AuditTrail; close(): Promise<void> }> {
  const keys = new AuditKeys(rootKey, await storage.auditKeys.all());
  const file = path.join(config.dataDir, 'audit.jsonl');
  const writer = { fsync: config.auditFsync === 'batch', maxFiles: config.auditMaxFiles };
  if (storage.auditAnchors) {
    // A shared database: each replica anchors its own chain.
    const anchor = await WriteBehindAnchor.load(storage.auditAnchors, (err) => log.warn({ err }, 'could not move the audit anchor'));
    const trail = new AuditTrail({ file, rootKey, keys, anchor, chain: `server@${config.replicaId}`, replica: config.replicaId, log, writer });
    return {
      trail,
      close: async () => {
        trail.close();
        await anchor.drain();
      },
    };
  }
  const anchorDb = openDatabase(config.dbFile);
  try {
    anchorDb.pragma(config.auditFsync === 'batch' ? 'synchronous = FULL' : 'synchronous = NORMAL');
    const trail = new AuditTrail({ file, rootKey, keys, anchor: new AuditAnchorRepo(anchorDb), replica: config.replicaId, log, writer });
    return {
      trail,
      close: async () => {
        trail.close();
        anchorDb.close();
      },
    };
  } catch (err) {
    anchorDb.close();
    throw err;
  }
}

/** The engine the config selects, opened but not yet migrated. */
export function connectStorage(config: Config): Storage {
  return config.databaseUrl ? new PgStorage(config.databaseUrl) : SqliteStorage.open(config.dbFile);
}

/** Opens the storage and schema (applying pending migrations unless told not to). */
export async function openStorage(config: Config, log: Logger): Promise<Storage> {
  const storage = connectStorage(config);
  try {
    const status = await storage.migrationStatus();
    assertKnownSchema(status);
    if (status.pending.length > 0) {
      if (!config.autoMigrate) {
        const names = status.pending.map((m) => `${m.version}_${m.name}`).join(', ');
        throw new StartupError(`the database has ${status.pending.length} pending migration(s) (${names}) and NEXUS_AUTO_MIGRATE=false; run \`nexus-migrate up\` first`);
      }
      for (const m of await storage.migrateUp()) log.info({ migration: m.version, migration_name: m.name }, 'applied migration');
    }
    return storage;
  } catch (err) {
    await storage.close();
    throw err;
  }
}

export function sqliteDb(storage: Storage): Db {
  if (!(storage instanceof SqliteStorage)) throw new Error(`the ${storage.engine} engine has no SQLite handle`);
  return storage.db;
}

/**
 * Opens the storage and schema, then proves the root key fits, before
 * anything can be served. `sealedKey`: the key a shamir or pkcs11 seal gave
 * (no key file is read or made).
 */
export async function openCore(config: Config, log: Logger, sealedKey?: RootKey): Promise<Core> {
  await initSodium();
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const keyMissing = !sealedKey && !config.rootKeyInline && !fs.existsSync(config.rootKeyFile);
  if (keyMissing && !config.databaseUrl && fs.existsSync(config.dbFile)) {
    // A fresh key would only fail the key check: say what is really wrong.
    throw new StartupError(`the root key file ${config.rootKeyFile} is missing but the database ${config.dbFile} exists; restore the key or set NEXUS_ROOT_KEY`);
  }
  // SQLite: the key first (a first start makes it, even if the schema then refuses).
  const localKey = sealedKey ?? (config.databaseUrl ? null : loadRootKey(config, log));
  const opened = await openStorage(config, log);
  // Secret writes send no change notice to other replicas: on a shared database every read goes to it.
  const rowCache = opened.shared ? null : new CiphertextRowCache();
  const storage = rowCache ? rowCache.wrap(opened) : opened;
  try {
    if (keyMissing && config.databaseUrl && (await storage.meta.get(META.rootKcv)) !== null) {
      // A replica joining a shared database must bring the key the others use, not make one.
      throw new StartupError(
        `the root key file ${config.rootKeyFile} is missing but the database ${storage.location} already has a root key; give every replica the same key (NEXUS_ROOT_KEY_FILE or NEXUS_ROOT_KEY)`,
      );
    }
    const rootKey = localKey ?? loadRootKey(config, log);
    try {
      await storage.tx((r) => verifyRootKey(rootKey, r.meta, r.dataKeys));
    } catch (err) {
      if (err instanceof StartupError && fs.existsSync(`${config.rootKeyFile}.new`)) {
        throw new StartupError(`${err.message}; an interrupted nexus-rotate-key left ${config.rootKeyFile}.new: run nexus-rotate-key again to finish`);
      }
      throw err;
    }
    const keyring = new Keyring(rootKey, storage);
    storage.subscribe((topic) => {
      if (topic === 'keys' || topic === 'all') keyring.forget();
      if (topic === 'all') rowCache?.invalidate();
    });
    let count = () => Promise.resolve(0);
    const metrics = new Metrics(() => count());
    const secrets = new SecretsService(storage, keyring, log, { maxVersions: config.maxVersions, cursors: new ListCursors(rootKey.bytes), observe: (op, s) => metrics.storage.observe(op, { op }, s) });
    count = () => secrets.count();
    log.info({ engine: storage.engine, db: storage.location, root_key_source: rootKey.source, root_kcv: rootKey.kcv }, 'storage ready');
    const audit = await openAuditTrail(config, storage, rootKey, log);
    if (audit.trail.chainBreak) metrics.auditBreaks.inc();
    let signals: SignalService;
    try {
      signals = await SignalService.open({ storage, trail: audit.trail, metrics, log }, config);
    } catch (err) {
      await audit.close();
      throw err;
    }
    if (audit.trail.chainBreak) signals.engine.auditIntegrity(`the audit trail did not match its anchor at start: ${audit.trail.chainBreak.detail}`);
    return {
      config,
      log,
      storage,
      get db() {
        return sqliteDb(storage);
      },
      rootKey,
      keyring,
      secrets,
      audit: audit.trail,
      metrics,
      signals,
      rowCache,
      close: async () => {
        await signals.close();
        await audit.close();
        await storage.close();
      },
    };
  } catch (err) {
    await storage.close();
    throw err;
  }
}
