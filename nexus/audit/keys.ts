import { createHmac } from 'node:crypto';
import { open, seal } from '../crypto/aead.js';
import type { RootKey } from '../crypto/root-key.js';
import { DataIntegrityError } from '../errors.js';
import type { AuditKeyRow } from '../storage/audit-repo.js';
import type { AuditKeysStore } from '../storage/storage.js';

/**
 * The key that MACs the audit chain: derived from the root key under its own
 * label (the token-id key has another), so rewriting records needs the root key.
 */
export function auditMacKey(root: Buffer): Buffer {
  return createHmac('sha256', root).update('nexus/audit-chain/v1').digest();
}

function auditKeyAd(kcv: string): Buffer {
  return Buffer.from(`nexus/audit-key/v1\0${kcv}`, 'utf8');
}

/** MAC keys by root key check value: the current one, and earlier ones from audit_keys. */
export class AuditKeys {
  readonly kcv: string;
  readonly current: Buffer;
  private readonly earlier = new Map<string, Buffer>();

  /** `rows`: the audit_keys table (earlier root keys' audit keys). */
  constructor(root: RootKey, rows: AuditKeyRow[]) {
    this.kcv = root.kcv;
    this.current = auditMacKey(root.bytes);
    for (const row of rows) {
      if (row.root_kcv !== root.kcv) throw new DataIntegrityError(`audit key ${row.kcv} is wrapped by another root key`);
      this.earlier.set(row.kcv, open(root.bytes, { nonce: row.nonce, ciphertext: row.wrapped }, auditKeyAd(row.kcv), `audit key ${row.kcv}`));
    }
  }

  get(kcv: string): Buffer | null {
    return kcv === this.kcv ? this.current : (this.earlier.get(kcv) ?? null);
  }
}

/**
 * For a root key rotation (inside its final transaction): every earlier audit
 * key re-wrapped under the new root key, and the outgoing root key's audit
 * key added, so the whole trail still verifies with the new key alone.
 */
export async function rewrapAuditKeys(repo: AuditKeysStore, old: RootKey, target: RootKey): Promise<void> {
  const rows = await repo.all();
  const keys = new AuditKeys(old, rows);
  const wrap = (kcv: string, key: Buffer) => {
    const w = seal(target.bytes, key, auditKeyAd(kcv));
    return repo.put({ kcv, nonce: w.nonce, wrapped: w.ciphertext, root_kcv: target.kcv });
  };
  for (const row of rows) await wrap(row.kcv, keys.get(row.kcv)!);
  await wrap(old.kcv, keys.current);
}
