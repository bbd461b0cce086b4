import { randomBytes } from 'node:crypto';
import { DataIntegrityError, StartupError } from '../errors.js';
import type { DataKeyRow, DataKeysRepo } from '../storage/data-keys-repo.js';
import { META, type MetaRepo } from '../storage/meta-repo.js';
import { dataKeyAd, open, randomKey, seal, secretAd, type Sealed } from './aead.js';
import type { RootKey } from './root-key.js';

export interface SealedValue extends Sealed {
  keyId: string;
}

export function wrapDataKey(root: RootKey, id: string, dek: Buffer): Sealed {
  return seal(root.bytes, dek, dataKeyAd(id));
}

export function unwrapDataKey(root: RootKey, row: DataKeyRow): Buffer {
  if (row.root_kcv !== root.kcv) {
    throw new DataIntegrityError(`data key ${row.id} is wrapped by another root key`);
  }
  return open(root.bytes, { nonce: row.nonce, ciphertext: row.wrapped }, dataKeyAd(row.id), `data key ${row.id}`);
}

export function newDataKey(root: RootKey, active: boolean): { row: DataKeyRow; key: Buffer } {
  const id = `dk_${randomBytes(8).toString('hex')}`;
  const key = randomKey();
  const w = wrapDataKey(root, id, key);
  return {
    row: { id, nonce: w.nonce, wrapped: w.ciphertext, root_kcv: root.kcv, active: active ? 1 : 0, created_at: new Date().toISOString() },
    key,
  };
}

/**
 * Proves the root key fits this database, before anything is served:
 * the stored key check value must match and every data key must unwrap.
 */
export function verifyRootKey(root: RootKey, meta: MetaRepo, keys: DataKeysRepo): void {
  if (meta.get(META.rotationKcv) !== null) {
    throw new StartupError('a root key rotation was interrupted; run nexus-rotate-key again to finish it before starting Nexus');
  }
  const stored = meta.get(META.rootKcv);
  const rows = keys.all();
  if (stored === null) {
    if (rows.length > 0) throw new StartupError('the database holds data keys but no root key check value; refusing to start');
    meta.set(META.rootKcv, root.kcv);
    return;
  }
  if (stored !== root.kcv) {
    throw new StartupError(
      `the root key (from ${root.source === 'env' ? 'NEXUS_ROOT_KEY' : 'NEXUS_ROOT_KEY_FILE'}) does not match this database: key check failed; refusing to start`,
    );
  }
  for (const row of rows) unwrapDataKey(root, row);
}

/** Unwrapped data keys, kept in memory only; encrypts and decrypts secret values. */
export class Keyring {
  private readonly cache = new Map<string, Buffer>();

  constructor(
    private readonly root: RootKey,
    private readonly keys: DataKeysRepo,
  ) {}

  private dataKey(id: string): Buffer {
    let key = this.cache.get(id);
    if (!key) {
      const row = this.keys.get(id);
      if (!row) throw new DataIntegrityError(`data key ${id} is missing`);
      key = unwrapDataKey(this.root, row);
      this.cache.set(id, key);
    }
    return key;
  }

  /** The active data key's id, creating one on first use. Call inside the write transaction. */
  private activeId(): string {
    const row = this.keys.active();
    if (row) return row.id;
    const { row: created, key } = newDataKey(this.root, true);
    this.keys.insert(created);
    this.cache.set(created.id, key);
    return created.id;
  }

  sealValue(path: string, version: number, plaintext: Buffer, keyId = this.activeId()): SealedValue {
    return { keyId, ...seal(this.dataKey(keyId), plaintext, secretAd(path, version, keyId)) };
  }

  openValue(path: string, version: number, v: SealedValue): Buffer {
    return open(this.dataKey(v.keyId), v, secretAd(path, version, v.keyId), `secret ${path} version ${version}`);
  }
}
