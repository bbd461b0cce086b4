import { randomBytes } from 'node:crypto';
import { combine, split } from 'shamir-secret-sharing';
import { BadRequestError } from '../errors.js';
import { KEY_BYTES } from '../crypto/aead.js';

/**
 * A share as text: `nxs1-<split id>-<share, base64url>`. The split id tags
 * every share of one split, so shares of two inits never mix; the share is
 * the library's bytes (the key's length, then its x coordinate).
 */
const SHARE = /^nxs1-([0-9a-f]{16})-([A-Za-z0-9_-]+)$/;
export const SHARE_BYTES = KEY_BYTES + 1;

export interface Share {
  splitId: string;
  /** x is the last byte. Wiped by whoever holds it once used. */
  bytes: Buffer;
}

export function newSplitId(): string {
  return randomBytes(8).toString('hex');
}

/** `n` shares of `key`, any `t` of which rebuild it. */
export async function splitKey(key: Buffer, n: number, t: number, splitId: string): Promise<string[]> {
  const parts = await split(new Uint8Array(key), n, t);
  return parts.map((p) => {
    const text = `nxs1-${splitId}-${Buffer.from(p).toString('base64url')}`;
    p.fill(0);
    return text;
  });
}

/** Structural checks first, each with its own rule; the bytes are a fresh copy. */
export function parseShare(raw: unknown): Share {
  if (typeof raw !== 'string') throw new BadRequestError('share', 'a share is a string');
  const m = SHARE.exec(raw.trim());
  if (!m) throw new BadRequestError('share.format', 'not a Nexus unseal share (nxs1-<split>-<share>)');
  const decoded = Buffer.from(m[2]!, 'base64url');
  try {
    if (decoded.length !== SHARE_BYTES) throw new BadRequestError('share.length', `a share holds ${SHARE_BYTES} bytes, this one ${decoded.length}`);
    if (decoded[KEY_BYTES] === 0) throw new BadRequestError('share.index', 'a share never has index 0');
    if (decoded.subarray(0, KEY_BYTES).every((b) => b === 0)) throw new BadRequestError('share.zero', 'an all-zero share is refused');
    const bytes = Buffer.alloc(SHARE_BYTES);
    decoded.copy(bytes);
    return { splitId: m[1]!, bytes };
  } finally {
    decoded.fill(0);
  }
}

export function shareIndex(s: Share): number {
  return s.bytes[KEY_BYTES]!;
}

/** The key the shares rebuild (a wrong share silently yields another key: the caller checks it). */
export async function combineShares(shares: Share[]): Promise<Buffer> {
  const parts = shares.map((s) => new Uint8Array(s.bytes));
  try {
    const key = await combine(parts);
    const out = Buffer.alloc(key.length);
    out.set(key);
    key.fill(0);
    return out;
  } finally {
    for (const p of parts) p.fill(0);
  }
}
