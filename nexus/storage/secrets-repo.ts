import type { Db } from './db.js';

export interface SecretRow {
  path: string;
  current_version: number;
  created_at: string;
  updated_at: string;
}

export interface VersionRow {
  path: string;
  version: number;
  key_id: string | null;
  nonce: Buffer | null;
  ciphertext: Buffer | null;
  created_at: string;
  deleted_at: string | null;
  destroyed_at: string | null;
}

/** Everything that touches the `secrets` and `secret_versions` tables. No crypto here. */
export class SecretsRepo {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      secret: db.prepare<[string], SecretRow>('SELECT * FROM secrets WHERE path = ?'),
      insertSecret: db.prepare('INSERT INTO secrets (path, current_version, created_at, updated_at) VALUES (?, ?, ?, ?)'),
      bumpSecret: db.prepare('UPDATE secrets SET current_version = ?, updated_at = ? WHERE path = ?'),
      version: db.prepare<[string, number], VersionRow>('SELECT * FROM secret_versions WHERE path = ? AND version = ?'),
      // The read path in one statement: the secret and the wanted (or current) version.
      lookup: db.prepare<[number | null, string], { current_version: number } & Partial<VersionRow>>(
        `SELECT s.current_version, v.* FROM secrets s
           LEFT JOIN secret_versions v ON v.path = s.path AND v.version = coalesce(?, s.current_version)
         WHERE s.path = ?`,
      ),
      versions: db.prepare<[string], VersionRow>('SELECT * FROM secret_versions WHERE path = ? ORDER BY version'),
      insertVersion: db.prepare(
        'INSERT INTO secret_versions (path, version, key_id, nonce, ciphertext, created_at) VALUES (@path, @version, @key_id, @nonce, @ciphertext, @created_at)',
      ),
      prune: db.prepare('DELETE FROM secret_versions WHERE path = ? AND version <= ?'),
      softDelete: db.prepare('UPDATE secret_versions SET deleted_at = ? WHERE path = ? AND version = ? AND deleted_at IS NULL'),
      undelete: db.prepare('UPDATE secret_versions SET deleted_at = NULL WHERE path = ? AND version = ? AND destroyed_at IS NULL'),
      destroy: db.prepare(
        'UPDATE secret_versions SET key_id = NULL, nonce = NULL, ciphertext = NULL, destroyed_at = ? WHERE path = ? AND version = ? AND destroyed_at IS NULL',
      ),
      list: db.prepare<[string, string, string, number], { path: string }>(
        'SELECT path FROM secrets WHERE path >= ? AND path < ? AND path > ? ORDER BY path LIMIT ?',
      ),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM secrets'),
      notUnderKey: db.prepare<[string, string, string, number, number], VersionRow>(
        `SELECT * FROM secret_versions WHERE ciphertext IS NOT NULL AND key_id <> ?
           AND (path > ? OR (path = ? AND version > ?)) ORDER BY path, version LIMIT ?`,
      ),
      reencrypt: db.prepare('UPDATE secret_versions SET key_id = ?, nonce = ?, ciphertext = ? WHERE path = ? AND version = ? AND ciphertext IS NOT NULL'),
    };
  }

  secret(path: string): SecretRow | undefined {
    return this.s.secret.get(path);
  }

  insertSecret(path: string, version: number, now: string): void {
    this.s.insertSecret.run(path, version, now, now);
  }

  bumpSecret(path: string, version: number, now: string): void {
    this.s.bumpSecret.run(version, now, path);
  }

  version(path: string, version: number): VersionRow | undefined {
    return this.s.version.get(path, version);
  }

  /** The secret's current version and the row of `version` (default: current), in one query. */
  lookup(path: string, version: number | null): { current: number; row: VersionRow | null } | undefined {
    const r = this.s.lookup.get(version, path);
    if (!r) return undefined;
    const { current_version, ...v } = r;
    return { current: current_version, row: v.version === null || v.version === undefined ? null : (v as VersionRow) };
  }

  versions(path: string): VersionRow[] {
    return this.s.versions.all(path);
  }

  insertVersion(row: Omit<VersionRow, 'deleted_at' | 'destroyed_at'>): void {
    this.s.insertVersion.run(row);
  }

  /** Removes every version <= `upTo`. */
  pruneUpTo(path: string, upTo: number): void {
    this.s.prune.run(path, upTo);
  }

  softDelete(path: string, version: number, now: string): boolean {
    return this.s.softDelete.run(now, path, version).changes > 0;
  }

  undelete(path: string, version: number): boolean {
    return this.s.undelete.run(path, version).changes > 0;
  }

  destroy(path: string, version: number, now: string): boolean {
    return this.s.destroy.run(now, path, version).changes > 0;
  }

  /** Paths starting with `prefix`, strictly after `after`, in byte order. */
  listPaths(prefix: string, after: string, limit: number): string[] {
    // Path characters are all below 0x7f, so prefix + DEL bounds the range.
    return this.s.list.all(prefix, `${prefix}\x7f`, after, limit).map((r) => r.path);
  }

  count(): number {
    return this.s.count.get()!.n;
  }

  /** Live ciphertexts not under data key `keyId`, after (path, version), in key order. */
  notUnderKey(keyId: string, after: { path: string; version: number }, limit: number): VersionRow[] {
    return this.s.notUnderKey.all(keyId, after.path, after.path, after.version, limit);
  }

  replaceCiphertext(path: string, version: number, keyId: string, nonce: Buffer, ciphertext: Buffer): void {
    this.s.reencrypt.run(keyId, nonce, ciphertext, path, version);
  }

  /** Run `fn` in one IMMEDIATE transaction (takes the write lock up front). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
}
