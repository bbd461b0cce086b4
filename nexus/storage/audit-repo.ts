import type { Db } from './db.js';

/** The anchored head of one audit chain. */
export interface ChainHead {
  generation: number;
  count: number;
  mac: string;
  /** Check value of the root key whose audit key made `mac`. */
  kcv: string;
}

interface AnchorRow {
  generation: number;
  count: number;
  mac: string;
  key_kcv: string;
}

/** Where a chain writer keeps its head: read at start, moved after every batch. */
export interface AnchorStore {
  get(chain: string): ChainHead | null;
  set(chain: string, head: ChainHead): void;
}

/** audit_anchor: where each chain's head is kept, outside the trail files. */
export class AuditAnchorRepo implements AnchorStore {
  private readonly getStmt;
  private readonly setStmt;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string], AnchorRow>('SELECT generation, count, mac, key_kcv FROM audit_anchor WHERE chain = ?');
    this.setStmt = db.prepare(
      `INSERT INTO audit_anchor (chain, generation, count, mac, key_kcv, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (chain) DO UPDATE SET generation = excluded.generation, count = excluded.count, mac = excluded.mac,
       key_kcv = excluded.key_kcv, updated_at = excluded.updated_at`,
    );
  }

  get(chain: string): ChainHead | null {
    const r = this.getStmt.get(chain);
    return r ? { generation: r.generation, count: r.count, mac: r.mac, kcv: r.key_kcv } : null;
  }

  set(chain: string, head: ChainHead): void {
    this.setStmt.run(chain, head.generation, head.count, head.mac, head.kcv, new Date().toISOString());
  }
}

export interface AuditKeyRow {
  kcv: string;
  nonce: Buffer;
  wrapped: Buffer;
  root_kcv: string;
}

/** audit_keys: earlier root keys' audit MAC keys, wrapped by the current root key. */
export class AuditKeysRepo {
  constructor(private readonly db: Db) {}

  all(): AuditKeyRow[] {
    return this.db.prepare<[], AuditKeyRow>('SELECT kcv, nonce, wrapped, root_kcv FROM audit_keys').all();
  }

  put(row: AuditKeyRow): void {
    this.db
      .prepare(
        `INSERT INTO audit_keys (kcv, nonce, wrapped, root_kcv, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (kcv) DO UPDATE SET nonce = excluded.nonce, wrapped = excluded.wrapped, root_kcv = excluded.root_kcv`,
      )
      .run(row.kcv, row.nonce, row.wrapped, row.root_kcv, new Date().toISOString());
  }
}
