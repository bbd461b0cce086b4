import fs from 'node:fs';
import type { Config } from '../config/index.js';
import { StartupError } from '../errors.js';
import type { Pkcs11Options } from './pkcs11.js';

/** The token settings of a pkcs11 config (validated by loadConfig), with the PIN read now. */
export function pkcs11Options(config: Config): Pkcs11Options {
  // NEXUS_SEAL=pkcs11 checks these at load; a migration to or from pkcs11 may run under another NEXUS_SEAL.
  if (config.pkcs11Module === null) throw new StartupError('NEXUS_PKCS11_MODULE is needed to open or make a pkcs11 seal');
  if (config.pkcs11TokenLabel === null && config.pkcs11Slot === null) throw new StartupError('NEXUS_PKCS11_TOKEN_LABEL (or NEXUS_PKCS11_SLOT) is needed to open or make a pkcs11 seal');
  if (config.pkcs11Pin === null && config.pkcs11PinFile === null) throw new StartupError('NEXUS_PKCS11_PIN (or NEXUS_PKCS11_PIN_FILE) is needed to open or make a pkcs11 seal');
  let pin = config.pkcs11Pin;
  if (pin === null) {
    try {
      pin = fs.readFileSync(config.pkcs11PinFile!, 'utf8').trim();
    } catch (err) {
      throw new StartupError(`NEXUS_PKCS11_PIN_FILE ${config.pkcs11PinFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return { module: config.pkcs11Module!, tokenLabel: config.pkcs11TokenLabel, slot: config.pkcs11Slot, pin, keyLabel: config.pkcs11KeyLabel };
}
