import fs from 'node:fs';
import path from 'node:path';
import { rewrapAuditKeys } from '../audit/keys.js';
import { StartupError } from '../errors.js';
import { AuditKeysRepo } from '../storage/audit-repo.js';
import type { Db } from '../storage/db.js';
import { DataKeysRepo } from '../storage/data-keys-repo.js';
import { META, MetaRepo } from '../storage/meta-repo.js';
import { SecretsRepo } from '../storage/secrets-repo.js';
import { randomKey } from './aead.js';
import { Keyring, newDataKey, unwrapDataKey, wrapDataKey } from './keyring.js';
import { fsyncDir, keyCheckValue, makeRootKey, readKeyFile, writeKeyFileAtomic, type RootKey } from './root-key.js';

export type RotationPhase = 'rewrap' | 'reencrypt';

export interface RotationOptions {
  db: Db;
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
export function rotateRootKey(opts: RotationOptions): RotationResult {
  const { db, rootKeyFile, batchSize } = opts;
  const newFile = `${rootKeyFile}.new`;
  const meta = new MetaRepo(db);
  const keys = new DataKeysRepo(db);
  const secrets = new SecretsRepo(db);
  const currentKcv = meta.get(META.rootKcv);
  if (currentKcv === null) throw new StartupError('the database has no root key yet: start Nexus once before rotating');
  const old = makeRootKey(readKeyFile(rootKeyFile), 'file');

  let target: RootKey;
  const pendingKcv = meta.get(META.rotationKcv);
  if (pendingKcv === null) {
    if (old.kcv !== currentKcv) {
      // Step 4 committed but the rename did not happen: finish it.
      if (fs.existsSync(newFile) && keyCheckValue(readKeyFile(newFile)) === currentKcv) {
        swapKeyFile(newFile, rootKeyFile);
        return { resumedFinalStep: true, rewrapped: 0, reencrypted: 0, oldKcv: old.kcv, newKcv: currentKcv };
      }
      throw new StartupError(`the root key file ${rootKeyFile} does not match this database: key check failed`);
    }
    // A `.new` not yet recorded in the db protects nothing: replace it.
    writeKeyFileAtomic(newFile, randomKey());
    target = makeRootKey(readKeyFile(newFile), 'file');
    db.transaction(() => meta.set(META.rotationKcv, target.kcv)).immediate();
  } else {
    if (old.kcv !== currentKcv) throw new StartupError(`the root key file ${rootKeyFile} does not match this database: key check failed`);
    if (!fs.existsSync(newFile)) throw new StartupError(`an interrupted rotation expects ${newFile}, which is missing; cannot resume`);
    target = makeRootKey(readKeyFile(newFile), 'file');
    if (target.kcv !== pendingKcv) throw new StartupError(`${newFile} is not the key the interrupted rotation started with; cannot resume`);
  }

  const rewrapped = rewrapDataKeys(db, keys, old, target, batchSize, opts.onProgress);
  let reencrypted = 0;
  let newKeyId = meta.get(META.rotationDataKey);
  if (opts.reencrypt || newKeyId !== null) {
    if (newKeyId === null) {
      const { row } = newDataKey(target, false);
      db.transaction(() => {
        keys.insert(row);
        meta.set(META.rotationDataKey, row.id);
      }).immediate();
      newKeyId = row.id;
    }
    reencrypted = reencryptSecrets(db, secrets, new Keyring(target, keys), newKeyId, batchSize, opts.onProgress);
  }

  db.transaction(() => {
    if (newKeyId !== null) {
      keys.activate(newKeyId);
      keys.deleteUnused();
    }
    rewrapAuditKeys(new AuditKeysRepo(db), old, target);
    meta.set(META.rootKcv, target.kcv);
    meta.delete(META.rotationKcv);
    meta.delete(META.rotationDataKey);
  }).immediate();
  // Wrapped keys under the old root key must not linger in the WAL.
  db.pragma('wal_checkpoint(TRUNCATE)');
  swapKeyFile(newFile, rootKeyFile);
  return { resumedFinalStep: false, rewrapped, reencrypted, oldKcv: old.kcv, newKcv: target.kcv };
}

function swapKeyFile(newFile: string, rootKeyFile: string): void {
  fs.renameSync(newFile, rootKeyFile);
  fsyncDir(path.dirname(rootKeyFile));
}

function rewrapDataKeys(
  db: Db,
  keys: DataKeysRepo,
  old: RootKey,
  target: RootKey,
  batchSize: number,
  onProgress: RotationOptions['onProgress'],
): number {
  const total = keys.all().length;
  let done = total - keys.notWrappedBy(target.kcv, total + 1).length;
  onProgress?.('rewrap', done, total);
  for (;;) {
    const n = db.transaction(() => {
      const rows = keys.notWrappedBy(target.kcv, batchSize);
      for (const row of rows) {
        const w = wrapDataKey(target, row.id, unwrapDataKey(old, row));
        keys.rewrap(row.id, w.nonce, w.ciphertext, target.kcv);
      }
      return rows.length;
    }).immediate();
    if (n === 0) return done;
    done += n;
    onProgress?.('rewrap', done, total);
  }
}

function reencryptSecrets(
  db: Db,
  secrets: SecretsRepo,
  keyring: Keyring,
  newKeyId: string,
  batchSize: number,
  onProgress: RotationOptions['onProgress'],
): number {
  const total = (db.prepare('SELECT count(*) AS n FROM secret_versions WHERE ciphertext IS NOT NULL AND key_id <> ?').get(newKeyId) as { n: number }).n;
  let done = 0;
  let after = { path: '', version: 0 };
  onProgress?.('reencrypt', done, total);
  for (;;) {
    const n = db.transaction(() => {
      const rows = secrets.notUnderKey(newKeyId, after, batchSize);
      for (const row of rows) {
        const plain = keyring.openValue(row.path, row.version, { keyId: row.key_id!, nonce: row.nonce!, ciphertext: row.ciphertext! });
        const sealed = keyring.sealValue(row.path, row.version, plain, newKeyId);
        plain.fill(0);
        secrets.replaceCiphertext(row.path, row.version, newKeyId, sealed.nonce, sealed.ciphertext);
        after = { path: row.path, version: row.version };
      }
      return rows.length;
    }).immediate();
    if (n === 0) return done;
    done += n;
    onProgress?.('reencrypt', done, total);
  }
}
