import fs from 'node:fs';
import path from 'node:path';
import { rewrapAuditKeys } from '../audit/keys.js';
import { StartupError } from '../errors.js';
import { META } from '../storage/meta-repo.js';
import type { Storage } from '../storage/storage.js';
import { randomKey } from './aead.js';
import { Keyring, newDataKey, unwrapDataKey, wrapDataKey } from './keyring.js';
import { fsyncDir, keyCheckValue, makeRootKey, readKeyFile, writeKeyFileAtomic, type RootKey } from './root-key.js';

export type RotationPhase = 'rewrap' | 'reencrypt';

export interface RotationOptions {
  storage: Storage;
  rootKeyFile: string;
  reencrypt: boolean;
  /** Rows per transaction. */
  batchSize: number;
  onProgress?: (phase: RotationPhase, done: number, total: number) => void;
}

export interface RotationResult {
  /** True when the run only completed the file swap of an interrupted rotation. */
  resumedFinalStep: boolean;
  rewrapped: number;
  reencrypted: number;
  oldKcv: string;
  /** Where the previous root key is kept (root.key.<kcv>.old): backups made before the rotation need it. */
  keptOldKey: string;
  newKcv: string;
}

/**
 * Root key rotation (Nexus stopped). Restartable at any point:
 *  1. the new key is written to `<key file>.new` before the db refers to it;
 *  2. the db records the rotation (rotation_kcv), so the server refuses to
 *     start on a half-rotated db and a re-run resumes;
 *  3. data keys are re-wrapped (and with reencrypt, secrets re-encrypted under
 *     a fresh data key) in bounded transactions; each row says its key;
 *  4. one transaction makes the new key current; only then is the key file
 *     replaced, by an atomic rename of `.new`.
 * A crash between 4's commit and rename is finished by the next run.
 */
export async function rotateRootKey(opts: RotationOptions): Promise<RotationResult> {
  const { storage, rootKeyFile, batchSize } = opts;
  const newFile = `${rootKeyFile}.new`;
  const { meta } = storage;
  const currentKcv = await meta.get(META.rootKcv);
  if (currentKcv === null) throw new StartupError('the database has no root key yet: start Nexus once before rotating');
  const old = makeRootKey(readKeyFile(rootKeyFile), 'file');

  let target: RootKey;
  const pendingKcv = await meta.get(META.rotationKcv);
  if (pendingKcv === null) {
    if (old.kcv !== currentKcv) {
      // Step 4 committed but the rename did not happen: finish it.
      if (fs.existsSync(newFile) && keyCheckValue(readKeyFile(newFile)) === currentKcv) {
        const keptOldKey = swapKeyFile(newFile, rootKeyFile, old);
        return { resumedFinalStep: true, rewrapped: 0, reencrypted: 0, oldKcv: old.kcv, newKcv: currentKcv, keptOldKey };
      }
      throw new StartupError(`the root key file ${rootKeyFile} does not match this database: key check failed`);
    }
    // A `.new` not yet recorded in the db protects nothing: replace it.
    writeKeyFileAtomic(newFile, randomKey());
    target = makeRootKey(readKeyFile(newFile), 'file');
    await storage.tx((r) => r.meta.set(META.rotationKcv, target.kcv));
  } else {
    if (old.kcv !== currentKcv) throw new StartupError(`the root key file ${rootKeyFile} does not match this database: key check failed`);
    if (!fs.existsSync(newFile)) throw new StartupError(`an interrupted rotation expects ${newFile}, which is missing; cannot resume`);
    target = makeRootKey(readKeyFile(newFile), 'file');
    if (target.kcv !== pendingKcv) throw new StartupError(`${newFile} is not the key the interrupted rotation started with; cannot resume`);
  }

  const rewrapped = await rewrapDataKeys(storage, old, target, batchSize, opts.onProgress);
  const { reencrypted, newKeyId } = await reencryptPhase(storage, target, opts.reencrypt, batchSize, opts.onProgress);

  const finalKeyId = newKeyId;
  await storage.tx(async (r) => {
    if (finalKeyId !== null) {
      await r.dataKeys.activate(finalKeyId);
      await r.dataKeys.deleteUnused();
    }
    await rewrapAuditKeys(r.auditKeys, old, target);
    await r.meta.set(META.rootKcv, target.kcv);
    await r.meta.delete(META.rotationKcv);
    await r.meta.delete(META.rotationDataKey);
  });
  // Wrapped keys under the old root key must not linger in the engine's files.
  await storage.scrub();
  const keptOldKey = swapKeyFile(newFile, rootKeyFile, old);
  return { resumedFinalStep: false, rewrapped, reencrypted, oldKcv: old.kcv, newKcv: target.kcv, keptOldKey };
}

/** The file that keeps a replaced root key: backups made under it still need it. */
export function oldKeyFile(rootKeyFile: string, kcv: string): string {
  return `${rootKeyFile}.${kcv}.old`;
}

/** Keeps the outgoing key (0600, written atomically) before the new one takes its name. */
function swapKeyFile(newFile: string, rootKeyFile: string, old: RootKey): string {
  const kept = oldKeyFile(rootKeyFile, old.kcv);
  writeKeyFileAtomic(kept, old.bytes);
  fs.renameSync(newFile, rootKeyFile);
  fsyncDir(path.dirname(rootKeyFile));
  return kept;
}

export async function rewrapDataKeys(
  storage: Storage,
  old: RootKey,
  target: RootKey,
  batchSize: number,
  onProgress: RotationOptions['onProgress'],
): Promise<number> {
  const total = (await storage.dataKeys.all()).length;
  let done = total - (await storage.dataKeys.notWrappedBy(target.kcv, total + 1)).length;
  onProgress?.('rewrap', done, total);
  for (;;) {
    const n = await storage.tx(async (r) => {
      const rows = await r.dataKeys.notWrappedBy(target.kcv, batchSize);
      for (const row of rows) {
        const w = wrapDataKey(target, row.id, unwrapDataKey(old, row));
        await r.dataKeys.rewrap(row.id, w.nonce, w.ciphertext, target.kcv);
      }
      return rows.length;
    });
    if (n === 0) return done;
    done += n;
    onProgress?.('rewrap', done, total);
  }
}

/**
 * The optional second phase of a rotation: every secret version re-encrypted
 * under a new data key wrapped by `target`. The key's id is recorded first, so
 * a killed run resumes with the same key (and a recorded key means resume,
 * whatever `reencrypt` says).
 */
export async function reencryptPhase(
  storage: Storage,
  target: RootKey,
  reencrypt: boolean,
  batchSize: number,
  onProgress: RotationOptions['onProgress'],
): Promise<{ reencrypted: number; newKeyId: string | null }> {
  let newKeyId = await storage.meta.get(META.rotationDataKey);
  if (!reencrypt && newKeyId === null) return { reencrypted: 0, newKeyId };
  if (newKeyId === null) {
    const { row } = newDataKey(target, false);
    await storage.tx(async (r) => {
      await r.dataKeys.insert(row);
      await r.meta.set(META.rotationDataKey, row.id);
    });
    newKeyId = row.id;
  }
  return { reencrypted: await reencryptSecrets(storage, new Keyring(target, storage), newKeyId, batchSize, onProgress), newKeyId };
}

export async function reencryptSecrets(
  storage: Storage,
  keyring: Keyring,
  newKeyId: string,
  batchSize: number,
  onProgress: RotationOptions['onProgress'],
): Promise<number> {
  const total = await storage.secrets.countNotUnderKey(newKeyId);
  let done = 0;
  let after = { path: '', version: 0 };
  onProgress?.('reencrypt', done, total);
  for (;;) {
    // `after` moves only when a batch commits: a retried batch starts where the last one ended.
    const batch = await storage.tx(async (r) => {
      const rows = await r.secrets.notUnderKey(newKeyId, after, batchSize);
      for (const row of rows) {
        const plain = await keyring.openValue(row.path, row.version, { keyId: row.key_id!, nonce: row.nonce!, ciphertext: row.ciphertext! });
        const sealed = await keyring.sealValue(row.path, row.version, plain, newKeyId);
        plain.fill(0);
        await r.secrets.replaceCiphertext(row.path, row.version, newKeyId, sealed.nonce, sealed.ciphertext);
      }
      return rows;
    });
    const n = batch.length;
    if (n > 0) after = { path: batch[n - 1]!.path, version: batch[n - 1]!.version };
    if (n === 0) return done;
    done += n;
    onProgress?.('reencrypt', done, total);
  }
}
