import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Pkcs11Js from 'pkcs11js';
import { tempDir } from './env.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftToken {
  dir: string;
  /** The env a pkcs11-sealed server or script runs with. */
  env: Record<string, string>;
}

/**
 * A SoftHSM2 token of its own (a temp dir, SOFTHSM2_CONF), user PIN 1234.
 * A missing softhsm2 fails the test (.ci/run installs it): never a skip.
 */
export function initSoftToken(label = 'nexus'): SoftToken {
  if (!fs.existsSync(SOFTHSM_MODULE)) throw new Error(`SoftHSM2 is not installed (${SOFTHSM_MODULE}): apt-get install softhsm2`);
  const dir = tempDir('nexus-softhsm');
  fs.mkdirSync(path.join(dir, 'tokens'));
  const conf = path.join(dir, 'softhsm2.conf');
  fs.writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', '1234', '--so-pin', '5678'], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' });
  return {
    dir,
    env: { SOFTHSM2_CONF: conf, NEXUS_SEAL: 'pkcs11', NEXUS_PKCS11_MODULE: SOFTHSM_MODULE, NEXUS_PKCS11_TOKEN_LABEL: label, NEXUS_PKCS11_PIN: '1234' },
  };
}

/** Removes the wrapping key from the token (as a lost or wiped HSM key would). */
export function destroyTokenKey(token: SoftToken, keyLabel = 'nexus-root-wrap'): void {
  const saved = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
  const p = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Js;
  const lib = new p.PKCS11();
  lib.load(SOFTHSM_MODULE);
  lib.C_Initialize();
  try {
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === token.env.NEXUS_PKCS11_TOKEN_LABEL)!;
    const session = lib.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    lib.C_Login(session, p.CKU_USER, '1234');
    lib.C_FindObjectsInit(session, [{ type: p.CKA_LABEL, value: keyLabel }]);
    const h = lib.C_FindObjects(session);
    lib.C_FindObjectsFinal(session);
    if (!h) throw new Error(`no key ${keyLabel} on the token`);
    lib.C_DestroyObject(session, h);
    lib.C_Logout(session);
    lib.C_CloseSession(session);
  } finally {
    lib.C_Finalize();
    if (saved === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = saved;
  }
}
