import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../errors.js';

export interface ListenAddr {
  host: string;
  /** 0 = any free port. */
  port: number;
}

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** Every setting Nexus reads, parsed and validated once at start-up. */
export interface Config {
  dataDir: string;
  dbFile: string;
  mtlsAddr: ListenAddr;
  /** null: the OIDC plugin is off. */
  oidcAddr: ListenAddr | null;
  trustDomain: string;
  rootKeyFile: string;
  /** The root key given inline (NEXUS_ROOT_KEY); wins over the file. */
  rootKeyInline: Buffer | null;
  /** null: use (and create on first start) the dev PKI under dataDir/pki. */
  tls: TlsFiles | null;
  /** The OIDC port's own certificate (e.g. publicly trusted); null: the server SVID, as on the mTLS port. */
  oidcTls: { cert: string; key: string } | null;
  /** The Vault-compatible CI routes on the OIDC port (NEXUS_OIDC_VAULT_COMPAT). */
  oidcVaultCompat: boolean;
  adminSpiffeId: string;
  autoMigrate: boolean;
  maxVersions: number;
  oidcSubjectRps: number;
  oidcFailedAuthRps: number;
  logLevel: string;
  /** Issuers and roles to seed at start (NEXUS_CONFIG oidc.issuers / oidc.roles), validated by the OIDC plugin. */
  oidcSeed: { issuers: Record<string, unknown>; roles: Record<string, unknown> };
  /** The config file, if one was given. */
  configFile: string | null;
}

export type Env = Record<string, string | undefined>;

function parseAddr(key: string, raw: string): ListenAddr {
  // host:port, [v6]:port
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(raw);
  if (!m) throw new ConfigError(key, `expected host:port, got ${JSON.stringify(raw)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(key, `port ${port} is out of range`);
  const host = m[1] ?? (m[2] || '127.0.0.1');
  return { host, port };
}

function parseBool(key: string, raw: string): boolean {
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(key, `expected true or false, got ${JSON.stringify(raw)}`);
}

function parseOnOff(key: string, raw: string): boolean {
  if (/^(on|true|1|yes)$/i.test(raw)) return true;
  if (/^(off|false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(key, `expected on or off, got ${JSON.stringify(raw)}`);
}

function parsePositive(key: string, raw: string, max: number): number {
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(n > 0) || n > max) {
    throw new ConfigError(key, `expected a number in (0, ${max}], got ${JSON.stringify(raw)}`);
  }
  return n;
}

// SPIFFE: trust domain is lowercase letters, digits, '.', '-', '_'.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

function parseRootKey(raw: string): Buffer {
  const b = Buffer.from(raw, 'base64');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw.trim()) || b.length !== 32) {
    // Never echo the value: it is (or is meant to be) the root key.
    throw new ConfigError('NEXUS_ROOT_KEY', 'expected 32 bytes, base64-encoded');
  }
  return b;
}

/** Config file keys and the env variables they stand for (env wins). */
const FILE_KEYS: Record<string, string> = {
  data_dir: 'NEXUS_DATA_DIR',
  mtls_addr: 'NEXUS_MTLS_ADDR',
  oidc_addr: 'NEXUS_OIDC_ADDR',
  trust_domain: 'NEXUS_TRUST_DOMAIN',
  root_key_file: 'NEXUS_ROOT_KEY_FILE',
  admin_spiffe_id: 'NEXUS_ADMIN_SPIFFE_ID',
  auto_migrate: 'NEXUS_AUTO_MIGRATE',
  max_versions: 'NEXUS_MAX_VERSIONS',
  log_level: 'NEXUS_LOG_LEVEL',
  'tls.ca': 'NEXUS_TLS_CA',
  'tls.cert': 'NEXUS_TLS_CERT',
  'tls.key': 'NEXUS_TLS_KEY',
  'oidc.subject_rps': 'NEXUS_OIDC_SUBJECT_RPS',
  'oidc.failed_auth_rps': 'NEXUS_OIDC_FAILED_AUTH_RPS',
  'oidc.tls_cert': 'NEXUS_OIDC_TLS_CERT',
  'oidc.tls_key': 'NEXUS_OIDC_TLS_KEY',
  'oidc.vault_compat': 'NEXUS_OIDC_VAULT_COMPAT',
};
const PATH_KEYS = new Set(['data_dir', 'root_key_file', 'tls.ca', 'tls.cert', 'tls.key', 'oidc.tls_cert', 'oidc.tls_key']);

interface FileSettings {
  values: Record<string, string>;
  /** env name -> file key, for error messages. */
  origin: Record<string, string>;
  seed: Config['oidcSeed'];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads NEXUS_CONFIG (YAML or JSON) into env-shaped values; relative paths are relative to the file. */
function readConfigFile(file: string): FileSettings {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError('NEXUS_CONFIG', `cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObject(doc)) throw new ConfigError('NEXUS_CONFIG', `${file} must hold a mapping of settings`);
  const out: FileSettings = { values: {}, origin: {}, seed: { issuers: {}, roles: {} } };
  const dir = path.dirname(file);
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const key = `${prefix}${k}`;
      if (key === 'root_key' || key === 'root_key_b64') throw new ConfigError(key, 'the root key never goes in the config file: use NEXUS_ROOT_KEY_FILE or NEXUS_ROOT_KEY');
      if (key === 'oidc.issuers' || key === 'oidc.roles') {
        if (!isObject(v)) throw new ConfigError(key, 'must be a mapping of name -> settings');
        out.seed[k as 'issuers' | 'roles'] = v;
        continue;
      }
      if ((key === 'tls' || key === 'oidc') && isObject(v)) {
        walk(v, `${key}.`);
        continue;
      }
      const envName = FILE_KEYS[key];
      if (!envName) throw new ConfigError(key, `unknown setting in ${file}`);
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ConfigError(key, 'must be a string, number or boolean');
      out.values[envName] = PATH_KEYS.has(key) ? path.resolve(dir, String(v)) : String(v);
      out.origin[envName] = `${key} (in ${file})`;
    }
  };
  walk(doc, '');
  return out;
}

/** Env over config file over defaults; a bad value names its env variable or file key. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const file = env.NEXUS_CONFIG ? path.resolve(cwd, env.NEXUS_CONFIG) : null;
  const settings = file ? readConfigFile(file) : { values: {}, origin: {}, seed: { issuers: {}, roles: {} } };
  const merged: Env = { ...settings.values };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') merged[k] = v;
  try {
    return { ...parseEnv(merged, cwd), oidcSeed: settings.seed, configFile: file };
  } catch (err) {
    if (err instanceof ConfigError && settings.origin[err.key] && (env[err.key] === undefined || env[err.key] === '')) {
      throw new ConfigError(settings.origin[err.key]!, err.message.replace(/^invalid configuration [^:]+: /, ''));
    }
    throw err;
  }
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

function parseEnv(env: Env, cwd: string): Omit<Config, 'oidcSeed' | 'configFile'> {
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v === '' ? undefined : v;
  };
  const dataDir = path.resolve(cwd, get('NEXUS_DATA_DIR') ?? '.nexus');
  const trustDomain = get('NEXUS_TRUST_DOMAIN') ?? 'nexus.local';
  if (!TRUST_DOMAIN.test(trustDomain) || trustDomain.length > 255) {
    throw new ConfigError('NEXUS_TRUST_DOMAIN', 'lowercase letters, digits, ".", "-" and "_" only');
  }
  const oidcRaw = get('NEXUS_OIDC_ADDR') ?? '127.0.0.1:8554';
  const tlsCa = get('NEXUS_TLS_CA');
  const tlsCert = get('NEXUS_TLS_CERT');
  const tlsKey = get('NEXUS_TLS_KEY');
  let tls: TlsFiles | null = null;
  if (tlsCa || tlsCert || tlsKey) {
    for (const [k, v] of [['NEXUS_TLS_CA', tlsCa], ['NEXUS_TLS_CERT', tlsCert], ['NEXUS_TLS_KEY', tlsKey]] as const) {
      if (!v) throw new ConfigError(k, 'NEXUS_TLS_CA, NEXUS_TLS_CERT and NEXUS_TLS_KEY must be set together');
    }
    tls = { ca: path.resolve(cwd, tlsCa!), cert: path.resolve(cwd, tlsCert!), key: path.resolve(cwd, tlsKey!) };
  }
  const oidcCert = get('NEXUS_OIDC_TLS_CERT');
  const oidcKey = get('NEXUS_OIDC_TLS_KEY');
  if (Boolean(oidcCert) !== Boolean(oidcKey)) {
    throw new ConfigError(oidcCert ? 'NEXUS_OIDC_TLS_KEY' : 'NEXUS_OIDC_TLS_CERT', 'NEXUS_OIDC_TLS_CERT and NEXUS_OIDC_TLS_KEY must be set together');
  }
  const oidcTls = oidcCert && oidcKey ? { cert: path.resolve(cwd, oidcCert), key: path.resolve(cwd, oidcKey) } : null;
  const adminSpiffeId = get('NEXUS_ADMIN_SPIFFE_ID') ?? `spiffe://${trustDomain}/pilot`;
  if (!adminSpiffeId.startsWith('spiffe://')) {
    throw new ConfigError('NEXUS_ADMIN_SPIFFE_ID', 'must be a spiffe:// ID');
  }
  const rootKeyRaw = get('NEXUS_ROOT_KEY');
  const maxVersionsRaw = get('NEXUS_MAX_VERSIONS') ?? '10';
  const maxVersions = parsePositive('NEXUS_MAX_VERSIONS', maxVersionsRaw, 1000);
  if (!Number.isInteger(maxVersions)) throw new ConfigError('NEXUS_MAX_VERSIONS', 'must be an integer');
  return {
    dataDir,
    dbFile: path.join(dataDir, 'nexus.db'),
    mtlsAddr: parseAddr('NEXUS_MTLS_ADDR', get('NEXUS_MTLS_ADDR') ?? '127.0.0.1:8553'),
    oidcAddr: oidcRaw === 'off' ? null : parseAddr('NEXUS_OIDC_ADDR', oidcRaw),
    trustDomain,
    rootKeyFile: path.resolve(cwd, get('NEXUS_ROOT_KEY_FILE') ?? path.join(dataDir, 'root.key')),
    rootKeyInline: rootKeyRaw ? parseRootKey(rootKeyRaw) : null,
    tls,
    oidcTls,
    oidcVaultCompat: parseOnOff('NEXUS_OIDC_VAULT_COMPAT', get('NEXUS_OIDC_VAULT_COMPAT') ?? 'on'),
    adminSpiffeId,
    autoMigrate: parseBool('NEXUS_AUTO_MIGRATE', get('NEXUS_AUTO_MIGRATE') ?? 'true'),
    maxVersions,
    oidcSubjectRps: parsePositive('NEXUS_OIDC_SUBJECT_RPS', get('NEXUS_OIDC_SUBJECT_RPS') ?? '100', 1e6),
    oidcFailedAuthRps: parsePositive('NEXUS_OIDC_FAILED_AUTH_RPS', get('NEXUS_OIDC_FAILED_AUTH_RPS') ?? '10', 1e6),
    logLevel: (() => {
      const l = get('NEXUS_LOG_LEVEL') ?? 'info';
      if (!LOG_LEVELS.includes(l)) throw new ConfigError('NEXUS_LOG_LEVEL', `one of ${LOG_LEVELS.join(', ')}`);
      return l;
    })(),
  };
}
