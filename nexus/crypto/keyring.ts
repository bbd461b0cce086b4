import { randomBytes } from 'node:crypto';
import { DataIntegrityError, StartupError } from '../errors.js';
import { META } from '../storage/meta-repo.js';
import type { DataKeyRow, DataKeysRepo, MetaRepo, Storage } from '../storage/storage.js';
import { configAd, dataKeyAd, open, randomKey, seal, secretAd, type Sealed } from './aead.js';
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
export async function verifyRootKey(root: RootKey, meta: MetaRepo, keys: DataKeysRepo): Promise<void> {
  if ((await meta.get(META.rotationKcv)) !== null) {
    throw new StartupError('a root key rotation was interrupted; run nexus-rotate-key again to finish it before starting Nexus');
  }
  const stored = await meta.get(META.rootKcv);
  const rows = await keys.all();
  if (stored === null) {
    if (rows.length > 0) throw new StartupError('the database holds data keys but no root key check value; refusing to start');
    await meta.set(META.rootKcv, root.kcv);
    return;
  }
  if (stored !== root.kcv) {
    throw new StartupError(
      `the root key (from ${{ env: 'NEXUS_ROOT_KEY', file: 'NEXUS_ROOT_KEY_FILE', shamir: 'the unseal shares', pkcs11: 'the PKCS#11 seal' }[root.source]}) does not match this database: key check failed; refusing to start`,
    );
  }
  for (const row of rows) unwrapDataKey(root, row);
}

/** Unwrapped data keys, kept in memory only; encrypts and decrypts secret values. */
export class Keyring {
  private readonly cache = new Map<string, Buffer>();

  constructor(
    private readonly root: RootKey,
    private readonly storage: Storage,
  ) {}

  private async dataKey(id: string): Promise<Buffer> {
    let key = this.cache.get(id);
    if (!key) {
      const row = await this.storage.dataKeys.get(id);
      if (!row) throw new DataIntegrityError(`data key ${id} is missing`);
      key = unwrapDataKey(this.root, row);
      this.cache.set(id, key);
    }
    return key;
  }

  /**
   * The active data key's id, creating one on first use in its own
   * transaction (several writers, or replicas, may race here: one key wins).
   */
  /** Drops every unwrapped data key (a key change here or on another replica); they are read again on use. */
  forget(): void {
    this.cache.clear();
  }

  /** Sealing: every unwrapped data key zeroed, not left to the GC (in-flight requests fail, as they should). */
  wipe(): void {
    for (const k of this.cache.values()) k.fill(0);
    this.cache.clear();
  }

  async activeKeyId(): Promise<string> {
    const row = await this.storage.dataKeys.active();
    const id =
      row?.id ??
      (await this.storage.tx(async (r) => {
        const again = await r.dataKeys.active();
        if (again) return again.id;
        const { row: created } = newDataKey(this.root, true);
        await r.dataKeys.insert(created);
        return created.id;
      }));
    // Unwrapped now, so a write transaction that seals with it needs no other connection.
    await this.dataKey(id);
    return id;
  }

  async sealValue(path: string, version: number, plaintext: Buffer, keyId?: string): Promise<SealedValue> {
    const id = keyId ?? (await this.activeKeyId());
    return { keyId: id, ...seal(await this.dataKey(id), plaintext, secretAd(path, version, id)) };
  }

  async openValue(path: string, version: number, v: SealedValue): Promise<Buffer> {
    return open(await this.dataKey(v.keyId), v, secretAd(path, version, v.keyId), `secret ${path} version ${version}`);
  }

  /** Seals a write-only configuration value for `owner` ('kind/name'): call before the transaction that stores it. */
  async sealConfig(owner: string, plaintext: Buffer): Promise<SealedValue> {
    const id = await this.activeKeyId();
    return { keyId: id, ...seal(await this.dataKey(id), plaintext, configAd(owner, id)) };
  }

  /** Opens what sealConfig sealed for the same owner; a row moved to another owner fails. */
  async openConfig(owner: string, v: SealedValue): Promise<Buffer> {
    return open(await this.dataKey(v.keyId), v, configAd(owner, v.keyId), `configuration secret ${owner}`);
  }
}
