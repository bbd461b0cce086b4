import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { MetaRepo } from './storage.js';

export class SqliteMetaRepo implements MetaRepo {
  private readonly getStmt;
  private readonly setStmt;
  private readonly delStmt;

  constructor(
    db: Db,
    private readonly g: SqliteGate,
  ) {
    this.getStmt = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    this.setStmt = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.delStmt = db.prepare('DELETE FROM meta WHERE key = ?');
  }

  async get(key: string): Promise<string | null> {
    await this.g.idle();
    return this.getStmt.get(key)?.value ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    await this.g.idle();
    this.setStmt.run(key, value);
  }

  async delete(key: string): Promise<void> {
    await this.g.idle();
    this.delStmt.run(key);
  }
}

/** Meta keys used by the crypto layer. */
export const META = {
  rootKcv: 'root_kcv',
  rotationKcv: 'rotation_kcv',
  rotationDataKey: 'rotation_data_key',
} as const;
