import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { readRootKey } from '../crypto/root-key.js';
import { AuditAnchorRepo, AuditKeysRepo } from '../storage/audit-repo.js';
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
export function recordScriptRun(config: Config, entry: AuditEntry): boolean {
  if (!fs.existsSync(config.dbFile)) return false;
  const root = readRootKey(config);
  if (!root) return false;
  const db = openDatabase(config.dbFile);
  try {
    if (!hasAuditTables(db)) return false;
    const file = path.join(config.dataDir, SCRIPTS_TRAIL);
    const lock = holdLock(`${file}.lock`);
    const writer = new ChainWriter(file, 'scripts', new AuditKeys(root, new AuditKeysRepo(db).all()), new AuditAnchorRepo(db), { maxBytes: 64 * 1024 * 1024, fsync: true, maxFiles: config.auditMaxFiles });
    try {
      writer.resume();
      writer.append([{ name: 'nexus-audit', time: new Date().toISOString(), ...entry }]);
    } finally {
      writer.close();
      lock.release();
    }
    return true;
  } finally {
    db.close();
  }
}
