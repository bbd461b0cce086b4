import fs from 'node:fs';
import type { Config } from '../config/index.js';
import { makeRootKey, readKeyFile, writeKeyFileAtomic, fsyncDir, type RootKey } from '../crypto/root-key.js';
import { DataIntegrityError, StartupError } from '../errors.js';
import { META } from '../storage/meta-repo.js';
import type { Storage } from '../storage/storage.js';
import path from 'node:path';
import { sealRootKey, wrapWithToken, type InitResult } from './init.js';
import { describeSeal, readSealRecord, SEAL_META, writeSealRecord, type SealMode, type SealRecord, type SplitRecord } from './record.js';
import { unwrapWithToken } from './seal.js';
import { parseShare } from './shamir.js';
import { openSplit, WrongQuorumError } from './split.js';

/** Shares typed by operators (unseal shares of a shamir seal, or recovery shares of a pkcs11 one). */
export type ShareReader = (what: string, threshold: number) => Promise<string[]>;

async function openWithShares(split: SplitRecord, texts: string[], what: string): Promise<Buffer> {
  const shares = texts.map(parseShare);
  try {
    if (shares.some((s) => s.splitId !== split.split_id)) throw new StartupError(`a share is not one of the ${what} shares of this seal (split ${split.split_id})`);
    return await openSplit(split, shares);
  } catch (err) {
    if (err instanceof WrongQuorumError) throw new StartupError(`these ${what} shares do not open this seal (a wrong or mistyped share)`);
    throw err;
  } finally {
    for (const s of shares) s.bytes.fill(0);
  }
}

/** The root key as the database's seal gives it, checked against the stored key check value. */
export async function openCurrentSeal(config: Config, storage: Storage, readShares: ShareReader): Promise<{ record: SealRecord | null; root: RootKey }> {
  const kcv = await storage.meta.get(META.rootKcv);
  if (kcv === null) throw new StartupError('the database has no root key yet: nothing to migrate (start Nexus once, or run nexus-operator init)');
  const record = await readSealRecord(storage.meta);
  let root: RootKey;
  if (!record) {
    if (config.rootKeyInline) root = makeRootKey(config.rootKeyInline, 'env');
    else if (fs.existsSync(config.rootKeyFile)) root = makeRootKey(readKeyFile(config.rootKeyFile), 'file');
    else throw new StartupError(`the database is in file mode but the root key file ${config.rootKeyFile} is missing (or set NEXUS_ROOT_KEY)`);
  } else if (record.type === 'shamir') {
    root = makeRootKey(await openWithShares(record.unseal!, await readShares('unseal', record.unseal!.threshold), 'unseal'), 'shamir');
  } else {
    root = await unwrapWithToken(config, record);
  }
  if (root.kcv !== kcv) throw new DataIntegrityError(`the root key from ${record ? describeSeal(record) : config.rootKeyFile} does not match this database's key check value`);
  return { record, root };
}

export interface MigrateResult {
  from: SealMode;
  to: SealMode;
  /** Printed before the commit: shamir's unseal shares, pkcs11's recovery shares. */
  shares: InitResult | null;
  /** A key file made (to file) or removed (from file). */
  keyFile: string | null;
  alreadyDone: boolean;
}

/**
 * Re-wraps the root key under another seal (Nexus stopped); the data is
 * untouched. Every step can be killed and the whole re-run: the new seal is
 * built in memory (its shares printed before anything commits), the key file
 * of a move to file is written before, and removed only after, the one
 * transaction that swaps the seal record.
 */
export async function migrateSeal(
  config: Config,
  storage: Storage,
  to: SealMode,
  opts: { shares: number; threshold: number; readShares: ShareReader; printShares: (r: InitResult) => void; recorded?: (root: RootKey, from: SealMode) => Promise<void> },
): Promise<MigrateResult> {
  const current = await readSealRecord(storage.meta);
  const from: SealMode = current?.type ?? 'file';
  const keyFile = config.rootKeyFile;
  if (from === to) {
    // A run killed after its commit: only the key file's removal may be left to do.
    const removed = to !== 'file' && removeKeyFile(keyFile, await storage.meta.get(META.rootKcv));
    return { from, to, shares: null, keyFile: removed ? keyFile : null, alreadyDone: true };
  }
  const { root } = await openCurrentSeal(config, storage, opts.readShares);
  try {
    if (to === 'file') {
      if (fs.existsSync(keyFile) && makeRootKey(readKeyFile(keyFile), 'file').kcv !== root.kcv) throw new StartupError(`${keyFile} holds another root key: move it away first`);
      writeKeyFileAtomic(keyFile, root.bytes);
      await storage.tx((r) => r.meta.delete(SEAL_META.record));
      await opts.recorded?.(root, from);
      return { from, to, shares: null, keyFile, alreadyDone: false };
    }
    const { record, result } = await sealRootKey(config, to, root.bytes, opts.shares, opts.threshold);
    opts.printShares(result);
    await storage.tx((r) => writeSealRecord(r.meta, record));
    await opts.recorded?.(root, from);
    const removed = removeKeyFile(keyFile, root.kcv);
    // The wrapped key of the previous seal must not linger in the engine's free pages.
    await storage.scrub();
    return { from, to, shares: result, keyFile: removed ? keyFile : null, alreadyDone: false };
  } finally {
    root.bytes.fill(0);
  }
}

/** The file mode's key file, once the database no longer needs it (only if it is that key). */
function removeKeyFile(file: string, kcv: string | null): boolean {
  if (!fs.existsSync(file)) return false;
  if (makeRootKey(readKeyFile(file), 'file').kcv !== kcv) throw new StartupError(`${file} holds another root key than this database's: left in place, remove it yourself`);
  fs.rmSync(file);
  fsyncDir(path.dirname(file));
  return true;
}

/**
 * pkcs11: the root key rebuilt from recovery shares and wrapped by the token
 * key now configured (a new HSM, or a key made anew); one transaction.
 */
export async function recoverOntoToken(config: Config, storage: Storage, readShares: ShareReader): Promise<{ keyLabel: string }> {
  const record = await readSealRecord(storage.meta);
  if (record?.type !== 'pkcs11' || !record.recovery) throw new StartupError(`recover moves a pkcs11 seal onto a new token key; the database holds ${record ? describeSeal(record) : 'a file-mode root key'}`);
  const kcv = await storage.meta.get(META.rootKcv);
  const root = await openWithShares(record.recovery, await readShares('recovery', record.recovery.threshold), 'recovery');
  try {
    if (makeRootKey(root, 'pkcs11').kcv !== kcv) throw new DataIntegrityError('the recovery shares rebuild another root key than this database\'s');
    const w = await wrapWithToken(config, root);
    await storage.tx((r) =>
      writeSealRecord(r.meta, { ...record, pkcs11: { key_label: config.pkcs11KeyLabel, iv: w.iv.toString('base64'), wrapped: w.wrapped.toString('base64') } }),
    );
    return { keyLabel: config.pkcs11KeyLabel };
  } finally {
    root.fill(0);
  }
}
