import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { readKeyFile } from '../crypto/root-key.js';
import { ConfigError, NexusError } from '../errors.js';
import type { Config } from './index.js';

function readNamed(key: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(key, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function certificates(key: string, file: string): X509Certificate[] {
  const blocks = readNamed(key, file).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError(key, `${file} holds no certificate (PEM)`);
  return blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new ConfigError(key, `${file}: certificate ${i + 1} does not parse: ${(err as Error).message}`);
    }
  });
}

function privateKey(key: string, file: string): KeyObject {
  try {
    return createPrivateKey(readNamed(key, file));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // The parser's message names no key material.
    throw new ConfigError(key, `${file} is not a private key (PEM): ${(err as Error).message}`);
  }
}

/**
 * Every file the configuration names exists, is readable and parses; the TLS
 * certificate and key are a pair. Reads only: `nexus --check-config` and
 * start-up run it before anything is created, so a bad config fails before
 * anything is written to disk.
 */
export function checkConfigFiles(config: Config): void {
  if (config.tls) {
    certificates('NEXUS_TLS_CA', config.tls.ca);
    const [leaf] = certificates('NEXUS_TLS_CERT', config.tls.cert);
    const key = privateKey('NEXUS_TLS_KEY', config.tls.key);
    if (!leaf!.checkPrivateKey(key)) throw new ConfigError('NEXUS_TLS_KEY', `${config.tls.key} does not match the certificate in ${config.tls.cert}`);
  }
  if (config.auditSyslogCa) certificates('NEXUS_AUDIT_SYSLOG_CA', config.auditSyslogCa);
  if (!config.rootKeyInline && fs.existsSync(config.rootKeyFile)) {
    readNamed('NEXUS_ROOT_KEY_FILE', config.rootKeyFile);
    try {
      readKeyFile(config.rootKeyFile);
    } catch (err) {
      throw new ConfigError('NEXUS_ROOT_KEY_FILE', err instanceof NexusError ? err.message : String(err));
    }
  }
}
