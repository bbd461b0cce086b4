import type { Permission } from '../auth/principal.js';
import type { Policy } from '../policy/types.js';
import type { Db } from './db.js';
import type { SqliteGate } from './sqlite-gate.js';
import type { PoliciesRepo } from './storage.js';

export interface PolicyRow {
  name: string;
  spiffe_id: string;
  paths: string;
  permissions: string;
  created_at: string;
  updated_at: string;
}

export function toPolicy(r: PolicyRow): Policy {
  return { ...r, paths: JSON.parse(r.paths) as string[], permissions: JSON.parse(r.permissions) as Permission[] };
}

export class SqlitePoliciesRepo implements PoliciesRepo {
  constructor(
    private readonly db: Db,
    private readonly g: SqliteGate,
  ) {}

  async all(): Promise<Policy[]> {
    await this.g.idle();
    return this.db.prepare<[], PolicyRow>('SELECT * FROM policies ORDER BY name').all().map(toPolicy);
  }

  async get(name: string): Promise<Policy | undefined> {
    await this.g.idle();
    const r = this.db.prepare<[string], PolicyRow>('SELECT * FROM policies WHERE name = ?').get(name);
    return r && toPolicy(r);
  }

  async upsert(p: Omit<Policy, 'created_at' | 'updated_at'>, now: string): Promise<void> {
    await this.g.idle();
    this.db
      .prepare(
        `INSERT INTO policies (name, spiffe_id, paths, permissions, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET spiffe_id = excluded.spiffe_id, paths = excluded.paths,
           permissions = excluded.permissions, updated_at = excluded.updated_at`,
      )
      .run(p.name, p.spiffe_id, JSON.stringify(p.paths), JSON.stringify(p.permissions), now, now);
  }

  async delete(name: string): Promise<boolean> {
    await this.g.idle();
    return this.db.prepare('DELETE FROM policies WHERE name = ?').run(name).changes > 0;
  }
}
