import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { readRootKey, type RootKey } from '../crypto/root-key.js';
import { AuditAnchorRepo, AuditKeysRepo, type AnchorStore } from '../storage/audit-repo.js';
import { PgStorage } from '../storage/postgres.js';
import { WriteBehindAnchor } from './anchor-behind.js';
import { openDatabase, type Db } from '../storage/db.js';
import { holdLock } from '../storage/lock.js';
import { ChainWriter } from './chain.js';
import { AuditKeys } from './keys.js';
import type { AuditEntry } from './trail.js';

/** The server's trail, and the chain admin scripts write beside it. */
export const SERVER_TRAIL = 'audit.jsonl';
export const SCRIPTS_TRAIL = 'audit-scripts.jsonl';

function hasAuditTables(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_anchor'").get() !== undefined;
}

/**
 * Appends one record to the scripts' own chain (audit-scripts.jsonl), never
 * to the server's file: scripts run beside a live server, and one file has
 * one writer. Scripts take turns on a lock file. Returns false when there is
 * nothing to anchor to yet (no database, no root key, schema before 005).
 */
export async function recordScriptRun(config: Config, entry: AuditEntry, sealedRoot?: RootKey): Promise<boolean> {
  if (config.databaseUrl) return recordOnPostgres(config, config.databaseUrl, entry, sealedRoot);
  if (!fs.existsSync(config.dbFile)) return false;
  // A shamir or pkcs11 seal: the script that opened it passes the key (no file holds it).
  const root = sealedRoot ?? readRootKey(config);
  if (!root) return false;
  const db = openDatabase(config.dbFile);
  try {
    if (!hasAuditTables(db)) return false;
    const file = path.join(config.dataDir, SCRIPTS_TRAIL);
    appendLocked(file, 'scripts', new AuditKeys(root, new AuditKeysRepo(db).all()), new AuditAnchorRepo(db), config, entry);
    return true;
  } finally {
    db.close();
  }
}

/** The chain scripts write in this data dir: `scripts`, or `scripts@<replica id>` on a shared database. */
export function scriptsChain(config: Config): string {
  return config.databaseUrl ? `scripts@${config.replicaId}` : 'scripts';
}

function appendLocked(file: string, chain: string, keys: AuditKeys, anchor: AnchorStore, config: Config, entry: AuditEntry): void {
  const lock = holdLock(`${file}.lock`);
  const writer = new ChainWriter(file, chain, keys, anchor, { maxBytes: 64 * 1024 * 1024, fsync: true, maxFiles: config.auditMaxFiles });
  try {
    writer.resume();
    writer.append([{ name: 'nexus-audit', time: new Date().toISOString(), ...entry }]);
  } finally {
    writer.close();
    lock.release();
  }
}

/** On PostgreSQL: the same chain in this data dir, anchored in the shared database under this replica's name. */
async function recordOnPostgres(config: Config, url: string, entry: AuditEntry, sealedRoot?: RootKey): Promise<boolean> {
  const root = sealedRoot ?? readRootKey(config);
  if (!root) return false;
  const pg = new PgStorage(url, { max: 1 });
  try {
    // Nothing to anchor to before the schema has its audit tables (a first nexus-migrate).
    const [t] = (await pg.pool.query<{ t: string | null }>("SELECT to_regclass('audit_anchor')::text AS t")).rows;
    if (!t?.t) return false;
    let failed: unknown = null;
    const anchor = await WriteBehindAnchor.load(pg.auditAnchors, (err) => (failed ??= err));
    appendLocked(path.join(config.dataDir, SCRIPTS_TRAIL), scriptsChain(config), new AuditKeys(root, await pg.auditKeys.all()), anchor, config, entry);
    await anchor.drain();
    if (failed) throw failed;
    return true;
  } finally {
    await pg.close();
  }
}
