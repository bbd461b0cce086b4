import type { Db } from './db.js';

/** A data-encryption key as stored: wrapped by the root key whose check value is root_kcv. */
export interface DataKeyRow {
  id: string;
  nonce: Buffer;
  wrapped: Buffer;
  root_kcv: string;
  active: 0 | 1;
  created_at: string;
}

export class DataKeysRepo {
  private readonly byId;
  private readonly activeStmt;
  private readonly insertStmt;
  private readonly rewrapStmt;
  private readonly deactivateStmt;

  constructor(private readonly db: Db) {
    this.byId = db.prepare<[string], DataKeyRow>('SELECT * FROM data_keys WHERE id = ?');
    this.activeStmt = db.prepare<[], DataKeyRow>('SELECT * FROM data_keys WHERE active = 1');
    this.insertStmt = db.prepare('INSERT INTO data_keys (id, nonce, wrapped, root_kcv, active, created_at) VALUES (@id, @nonce, @wrapped, @root_kcv, @active, @created_at)');
    this.rewrapStmt = db.prepare('UPDATE data_keys SET nonce = ?, wrapped = ?, root_kcv = ? WHERE id = ?');
    this.deactivateStmt = db.prepare('UPDATE data_keys SET active = 0 WHERE active = 1');
  }

  get(id: string): DataKeyRow | undefined {
    return this.byId.get(id);
  }

  active(): DataKeyRow | undefined {
    return this.activeStmt.get();
  }

  all(): DataKeyRow[] {
    return this.db.prepare<[], DataKeyRow>('SELECT * FROM data_keys ORDER BY created_at, id').all();
  }

  /** Rows not yet wrapped by the root key `kcv`, at most `limit`. */
  notWrappedBy(kcv: string, limit: number): DataKeyRow[] {
    return this.db.prepare<[string, number], DataKeyRow>('SELECT * FROM data_keys WHERE root_kcv <> ? ORDER BY id LIMIT ?').all(kcv, limit);
  }

  insert(row: DataKeyRow): void {
    if (row.active) this.deactivateStmt.run();
    this.insertStmt.run(row);
  }

  /** Makes `id` the one active key (two statements: the unique index is checked row by row). */
  activate(id: string): void {
    this.deactivateStmt.run();
    this.db.prepare('UPDATE data_keys SET active = 1 WHERE id = ?').run(id);
  }

  rewrap(id: string, nonce: Buffer, wrapped: Buffer, kcv: string): void {
    this.rewrapStmt.run(nonce, wrapped, kcv, id);
  }

  /** Deletes data keys no secret version refers to, except the active one. */
  deleteUnused(): number {
    return this.db
      .prepare('DELETE FROM data_keys WHERE active = 0 AND NOT EXISTS (SELECT 1 FROM secret_versions v WHERE v.key_id = data_keys.id)')
      .run().changes;
  }
}
