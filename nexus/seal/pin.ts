import fs from 'node:fs';
import type { Config } from '../config/index.js';
import { StartupError } from '../errors.js';
import type { Pkcs11Options } from './pkcs11.js';

/** The token settings of a pkcs11 config (validated by loadConfig), with the PIN read now. */
export function pkcs11Options(config: Config): Pkcs11Options {
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
