import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Pkcs11Js from 'pkcs11js';
import { StartupError } from '../errors.js';

export interface Pkcs11Options {
  module: string;
  tokenLabel: string | null;
  slot: number | null;
  pin: string;
  keyLabel: string;
}

const IV_BYTES = 12;
const AD = Buffer.from('nexus/seal-pkcs11/v1', 'utf8');

/** The binding, loaded only in pkcs11 mode (it is a native module). */
function binding(): typeof Pkcs11Js {
  return createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Js;
}

/** Errors that retrying cannot fix, and that a token may punish (a wrong PIN locks it): never retried. */
export class Pkcs11Refused extends StartupError {}

function ckr(err: unknown): string {
  return /CKR_[A-Z_]+/.exec(String((err as Error)?.message ?? err))?.[0] ?? String((err as Error)?.message ?? err);
}

/**
 * One session, opened, logged in, used, closed in `finally`. The AES key
 * never leaves the token (CKA_EXTRACTABLE false, CKA_SENSITIVE true): the
 * root key goes in to be wrapped (AES-GCM) and comes out unwrapped.
 */
export async function withToken<T>(opts: Pkcs11Options, fn: (t: TokenKey) => T): Promise<T> {
  const p = binding();
  if (!fs.existsSync(opts.module)) throw new Pkcs11Refused(`NEXUS_PKCS11_MODULE ${opts.module} does not exist`);
  const lib = new p.PKCS11();
  try {
    lib.load(opts.module);
  } catch (err) {
    throw new Pkcs11Refused(`NEXUS_PKCS11_MODULE ${opts.module} could not be loaded: ${(err as Error).message}`);
  }
  lib.C_Initialize();
  try {
    const slots = lib.C_GetSlotList(true);
    const slot =
      opts.slot !== null
        ? slots.find((s) => s.readUInt32LE(0) === opts.slot)
        : slots.find((s) => lib.C_GetTokenInfo(s).label.trim() === opts.tokenLabel);
    if (!slot) throw new Pkcs11Refused(opts.slot !== null ? `no token in PKCS#11 slot ${opts.slot} (NEXUS_PKCS11_SLOT)` : `no PKCS#11 token labelled ${opts.tokenLabel} (NEXUS_PKCS11_TOKEN_LABEL)`);
    const session = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    try {
      try {
        lib.C_Login(session, p.CKU_USER, opts.pin);
      } catch (err) {
        const code = ckr(err);
        if (code === 'CKR_PIN_INCORRECT' || code === 'CKR_PIN_LOCKED' || code === 'CKR_PIN_INVALID' || code === 'CKR_PIN_LEN_RANGE') {
          throw new Pkcs11Refused(`the PKCS#11 token refused the PIN (${code}; NEXUS_PKCS11_PIN or NEXUS_PKCS11_PIN_FILE); not retried, as tokens lock after repeated failures`);
        }
        if (code !== 'CKR_USER_ALREADY_LOGGED_IN') throw new Pkcs11Refused(`PKCS#11 login failed: ${code}`);
      }
      return fn(new TokenKey(p, lib, session, opts.keyLabel));
    } finally {
      try {
        lib.C_Logout(session);
      } catch {
        /* not logged in */
      }
      lib.C_CloseSession(session);
    }
  } finally {
    lib.C_Finalize();
  }
}

export class TokenKey {
  constructor(
    private readonly p: typeof Pkcs11Js,
    private readonly lib: Pkcs11Js.PKCS11,
    private readonly session: Buffer,
    readonly label: string,
  ) {}

  find(): Buffer | null {
    const { p, lib, session } = this;
    lib.C_FindObjectsInit(session, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_LABEL, value: this.label },
    ]);
    try {
      return lib.C_FindObjects(session);
    } finally {
      lib.C_FindObjectsFinal(session);
    }
  }

  /** The wrapping key; made on the token (never extractable) when `create` and absent. */
  key(create: boolean): Buffer {
    const found = this.find();
    if (found) return found;
    if (!create) throw new Pkcs11Refused(`the PKCS#11 token holds no key labelled ${this.label} (NEXUS_PKCS11_KEY_LABEL)`);
    const { p, lib, session } = this;
    return lib.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_LABEL, value: this.label },
      { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_TOKEN, value: true },
      { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: true },
      { type: p.CKA_EXTRACTABLE, value: false },
      { type: p.CKA_ENCRYPT, value: true },
      { type: p.CKA_DECRYPT, value: true },
    ]);
  }

  private gcm(iv: Buffer): Pkcs11Js.Mechanism {
    return { mechanism: this.p.CKM_AES_GCM, parameter: { type: this.p.CK_PARAMS_AES_GCM, iv, aad: AD, ivBits: IV_BYTES * 8, tagBits: 128 } as Pkcs11Js.AesGCM };
  }

  wrap(key: Buffer, plain: Buffer): { iv: Buffer; wrapped: Buffer } {
    const iv = randomBytes(IV_BYTES);
    this.lib.C_EncryptInit(this.session, this.gcm(iv), key);
    const wrapped = Buffer.from(this.lib.C_Encrypt(this.session, plain, Buffer.alloc(plain.length + 16)));
    return { iv, wrapped };
  }

  unwrap(key: Buffer, iv: Buffer, wrapped: Buffer): Buffer {
    this.lib.C_DecryptInit(this.session, this.gcm(iv), key);
    const out = Buffer.alloc(wrapped.length);
    try {
      const plain = this.lib.C_Decrypt(this.session, wrapped, out);
      const copy = Buffer.alloc(plain.length);
      plain.copy(copy);
      return copy;
    } catch (err) {
      throw new Pkcs11Refused(`the PKCS#11 key ${this.label} does not open the sealed root key (${ckr(err)}): another key of that label?`);
    } finally {
      out.fill(0);
    }
  }
}
