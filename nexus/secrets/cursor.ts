import { createHmac } from 'node:crypto';
import { NONCE_BYTES, open, seal } from '../crypto/aead.js';
import { BadRequestError } from '../errors.js';
import { MAX_PATH_BYTES } from './rules.js';

const LABEL = 'nexus/list-cursor/v2';
/** Sealed: a 2-byte length, the path, zeros up to the longest path. One size, whatever the path. */
const PLAIN_BYTES = 2 + MAX_PATH_BYTES;
const TAG_BYTES = 16;
const CURSOR_CHARS = Math.ceil(((NONCE_BYTES + PLAIN_BYTES + TAG_BYTES) * 4) / 3);
const CURSOR = new RegExp(`^[A-Za-z0-9_-]{${CURSOR_CHARS}}$`);

function ad(prefix: string): Buffer {
  return Buffer.from(`${LABEL}\0${prefix}`, 'utf8');
}

/**
 * List cursors: the last path a page answered, padded to the longest path's
 * size, then encrypted and authenticated under a key derived from the root
 * key and bound to the listing's prefix. Every cursor has the same length, a
 * caller learns nothing from one and cannot make one up: anything else is 400.
 */
export class ListCursors {
  private readonly key: Buffer;

  constructor(rootKey: Buffer) {
    this.key = createHmac('sha256', rootKey).update(LABEL).digest();
  }

  encode(prefix: string, after: string): string {
    const plain = Buffer.alloc(PLAIN_BYTES);
    const n = plain.write(after, 2, 'utf8');
    if (n !== Buffer.byteLength(after, 'utf8')) throw new Error('a list cursor holds at most one path');
    plain.writeUInt16BE(n, 0);
    const s = seal(this.key, plain, ad(prefix));
    return Buffer.concat([s.nonce, s.ciphertext]).toString('base64url');
  }

  decode(prefix: string, cursor: string): string {
    const refuse = () => new BadRequestError('cursor', 'cursor is not one this server issued for this listing');
    if (!CURSOR.test(cursor)) throw refuse();
    const raw = Buffer.from(cursor, 'base64url');
    let plain: Buffer;
    try {
      plain = open(this.key, { nonce: raw.subarray(0, NONCE_BYTES), ciphertext: raw.subarray(NONCE_BYTES) }, ad(prefix), 'list cursor');
    } catch {
      throw refuse();
    }
    const n = plain.length === PLAIN_BYTES ? plain.readUInt16BE(0) : -1;
    if (n < 0 || n > MAX_PATH_BYTES) throw refuse();
    return plain.toString('utf8', 2, 2 + n);
  }
}
