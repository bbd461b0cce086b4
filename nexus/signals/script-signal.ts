import fs from 'node:fs';
import type { Config } from '../config/index.js';
import { PgStorage } from '../storage/postgres.js';
import { SqliteStorage } from '../storage/sqlite.js';
import type { Storage } from '../storage/storage.js';
import type { Signal } from './types.js';

/**
 * An audit_integrity signal from a script (nexus-audit verify), written
 * straight to signal_events: the script is not the server, so no counter or
 * server log line moves, but GET /v1/signals and `pilot signals` list it on
 * every replica. Best effort: false when there is no database or no table
 * (a schema before migration 012) or it cannot be written.
 */
export async function recordScriptSignal(config: Config, why: string, principal = 'nexus-audit'): Promise<boolean> {
  if (!config.databaseUrl && !fs.existsSync(config.dbFile)) return false;
  let storage: Storage | null = null;
  try {
    storage = config.databaseUrl ? new PgStorage(config.databaseUrl) : SqliteStorage.open(config.dbFile);
    const s: Signal = { signal: 'audit_integrity', port: 'script', principal, address: '', at: new Date().toISOString(), why };
    await storage.signals.addEvents([{ ...s, path: null }]);
    return true;
  } catch {
    return false;
  } finally {
    await storage?.close();
  }
}
