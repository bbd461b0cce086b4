import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { SecretRow, SecretsRepo, VersionRow } from './storage.js';

/** One row kept by triggers (migration 015): count(*) would walk every secret, on the event loop. */
export const COUNT_SQL = 'SELECT n FROM secret_count WHERE id = 1';

/** The secrets tables on SQLite. No crypto here. */
export class SqliteSecretsRepo implements SecretsRepo {
  private readonly s;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
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
      purgeVersions: db.prepare('DELETE FROM secret_versions WHERE path = ?'),
      purgeSecret: db.prepare('DELETE FROM secrets WHERE path = ?'),
      prune: db.prepare('DELETE FROM secret_versions WHERE path = ? AND version <= ?'),
      softDelete: db.prepare('UPDATE secret_versions SET deleted_at = ? WHERE path = ? AND version = ? AND deleted_at IS NULL'),
      undelete: db.prepare('UPDATE secret_versions SET deleted_at = NULL WHERE path = ? AND version = ? AND destroyed_at IS NULL'),
      destroy: db.prepare(
        'UPDATE secret_versions SET key_id = NULL, nonce = NULL, ciphertext = NULL, destroyed_at = ? WHERE path = ? AND version = ? AND destroyed_at IS NULL',
      ),
      list: db.prepare<[string, string, string, number], { path: string }>(
        'SELECT path FROM secrets WHERE path >= ? AND path < ? AND path > ? ORDER BY path LIMIT ?',
      ),
      count: db.prepare<[], { n: number }>(COUNT_SQL),
      // A row value, not `path > ? OR (path = ? AND ...)`: with bound values SQLite planned that OR as a walk from the
      // first row, so each rotation batch re-read every row already done (quadratic in the number of secrets).
      notUnderKey: db.prepare<[string, string, number, number], VersionRow>(
        `SELECT * FROM secret_versions WHERE ciphertext IS NOT NULL AND key_id <> ?
           AND (path, version) > (?, ?) ORDER BY path, version LIMIT ?`,
      ),
      countNotUnderKey: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM secret_versions WHERE ciphertext IS NOT NULL AND key_id <> ?'),
      reencrypt: db.prepare('UPDATE secret_versions SET key_id = ?, nonce = ?, ciphertext = ? WHERE path = ? AND version = ? AND ciphertext IS NOT NULL'),
    };
  }

  async secret(path: string): Promise<SecretRow | undefined> {
    await this.g.idle();
    return this.s.secret.get(path);
  }

  async insertSecret(path: string, version: number, now: string): Promise<void> {
    await this.g.idle();
    this.s.insertSecret.run(path, version, now, now);
  }

  async bumpSecret(path: string, version: number, now: string): Promise<void> {
    await this.g.idle();
    this.s.bumpSecret.run(version, now, path);
  }

  async version(path: string, version: number): Promise<VersionRow | undefined> {
    await this.g.idle();
    return this.s.version.get(path, version);
  }

  async lookup(path: string, version: number | null): Promise<{ current: number; row: VersionRow | null } | undefined> {
    await this.g.idle();
    const r = this.s.lookup.get(version, path);
    if (!r) return undefined;
    const { current_version, ...v } = r;
    return { current: current_version, row: v.version === null || v.version === undefined ? null : (v as VersionRow) };
  }

  async versions(path: string): Promise<VersionRow[]> {
    await this.g.idle();
    return this.s.versions.all(path);
  }

  async insertVersion(row: Omit<VersionRow, 'deleted_at' | 'destroyed_at'>): Promise<void> {
    await this.g.idle();
    this.s.insertVersion.run(row);
  }

  async pruneUpTo(path: string, upTo: number): Promise<void> {
    await this.g.idle();
    this.s.prune.run(path, upTo);
  }

  async purge(path: string): Promise<number> {
    await this.g.idle();
    const n = this.s.purgeVersions.run(path).changes;
    this.s.purgeSecret.run(path);
    return n;
  }

  async softDelete(path: string, version: number, now: string): Promise<boolean> {
    await this.g.idle();
    return this.s.softDelete.run(now, path, version).changes > 0;
  }

  async undelete(path: string, version: number): Promise<boolean> {
    await this.g.idle();
    return this.s.undelete.run(path, version).changes > 0;
  }

  async destroy(path: string, version: number, now: string): Promise<boolean> {
    await this.g.idle();
    return this.s.destroy.run(now, path, version).changes > 0;
  }

  async listPaths(prefix: string, after: string, limit: number): Promise<string[]> {
    await this.g.idle();
    // Path characters are all below 0x7f, so prefix + DEL bounds the range.
    return this.s.list.all(prefix, `${prefix}\x7f`, after, limit).map((r) => r.path);
  }

  async count(): Promise<number> {
    await this.g.idle();
    return this.s.count.get()!.n;
  }

  async notUnderKey(keyId: string, after: { path: string; version: number }, limit: number): Promise<VersionRow[]> {
    await this.g.idle();
    return this.s.notUnderKey.all(keyId, after.path, after.version, limit);
  }

  async countNotUnderKey(keyId: string): Promise<number> {
    await this.g.idle();
    return this.s.countNotUnderKey.get(keyId)!.n;
  }

  async replaceCiphertext(path: string, version: number, keyId: string, nonce: Buffer, ciphertext: Buffer): Promise<void> {
    await this.g.idle();
    this.s.reencrypt.run(keyId, nonce, ciphertext, path, version);
  }
}
