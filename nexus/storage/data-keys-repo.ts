import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { DataKeyRow, DataKeysRepo } from './storage.js';

export class SqliteDataKeysRepo implements DataKeysRepo {
  private readonly byId;
  private readonly activeStmt;
  private readonly insertStmt;
  private readonly rewrapStmt;
  private readonly deactivateStmt;

  constructor(
    private readonly db: Db,
    private readonly g: SqliteGate,
  ) {
    this.byId = db.prepare<[string], DataKeyRow>('SELECT * FROM data_keys WHERE id = ?');
    this.activeStmt = db.prepare<[], DataKeyRow>('SELECT * FROM data_keys WHERE active = 1');
    this.insertStmt = db.prepare('INSERT INTO data_keys (id, nonce, wrapped, root_kcv, active, created_at) VALUES (@id, @nonce, @wrapped, @root_kcv, @active, @created_at)');
    this.rewrapStmt = db.prepare('UPDATE data_keys SET nonce = ?, wrapped = ?, root_kcv = ? WHERE id = ?');
    this.deactivateStmt = db.prepare('UPDATE data_keys SET active = 0 WHERE active = 1');
  }

  async get(id: string): Promise<DataKeyRow | undefined> {
    await this.g.idle();
    return this.byId.get(id);
  }

  async active(): Promise<DataKeyRow | undefined> {
    await this.g.idle();
    return this.activeStmt.get();
  }

  async all(): Promise<DataKeyRow[]> {
    await this.g.idle();
    return this.db.prepare<[], DataKeyRow>('SELECT * FROM data_keys ORDER BY created_at, id').all();
  }

  async notWrappedBy(kcv: string, limit: number): Promise<DataKeyRow[]> {
    await this.g.idle();
    return this.db.prepare<[string, number], DataKeyRow>('SELECT * FROM data_keys WHERE root_kcv <> ? ORDER BY id LIMIT ?').all(kcv, limit);
  }

  async insert(row: DataKeyRow): Promise<void> {
    await this.g.idle();
    if (row.active) this.deactivateStmt.run();
    this.insertStmt.run(row);
  }

  /** Two statements: the unique index is checked row by row. */
  async activate(id: string): Promise<void> {
    await this.g.idle();
    this.deactivateStmt.run();
    this.db.prepare('UPDATE data_keys SET active = 1 WHERE id = ?').run(id);
  }

  async rewrap(id: string, nonce: Buffer, wrapped: Buffer, kcv: string): Promise<void> {
    await this.g.idle();
    this.rewrapStmt.run(nonce, wrapped, kcv, id);
  }

  async deleteUnused(): Promise<number> {
    await this.g.idle();
    return this.db
      .prepare(
        `DELETE FROM data_keys WHERE active = 0
           AND NOT EXISTS (SELECT 1 FROM secret_versions v WHERE v.key_id = data_keys.id)
           AND NOT EXISTS (SELECT 1 FROM config_secrets c WHERE c.key_id = data_keys.id)`,
      )
      .run().changes;
  }
}
