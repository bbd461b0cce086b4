import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../errors.js';
import { fail, parseConfig, z } from '../schema.js';
import { readSettings, SETTINGS, type Env, type Setting, type Settings } from './settings.js';

export { LOG_LEVELS, type Env, type ListenAddr } from './settings.js';

/** Sections of the config file that the core keeps for a plugin to validate (oidc.issuers, oidc.roles). */
const SeedSection = z.record(z.string(), z.unknown()).describe('a mapping of name -> settings');

const FileValue = z.union([z.string(), z.number(), z.boolean()]).describe('a string, number or boolean');

const RootKeyRefused = z.unknown().check((ctx) => fail(ctx, 'the root key never goes in the config file: use NEXUS_ROOT_KEY_FILE or NEXUS_ROOT_KEY'));

/**
 * The NEXUS_CONFIG file (YAML or JSON): every setting of the table that has
 * a file key (dotted keys nest), plus the OIDC seed sections.
 */
export const ConfigFileSchema = (() => {
  const top: Record<string, z.ZodType> = { root_key: RootKeyRefused.optional(), root_key_b64: RootKeyRefused.optional() };
  const groups: Record<string, Record<string, z.ZodType>> = { oidc: { issuers: SeedSection.optional(), roles: SeedSection.optional() } };
  for (const s of Object.values(SETTINGS) as Setting[]) {
    if (!s.file) continue;
    const [a, b] = s.file.split('.') as [string, string?];
    if (b) (groups[a] ??= {})[b] = FileValue.optional();
    else top[a] = FileValue.optional();
  }
  for (const [g, shape] of Object.entries(groups)) top[g] = z.strictObject(shape).optional();
  return z.strictObject(top);
})();

interface FileSettings {
  /** Env-shaped values: variable -> string. */
  values: Record<string, string>;
  /** Variable -> file key, for error messages. */
  origin: Record<string, string>;
  seed: { issuers: Record<string, unknown>; roles: Record<string, unknown> };
}

/** Reads NEXUS_CONFIG into env-shaped values; relative paths are relative to the file. */
function readConfigFile(file: string): FileSettings {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError('NEXUS_CONFIG', `cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('NEXUS_CONFIG', `${file} must hold a mapping of settings`);
  const parsed = parseConfig(ConfigFileSchema, doc, (field) => field, ` (in ${file})`) as Record<string, unknown>;
  const out: FileSettings = { values: {}, origin: {}, seed: { issuers: {}, roles: {} } };
  const oidc = parsed.oidc as { issuers?: Record<string, unknown>; roles?: Record<string, unknown> } | undefined;
  out.seed = { issuers: oidc?.issuers ?? {}, roles: oidc?.roles ?? {} };
  const dir = path.dirname(file);
  for (const s of Object.values(SETTINGS) as Setting[]) {
    if (!s.file) continue;
    const [a, b] = s.file.split('.') as [string, string?];
    const v = b ? (parsed[a] as Record<string, unknown> | undefined)?.[b] : parsed[a];
    if (v === undefined) continue;
    out.values[s.env] = s.path ? path.resolve(dir, String(v)) : String(v);
    out.origin[s.env] = `${s.file} (in ${file})`;
  }
  return out;
}

export type TlsFiles = { ca: string; cert: string; key: string };

/** Settings that mean nothing apart: all or none; a missing one is named. */
function together(s: Settings, names: Array<'tlsCa' | 'tlsCert' | 'tlsKey' | 'oidcTlsCert' | 'oidcTlsKey'>): boolean {
  const given = names.map((n) => s[n] !== null);
  if (given.every(Boolean)) return true;
  if (!given.some(Boolean)) return false;
  const envs = names.map((n) => SETTINGS[n].env);
  throw new ConfigError(envs[given.indexOf(false)]!, `${envs.slice(0, -1).join(', ')} and ${envs.at(-1)} must be set together`);
}

/** A per-IP connection cap above its port's global cap would be no cap at all. */
function perIpWithinGlobal(s: Settings): void {
  for (const [perIp, max] of [['mtlsMaxConnectionsPerIp', 'mtlsMaxConnections'], ['oidcMaxConnectionsPerIp', 'oidcMaxConnections']] as const) {
    if (s[perIp] > s[max]) throw new ConfigError(SETTINGS[perIp].env, `must not exceed ${SETTINGS[max].env} (${s[max]})`);
  }
}

/** The settings plus what follows from them (defaults derived from other settings, file pairs). */
function derive(s: Settings, cwd: string, seed: FileSettings['seed']) {
  perIpWithinGlobal(s);
  const abs = (p: string | null) => path.resolve(cwd, p!);
  const dataDir = abs(s.dataDir);
  const tls: TlsFiles | null = together(s, ['tlsCa', 'tlsCert', 'tlsKey']) ? { ca: abs(s.tlsCa), cert: abs(s.tlsCert), key: abs(s.tlsKey) } : null;
  if (s.spiffeSocket && tls) throw new ConfigError(SETTINGS.spiffeSocket.env, 'takes the server SVID from the Workload API: do not set NEXUS_TLS_* with it');
  if (s.auditSyslogCa !== null && s.auditSyslog?.protocol !== 'tls') throw new ConfigError(SETTINGS.auditSyslogCa.env, 'is for tls:// forwarding: set NEXUS_AUDIT_SYSLOG=tls://host:port with it');
  const oidcTls = together(s, ['oidcTlsCert', 'oidcTlsKey']) ? { cert: abs(s.oidcTlsCert), key: abs(s.oidcTlsKey) } : null;
  return {
    ...s,
    dataDir,
    dbFile: path.join(dataDir, 'nexus.db'),
    // Stable across restarts of the same data dir, distinct between replicas on one host.
    replicaId: s.replicaId ?? `${os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 48)}-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`,
    rootKeyFile: abs(s.rootKeyFile ?? path.join(dataDir, 'root.key')),
    adminSpiffeId: s.adminSpiffeId ?? `spiffe://${s.trustDomain}/pilot`,
    /** null: use (and create on first start) the dev PKI under dataDir/pki. */
    tls,
    /** The OIDC port's own certificate (e.g. publicly trusted); null: the server SVID, as on the mTLS port. */
    oidcTls,
    /** Issuers and roles to seed at start (NEXUS_CONFIG oidc.issuers / oidc.roles), validated by the OIDC plugin. */
    oidcSeed: seed,
    /** The config file, if one was given. */
    configFile: s.configFile === null ? null : abs(s.configFile),
    auditSyslogCa: s.auditSyslogCa === null ? null : abs(s.auditSyslogCa),
  };
}

/** Every setting Nexus reads, parsed and validated once at start-up. */
export type Config = ReturnType<typeof derive>;

/** Env over config file over defaults; a bad value names its env variable or file key. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const file = env.NEXUS_CONFIG ? path.resolve(cwd, env.NEXUS_CONFIG) : null;
  const fromFile: FileSettings = file ? readConfigFile(file) : { values: {}, origin: {}, seed: { issuers: {}, roles: {} } };
  const merged: Env = { ...fromFile.values };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') merged[k] = v;
  try {
    return derive(readSettings(merged), cwd, fromFile.seed);
  } catch (err) {
    if (err instanceof ConfigError && fromFile.origin[err.key] && (env[err.key] === undefined || env[err.key] === '')) {
      throw new ConfigError(fromFile.origin[err.key]!, err.message.replace(/^invalid configuration [^:]+: /, ''));
    }
    throw err;
  }
}
