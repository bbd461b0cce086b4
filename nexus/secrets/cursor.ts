import { createHmac } from 'node:crypto';
import { NONCE_BYTES, open, seal } from '../crypto/aead.js';
import { BadRequestError } from '../errors.js';

const LABEL = 'nexus/list-cursor/v1';
const CURSOR = /^[A-Za-z0-9_-]{54,800}$/;

function ad(prefix: string): Buffer {
  return Buffer.from(`${LABEL}\0${prefix}`, 'utf8');
}

/**
 * List cursors: the position a listing stopped at (which may be a path the
 * caller may not list), encrypted and authenticated under a key derived from
 * the root key and bound to the listing's prefix. A caller learns nothing
 * from one and cannot make one up: anything else is 400.
 */
export class ListCursors {
  private readonly key: Buffer;

  constructor(rootKey: Buffer) {
    this.key = createHmac('sha256', rootKey).update(LABEL).digest();
  }

  encode(prefix: string, after: string): string {
    const s = seal(this.key, Buffer.from(after, 'utf8'), ad(prefix));
    return Buffer.concat([s.nonce, s.ciphertext]).toString('base64url');
  }

  decode(prefix: string, cursor: string): string {
    const refuse = () => new BadRequestError('cursor', 'cursor is not one this server issued for this listing');
    if (!CURSOR.test(cursor)) throw refuse();
    const raw = Buffer.from(cursor, 'base64url');
    try {
      return open(this.key, { nonce: raw.subarray(0, NONCE_BYTES), ciphertext: raw.subarray(NONCE_BYTES) }, ad(prefix), 'list cursor').toString('utf8');
    } catch {
      throw refuse();
    }
  }
}
