import type { Config } from '../config/index.js';
import { randomKey } from '../crypto/aead.js';
import { keyCheckValue } from '../crypto/root-key.js';
import { StartupError } from '../errors.js';
import { META } from '../storage/meta-repo.js';
import type { Storage } from '../storage/storage.js';
import { pkcs11Options } from './pin.js';
import { describeSeal, readSealRecord, writeSealRecord, type SealMode, type SealRecord } from './record.js';
import { splitRootKey } from './split.js';

export interface InitResult {
  /** shamir: unseal shares; pkcs11: recovery shares (they never unseal, only recover). */
  shares: string[];
  threshold: number;
  kind: 'unseal' | 'recovery';
  kcv: string;
}

/**
 * A seal over `root` for the configured mode: shamir splits a key that wraps
 * it; pkcs11 wraps it with the token's key (made there if absent) and also
 * splits a recovery key. Nothing here writes the root key or a share anywhere.
 */
export async function sealRootKey(config: Config, mode: SealMode, root: Buffer, shares: number, threshold: number): Promise<{ record: SealRecord; result: InitResult }> {
  const created_at = new Date().toISOString();
  const kcv = keyCheckValue(root);
  const split = await splitRootKey(root, shares, threshold);
  if (mode === 'shamir') {
    return { record: { type: 'shamir', created_at, unseal: split.record }, result: { shares: split.shares, threshold, kind: 'unseal', kcv } };
  }
  if (mode !== 'pkcs11') throw new StartupError('NEXUS_SEAL=file keeps the root key in a file: set NEXUS_SEAL=shamir or pkcs11 first');
  const w = await wrapWithToken(config, root);
  return {
    record: { type: 'pkcs11', created_at, pkcs11: { key_label: config.pkcs11KeyLabel, iv: w.iv.toString('base64'), wrapped: w.wrapped.toString('base64') }, recovery: split.record },
    result: { shares: split.shares, threshold, kind: 'recovery', kcv },
  };
}

/** The root key wrapped by the token's key (made on the token when absent). */
export async function wrapWithToken(config: Config, root: Buffer): Promise<{ iv: Buffer; wrapped: Buffer }> {
  const { withToken } = await import('./pkcs11.js');
  return withToken(pkcs11Options(config), (t) => t.wrap(t.key(true), root));
}

/** `nexus-operator init`: a new root key and its seal, in one transaction; refused if either exists. */
export async function initSeal(config: Config, storage: Storage, shares: number, threshold: number): Promise<InitResult> {
  const existing = await readSealRecord(storage.meta);
  if (existing) throw new StartupError(`refused: the database already holds ${describeSeal(existing)}; init runs once (nexus-rotate-key makes a new root key, migrate-seal changes the seal)`);
  if ((await storage.meta.get(META.rootKcv)) !== null) {
    throw new StartupError(`refused: the database already has a root key (file mode, check value ${await storage.meta.get(META.rootKcv)}): run nexus-operator migrate-seal --to ${config.seal}`);
  }
  const root = randomKey();
  try {
    const { record, result } = await sealRootKey(config, config.seal, root, shares, threshold);
    await storage.tx(async (r) => {
      if ((await readSealRecord(r.meta)) || (await r.meta.get(META.rootKcv)) !== null) throw new StartupError('refused: another init got there first');
      await writeSealRecord(r.meta, record);
      await r.meta.set(META.rootKcv, result.kcv);
    });
    return result;
  } finally {
    root.fill(0);
  }
}
