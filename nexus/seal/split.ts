import { open, randomKey, seal } from '../crypto/aead.js';
import { DataIntegrityError } from '../errors.js';
import type { SplitRecord } from './record.js';
import { combineShares, newSplitId, splitKey, type Share } from './shamir.js';

function splitAd(splitId: string): Buffer {
  return Buffer.from(`nexus/seal-split/v1\0${splitId}`, 'utf8');
}

/**
 * A fresh key split into shares, and the root key sealed under it. The
 * shares are returned once and stored nowhere; the split's key is wiped.
 */
export async function splitRootKey(root: Buffer, shares: number, threshold: number): Promise<{ record: SplitRecord; shares: string[] }> {
  const kek = randomKey();
  try {
    const splitId = newSplitId();
    const texts = await splitKey(kek, shares, threshold, splitId);
    const w = seal(kek, root, splitAd(splitId));
    return { record: { shares, threshold, split_id: splitId, nonce: w.nonce.toString('base64'), wrapped: w.ciphertext.toString('base64') }, shares: texts };
  } finally {
    kek.fill(0);
  }
}

/** The root key from a quorum; a wrong quorum fails authentication (DataIntegrityError). */
export async function openSplit(record: SplitRecord, shares: Share[]): Promise<Buffer> {
  const kek = await combineShares(shares);
  try {
    return open(kek, { nonce: Buffer.from(record.nonce, 'base64'), ciphertext: Buffer.from(record.wrapped, 'base64') }, splitAd(record.split_id), 'the sealed root key');
  } catch (err) {
    if (err instanceof DataIntegrityError) throw new WrongQuorumError();
    throw err;
  } finally {
    kek.fill(0);
  }
}

export class WrongQuorumError extends Error {
  constructor() {
    super('these shares do not open this seal');
  }
}
