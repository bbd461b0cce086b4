import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';

export type Db = Database.Database;

/**
 * Opens the one SQLite file. WAL lets readers run beside the writer.
 * synchronous=FULL fsyncs the WAL at every commit: in WAL mode NORMAL only
 * survives a process crash, and may lose the last acknowledged writes on a
 * power cut, which a secrets store must not.
 * secure_delete overwrites freed cells, so a destroyed ciphertext does not
 * linger in free pages.
 */
export function openDatabase(file: string, opts: { readonly?: boolean } = {}): Db {
  if (!opts.readonly) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const isNew = !opts.readonly && !fs.existsSync(file);
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  // SQLite gives the WAL and shm files the db file's mode.
  if (isNew) fs.chmodSync(file, 0o600);
  db.pragma('busy_timeout = 5000');
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
  }
  db.pragma('foreign_keys = ON');
  db.pragma('secure_delete = ON');
  return db;
}

export function integrityCheck(db: Db): string {
  const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  return rows.map((r) => r.integrity_check).join('; ');
}
