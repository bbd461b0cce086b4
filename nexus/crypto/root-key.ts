import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { KEY_BYTES, randomKey } from './aead.js';
import { sodium } from './sodium.js';

/** The root key wraps every data key. Its bytes never reach a log line. */
export interface RootKey {
  readonly bytes: Buffer;
  /** Key check value: a keyed hash of a constant, safe to store and show. */
  readonly kcv: string;
  readonly source: 'env' | 'file' | 'shamir' | 'pkcs11';
}

export function keyCheckValue(key: Uint8Array): string {
  return Buffer.from(sodium().crypto_generichash(16, 'nexus/key-check/v1', key)).toString('hex');
}

export function makeRootKey(bytes: Buffer, source: RootKey['source']): RootKey {
  return { bytes, kcv: keyCheckValue(bytes), source };
}

export function readKeyFile(file: string): Buffer {
  const text = fs.readFileSync(file, 'utf8').trim();
  const bytes = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || bytes.length !== KEY_BYTES) {
    throw new StartupError(`root key file ${file} does not hold a base64 ${KEY_BYTES}-byte key`);
  }
  return bytes;
}

/** Write a key file so that a crash leaves either the old file or the complete new one. */
export function writeKeyFileAtomic(file: string, key: Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
  try {
    fs.writeSync(fd, `${key.toString('base64')}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * NEXUS_ROOT_KEY wins; otherwise the key file, created (mode 0600) on first
 * start. Whether the key fits the database is checked later, by the keyring.
 */
export function loadRootKey(config: Config, log: Logger): RootKey {
  if (config.rootKeyInline) return makeRootKey(config.rootKeyInline, 'env');
  const file = config.rootKeyFile;
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeKeyFileAtomic(file, randomKey());
    log.info({ file }, 'created a new root key file (mode 0600); back it up apart from the database');
  }
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) log.warn({ file, mode: mode.toString(8) }, 'root key file is readable by group or others');
  return makeRootKey(readKeyFile(file), 'file');
}

/** The root key as configured, or null when there is none yet (for scripts, which never create one). */
export function readRootKey(config: Config): RootKey | null {
  if (config.rootKeyInline) return makeRootKey(config.rootKeyInline, 'env');
  return fs.existsSync(config.rootKeyFile) ? makeRootKey(readKeyFile(config.rootKeyFile), 'file') : null;
}
