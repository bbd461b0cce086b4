import { randomBytes } from 'node:crypto';
import { DataIntegrityError } from '../errors.js';
import { sodium } from './sodium.js';

/** XChaCha20-Poly1305 (IETF), libsodium. */
export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;

export interface Sealed {
  nonce: Buffer;
  ciphertext: Buffer;
}

// Nonces and keys come from Node's CSPRNG: libsodium-wrappers' randombytes_buf
// crosses into WebAssembly per call and measured ~10x slower than the AEAD itself.
export function randomKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function seal(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Sealed {
  const nonce = randomBytes(NONCE_BYTES);
  const ct = sodium().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
  return { nonce, ciphertext: Buffer.from(ct.buffer, ct.byteOffset, ct.byteLength) };
}

/** Decrypts and authenticates; `what` names the object in the error (never its content). */
export function open(key: Uint8Array, sealed: Sealed, ad: Uint8Array, what: string): Buffer {
  if (sealed.nonce.length !== NONCE_BYTES) throw new DataIntegrityError(`${what}: nonce has the wrong length`);
  try {
    const pt = sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.ciphertext, ad, sealed.nonce, key);
    return Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength);
  } catch (cause) {
    throw new DataIntegrityError(`${what} failed authentication (tampered, moved or wrong key)`, { cause });
  }
}

/** Additional data binding a secret ciphertext to its path, version and data key. */
export function secretAd(path: string, version: number, keyId: string): Buffer {
  return Buffer.from(`nexus/secret/v1\0${path}\0${version}\0${keyId}`, 'utf8');
}

/** Additional data binding a wrapped data key to its id. */
export function dataKeyAd(keyId: string): Buffer {
  return Buffer.from(`nexus/dek/v1\0${keyId}`, 'utf8');
}

/** Additional data binding a write-only configuration value to its owner and data key. */
export function configAd(owner: string, keyId: string): Buffer {
  return Buffer.from(`nexus/config-secret/v1\0${owner}\0${keyId}`, 'utf8');
}
