import { rewrapAuditKeys } from '../audit/keys.js';
import { open, randomKey, seal } from '../crypto/aead.js';
import { makeRootKey, type RootKey } from '../crypto/root-key.js';
import { reencryptPhase, rewrapDataKeys, type RotationOptions } from '../crypto/rotation.js';
import type { Config } from '../config/index.js';
import { StartupError } from '../errors.js';
import { META } from '../storage/meta-repo.js';
import type { Storage } from '../storage/storage.js';
import { sealRootKey, type InitResult } from './init.js';
import { openCurrentSeal, type ShareReader } from './migrate.js';
import { readSealRecord, writeSealRecord } from './record.js';

/** Where an interrupted rotation keeps its new key: wrapped by the current root key, so only the current seal opens it. */
const PENDING = 'seal_rotation_key';
const pendingAd = (kcv: string) => Buffer.from(`nexus/seal-rotation/v1\0${kcv}`, 'utf8');

export interface SealedRotationResult {
  rewrapped: number;
  reencrypted: number;
  oldKcv: string;
  newKcv: string;
  shares: InitResult;
}

/**
 * nexus-rotate-key under a shamir or pkcs11 seal (Nexus stopped). As with a
 * key file, restartable at any point: the new key is stored (wrapped by the
 * current root key) in the transaction that records the rotation; rows move
 * in bounded transactions; the new seal is made over the new key, its shares
 * printed, and one transaction makes key and seal current. A killed run is
 * resumed by the next, which opens the current seal again.
 */
export async function rotateSealedRootKey(
  config: Config,
  storage: Storage,
  opts: Pick<RotationOptions, 'reencrypt' | 'batchSize' | 'onProgress'> & { readShares: ShareReader; printShares: (r: InitResult) => void },
): Promise<SealedRotationResult> {
  const record = await readSealRecord(storage.meta);
  if (!record) throw new StartupError('the database is in file mode: nexus-rotate-key rotates its key file');
  const { root: old } = await openCurrentSeal(config, storage, opts.readShares);
  let target: RootKey | undefined;
  try {
    const pendingKcv = await storage.meta.get(META.rotationKcv);
    const stored = await storage.meta.get(PENDING);
    if (pendingKcv === null || stored === null) {
      const fresh = makeRootKey(randomKey(), record.type);
      target = fresh;
      const w = seal(old.bytes, fresh.bytes, pendingAd(fresh.kcv));
      await storage.tx(async (r) => {
        await r.meta.set(PENDING, JSON.stringify({ kcv: fresh.kcv, nonce: w.nonce.toString('base64'), wrapped: w.ciphertext.toString('base64') }));
        await r.meta.set(META.rotationKcv, fresh.kcv);
      });
    } else {
      const p = JSON.parse(stored) as { kcv: string; nonce: string; wrapped: string };
      if (p.kcv !== pendingKcv) throw new StartupError('the interrupted rotation\'s new key is not the one the database records; cannot resume');
      target = makeRootKey(open(old.bytes, { nonce: Buffer.from(p.nonce, 'base64'), ciphertext: Buffer.from(p.wrapped, 'base64') }, pendingAd(p.kcv), 'the pending root key'), record.type);
    }
    const rewrapped = await rewrapDataKeys(storage, old, target, opts.batchSize, opts.onProgress);
    const { reencrypted, newKeyId } = await reencryptPhase(storage, target, opts.reencrypt, opts.batchSize, opts.onProgress);
    const split = record.unseal ?? record.recovery!;
    const next = await sealRootKey(config, record.type, target.bytes, split.shares, split.threshold);
    // Printed before the commit: a seal whose shares nobody saw must never become current.
    opts.printShares(next.result);
    const finalKeyId = newKeyId;
    const current = target;
    await storage.tx(async (r) => {
      if (finalKeyId !== null) {
        await r.dataKeys.activate(finalKeyId);
        await r.dataKeys.deleteUnused();
      }
      await rewrapAuditKeys(r.auditKeys, old, current);
      await writeSealRecord(r.meta, next.record);
      await r.meta.set(META.rootKcv, current.kcv);
      await r.meta.delete(META.rotationKcv);
      await r.meta.delete(META.rotationDataKey);
      await r.meta.delete(PENDING);
    });
    await storage.scrub();
    return { rewrapped, reencrypted, oldKcv: old.kcv, newKcv: target.kcv, shares: next.result };
  } finally {
    old.bytes.fill(0);
    target?.bytes.fill(0);
  }
}
