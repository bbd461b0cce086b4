import { ConfigError } from '../errors.js';
import { fail, violation, z } from '../schema.js';
import { socketTarget } from '../spiffe/endpoint.js';
import { parseSyslogTarget } from '../audit/syslog-target.js';

/**
 * Every environment setting Nexus reads, once: its variable, its config file
 * key, its default, what README's settings table says about it, and the
 * schema that turns the string into a typed value. Start-up, `nexus
 * --check-config` and the README table (test/config/settings.test.ts) all
 * come from this table. To add a setting, add a row here and to README.
 */
export interface Setting<V = unknown> {
  env: string;
  /** Its key in the NEXUS_CONFIG file (dotted = nested); none: env only. */
  file?: string;
  /** The raw default, parsed like any value; none: unset gives null (or a default derived from other settings). */
  default?: string;
  /** README's "default" cell, when it is not the raw default in backticks (or "unset"). */
  shown?: string;
  /** README's "meaning" column. */
  doc: string;
  schema: z.ZodType<V, string>;
  /** A file path: relative to the working directory (or, in the config file, to the file). */
  path?: true;
  /** Never echoed in an error message. */
  secret?: true;
}

function setting<T>(s: Setting<T> & { default: string }): Setting<T> & { default: string };
function setting<T>(s: Omit<Setting<T>, 'default'>): Setting<T>;
function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

const ADDR = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/;

/** `host:port` or `[v6]:port`; an empty host is 127.0.0.1, port 0 any free port. */
function parseAddr(raw: string, ctx: { issues: unknown[] }): { host: string; port: number } {
  const m = ADDR.exec(raw);
  const port = Number(m?.[3]);
  if (!m) fail(ctx, `expected host:port, got ${JSON.stringify(raw)}`);
  else if (port > 65535) fail(ctx, `port ${port} is out of range`);
  else return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
  return z.NEVER;
}

export const ListenAddrSchema = z.string().transform(parseAddr);
export type ListenAddr = z.output<typeof ListenAddrSchema>;

const TRUE = /^(true|1|yes)$/i;
const bool = z
  .string()
  .regex(/^(true|1|yes|false|0|no)$/i)
  .transform((v) => TRUE.test(v))
  .describe('true or false');

const onOff = z
  .string()
  .regex(/^(on|true|1|yes|off|false|0|no)$/i)
  .transform((v) => /^(on|true|1|yes)$/i.test(v))
  .describe('on or off');

const positive = (max: number) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/)
    .transform(Number)
    .pipe(z.number().gt(0).max(max))
    .describe(`a number in (0, ${max}]`);

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/)
    .transform(Number)
    .pipe(z.int().min(min).max(max))
    .describe(`an integer from ${min} to ${max}`);

const filePath = z.string().min(1).describe('a file path');

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

export const SETTINGS = {
  dataDir: setting({ env: 'NEXUS_DATA_DIR', file: 'data_dir', default: '.nexus', shown: '`./.nexus`', path: true, schema: filePath, doc: 'db, root key (dev), dev PKI, audit trail' }),
  mtlsAddr: setting({ env: 'NEXUS_MTLS_ADDR', file: 'mtls_addr', default: '127.0.0.1:8553', schema: ListenAddrSchema, doc: 'mTLS listener `host:port` (`:0` = any free port)' }),
  trustDomain: setting({
    env: 'NEXUS_TRUST_DOMAIN',
    file: 'trust_domain',
    default: 'nexus.local',
    // SPIFFE: a trust domain is lowercase letters, digits, '.', '-', '_'.
    schema: z.string().max(255).regex(/^[a-z0-9._-]+$/).describe('lowercase letters, digits, ".", "-" and "_" only'),
    doc: 'SPIFFE trust domain',
  }),
  tlsCa: setting({ env: 'NEXUS_TLS_CA', file: 'tls.ca', shown: 'dev PKI `ca.crt`', path: true, schema: filePath, doc: 'trust bundle (PEM, one or more CAs) for client SVIDs; `NEXUS_TLS_*`: all three or none' }),
  tlsCert: setting({ env: 'NEXUS_TLS_CERT', file: 'tls.cert', shown: 'dev PKI `server.crt`', path: true, schema: filePath, doc: 'server SVID certificate; reloaded when the file changes' }),
  tlsKey: setting({ env: 'NEXUS_TLS_KEY', file: 'tls.key', shown: 'dev PKI `server.key`', path: true, schema: filePath, doc: 'server SVID key; reloaded when the file changes' }),
  spiffeSocket: setting({
    env: 'NEXUS_SPIFFE_SOCKET',
    file: 'spiffe_socket',
    schema: z.string().transform((raw, ctx) => {
      const t = socketTarget(raw);
      if (typeof t === 'string') return t;
      fail(ctx, t.invalid);
      return z.NEVER;
    }),
    doc: 'take the server SVID and bundle from this SPIFFE Workload API socket (`unix:///path`) instead of files, following rotations; not with `NEXUS_TLS_*`',
  }),
  adminSpiffeId: setting({
    env: 'NEXUS_ADMIN_SPIFFE_ID',
    file: 'admin_spiffe_id',
    shown: '`spiffe://<td>/pilot`',
    schema: z.string().startsWith('spiffe://').describe('a spiffe:// ID'),
    doc: 'identity holding the built-in admin policy',
  }),
  oidcAddr: setting({
    env: 'NEXUS_OIDC_ADDR',
    file: 'oidc_addr',
    default: '127.0.0.1:8554',
    schema: z.string().transform((raw, ctx) => (raw === 'off' ? null : parseAddr(raw, ctx))),
    doc: 'OIDC listener; `off` disables the plugin',
  }),
  oidcSubjectRps: setting({ env: 'NEXUS_OIDC_SUBJECT_RPS', file: 'oidc.subject_rps', default: '100', schema: positive(1e6), doc: 'per tenant (the repository or project a role binds): requests/s refill, burst 5x' }),
  oidcTokenPurgeIntervalMs: setting({
    env: 'NEXUS_OIDC_TOKEN_PURGE_INTERVAL_MS',
    file: 'oidc.token_purge_interval_ms',
    default: '60000',
    schema: integer(100, 86_400_000),
    doc: 'how often expired exchanged tokens are pruned, in batches (100 to 86400000)',
  }),
  oidcFailedAuthRps: setting({ env: 'NEXUS_OIDC_FAILED_AUTH_RPS', file: 'oidc.failed_auth_rps', default: '10', schema: positive(1e6), doc: 'per client IP: failed authentications/s, burst 5x' }),
  oidcTlsCert: setting({
    env: 'NEXUS_OIDC_TLS_CERT',
    file: 'oidc.tls_cert',
    shown: 'the server SVID',
    path: true,
    schema: filePath,
    doc: 'the OIDC port\'s own certificate (e.g. publicly trusted for `nexus.example.com`); with `NEXUS_OIDC_TLS_KEY`, both or neither; reloaded when the files change',
  }),
  oidcTlsKey: setting({ env: 'NEXUS_OIDC_TLS_KEY', file: 'oidc.tls_key', shown: 'the server SVID', path: true, schema: filePath, doc: 'the key of `NEXUS_OIDC_TLS_CERT`' }),
  oidcVaultCompat: setting({ env: 'NEXUS_OIDC_VAULT_COMPAT', file: 'oidc.vault_compat', default: 'on', schema: onOff, doc: '`off` removes the Vault-compatible CI routes from the OIDC port' }),
  rootKeyFile: setting({ env: 'NEXUS_ROOT_KEY_FILE', file: 'root_key_file', shown: '`$NEXUS_DATA_DIR/root.key`', path: true, schema: filePath, doc: 'created (mode 0600) on first start if absent' }),
  rootKeyInline: setting({
    env: 'NEXUS_ROOT_KEY',
    secret: true,
    schema: z.string().transform((raw, ctx) => {
      const b = Buffer.from(raw, 'base64');
      // Never echo the value: it is (or is meant to be) the root key.
      if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw.trim()) && b.length === 32) return b;
      fail(ctx, 'expected 32 bytes, base64-encoded');
      return z.NEVER;
    }),
    doc: 'the root key as base64; wins over the file',
  }),
  seal: setting({
    env: 'NEXUS_SEAL',
    file: 'seal',
    default: 'file',
    schema: z.enum(['file', 'shamir', 'pkcs11']).describe('file, shamir or pkcs11'),
    doc: 'where the root key comes from: `file` (the key file or `NEXUS_ROOT_KEY`), `shamir` (start sealed, unseal with a quorum of shares), `pkcs11` (unwrapped at start by a key on an HSM or TPM)',
  }),
  pkcs11Module: setting({ env: 'NEXUS_PKCS11_MODULE', file: 'pkcs11.module', path: true, schema: filePath, doc: '`NEXUS_SEAL=pkcs11`: the PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`)' }),
  pkcs11TokenLabel: setting({ env: 'NEXUS_PKCS11_TOKEN_LABEL', file: 'pkcs11.token_label', schema: z.string().regex(/^[A-Za-z0-9._:-]{1,32}$/).describe('1 to 32 of A-Z a-z 0-9 . _ : -'), doc: 'the token, by label (or `NEXUS_PKCS11_SLOT`)' }),
  pkcs11Slot: setting({ env: 'NEXUS_PKCS11_SLOT', file: 'pkcs11.slot', schema: integer(0, 2 ** 32 - 1), doc: 'the token, by slot id' }),
  pkcs11Pin: setting({ env: 'NEXUS_PKCS11_PIN', secret: true, schema: z.string().regex(/^[\x21-\x7e]{1,128}$/).describe('1 to 128 printable ASCII characters, no space'), doc: "the token user's PIN (env only; or `NEXUS_PKCS11_PIN_FILE`)" }),
  pkcs11PinFile: setting({ env: 'NEXUS_PKCS11_PIN_FILE', file: 'pkcs11.pin_file', path: true, schema: filePath, doc: 'a file holding the PIN' }),
  pkcs11KeyLabel: setting({ env: 'NEXUS_PKCS11_KEY_LABEL', file: 'pkcs11.key_label', default: 'nexus-root-wrap', schema: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/).describe('1 to 64 of A-Z a-z 0-9 . _ : -'), doc: 'the AES key on the token that wraps the root key (made by `nexus-operator init`, never extractable)' }),
  databaseUrl: setting({
    env: 'NEXUS_DATABASE_URL',
    file: 'database_url',
    // It may carry a password: never echoed.
    secret: true,
    schema: z.string().transform((raw, ctx) => {
      let url: URL | null = null;
      try {
        url = new URL(raw);
      } catch {
        /* reported below */
      }
      if (!url || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')) fail(ctx, 'expected a postgres:// URL');
      else if (url.pathname.length < 2) fail(ctx, 'the URL must name a database (postgres://user@host:5432/DBNAME)');
      else return raw;
      return z.NEVER;
    }),
    doc: '`postgres://...` selects the PostgreSQL backend (several replicas may share it); unset = SQLite in the data dir',
  }),
  replicaId: setting({
    env: 'NEXUS_REPLICA_ID',
    file: 'replica_id',
    shown: '`<host name>-<data dir digest>`',
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).describe('1 to 64 of A-Z a-z 0-9 . _ -'),
    doc: "this process's name among replicas: in every audit record, and its audit chain's anchor",
  }),
  autoMigrate: setting({ env: 'NEXUS_AUTO_MIGRATE', file: 'auto_migrate', default: 'true', schema: bool, doc: '`false`: refuse to start with pending migrations' }),
  maxVersions: setting({ env: 'NEXUS_MAX_VERSIONS', file: 'max_versions', default: '10', schema: integer(1, 1000), doc: 'versions kept per secret (1 to 1000)' }),
  logLevel: setting({ env: 'NEXUS_LOG_LEVEL', file: 'log_level', default: 'info', schema: z.enum(LOG_LEVELS).describe(`one of ${LOG_LEVELS.join(', ')}`), doc: 'bunyan level' }),
  tlsMinVersion: setting({
    env: 'NEXUS_TLS_MIN_VERSION',
    file: 'tls.min_version',
    default: '1.2',
    schema: z
      .enum(['1.2', '1.3'])
      .transform((v) => (v === '1.3' ? 'TLSv1.3' : 'TLSv1.2') as 'TLSv1.2' | 'TLSv1.3')
      .describe('1.2 or 1.3'),
    doc: 'both ports: `1.3` refuses TLS 1.2; TLS 1.2 offers AEAD suites only',
  }),
  handshakeTimeoutMs: setting({
    env: 'NEXUS_TLS_HANDSHAKE_TIMEOUT_MS',
    file: 'tls.handshake_timeout_ms',
    default: '5000',
    schema: integer(1, 120_000),
    doc: 'both ports: a connection that has not finished its TLS handshake by then is closed (1 to 120000)',
  }),
  mtlsMaxConnections: setting({ env: 'NEXUS_MTLS_MAX_CONNECTIONS', file: 'mtls.max_connections', default: '1024', schema: integer(1, 1_000_000), doc: 'mTLS port: concurrent connections' }),
  mtlsMaxConnectionsPerIp: setting({
    env: 'NEXUS_MTLS_MAX_CONNECTIONS_PER_IP',
    file: 'mtls.max_connections_per_ip',
    default: '256',
    schema: integer(1, 1_000_000),
    doc: 'mTLS port: concurrent connections per client IP (IPv6: per /64), enforced once half the global cap is in use; at most the global cap',
  }),
  oidcMaxConnections: setting({ env: 'NEXUS_OIDC_MAX_CONNECTIONS', file: 'oidc.max_connections', default: '512', schema: integer(1, 1_000_000), doc: 'OIDC port: concurrent connections' }),
  oidcMaxConnectionsPerIp: setting({
    env: 'NEXUS_OIDC_MAX_CONNECTIONS_PER_IP',
    file: 'oidc.max_connections_per_ip',
    default: '64',
    schema: integer(1, 1_000_000),
    doc: 'OIDC port: concurrent connections per client IP (IPv6: per /64), enforced once half the global cap is in use; at most the global cap',
  }),
  dbMaxLeasesPerCaller: setting({
    env: 'NEXUS_DB_MAX_LEASES_PER_CALLER',
    file: 'db.max_leases_per_caller',
    default: '10',
    schema: integer(1, 10_000),
    doc: 'database credentials: pending and active leases one exchanged token, or one mTLS SPIFFE ID, may hold; one more is a 429',
  }),
  signals: setting({
    env: 'NEXUS_SIGNALS',
    file: 'signals.enabled',
    default: 'on',
    schema: onOff,
    doc: '`off`: requests feed no access signals (new_path, denied_burst, read_spike, token_replay); config_change and audit_integrity stay',
  }),
  signalLearnS: setting({
    env: 'NEXUS_SIGNAL_LEARN_S',
    file: 'signals.learn_s',
    default: '604800',
    schema: integer(1, 31_536_000),
    doc: "access signals: a principal's learning window from its first request (seconds); no new_path or read_spike before it ends",
  }),
  signalDeniedBurst: setting({ env: 'NEXUS_SIGNAL_DENIED_BURST', file: 'signals.denied_burst', default: '20', schema: integer(2, 100_000), doc: 'denied_burst: this many denials (403; 401 on the OIDC port) ...' }),
  signalDeniedWindowS: setting({ env: 'NEXUS_SIGNAL_DENIED_WINDOW_S', file: 'signals.denied_window_s', default: '60', schema: integer(1, 86_400), doc: '... within this many seconds, from one principal or one client address' }),
  signalMaxPrincipals: setting({
    env: 'NEXUS_SIGNAL_MAX_PRINCIPALS',
    file: 'signals.max_principals',
    default: '4096',
    schema: integer(16, 1_000_000),
    doc: 'access signals: principals, client addresses and tokens each held in memory (least recently seen forgotten first; 128 paths per principal)',
  }),
  auditFsync: setting({
    env: 'NEXUS_AUDIT_FSYNC',
    file: 'audit.fsync',
    default: 'off',
    schema: z.enum(['off', 'batch']).describe('off or batch'),
    doc: 'audit trail durability: `off` = page cache (survives a crash of Nexus, not of the machine); `batch` = fsync each batch (and its anchor) before answering',
  }),
  auditMaxFiles: setting({
    env: 'NEXUS_AUDIT_MAX_FILES',
    file: 'audit.max_files',
    schema: integer(1, 1_000_000),
    doc: 'rotated audit files (64 MiB each) kept; the oldest beyond it are deleted, each deletion recorded in the trail; unset = keep all',
  }),
  auditSyslog: setting({
    env: 'NEXUS_AUDIT_SYSLOG',
    file: 'audit.syslog',
    schema: z
      .string()
      .transform((raw, ctx) => {
        const t = parseSyslogTarget(raw);
        if (!('invalid' in t)) return t;
        fail(ctx, t.invalid);
        return z.NEVER;
      })
      .describe('tls://host:port, tcp://host:port or udp://host:port'),
    doc: 'forward every audit record to this syslog receiver (`tls://host:6514`, `tcp://host:514`, `udp://host:514`): RFC 5424, octet counting on TCP and TLS, tailing the trail from a kept position; unset = no forwarding',
  }),
  auditSyslogCa: setting({
    env: 'NEXUS_AUDIT_SYSLOG_CA',
    file: 'audit.syslog_ca',
    path: true,
    schema: filePath,
    doc: "`tls://` forwarding: the CA (PEM) the receiver's certificate must chain to; unset = the system's CAs",
  }),
  configFile: setting({ env: 'NEXUS_CONFIG', path: true, schema: filePath, doc: 'path of a YAML or JSON config file (env wins)' }),
};

/** README's settings table row of a setting: variable, default, meaning. */
export function readmeRow(s: Setting): [string, string, string] {
  return [`\`${s.env}\``, s.shown ?? (s.default === undefined ? 'unset' : `\`${s.default}\``), s.doc];
}

export type SettingName = keyof typeof SETTINGS;

/** The typed value of every setting: null where unset and without a default. */
export type Settings = {
  [K in SettingName]: (typeof SETTINGS)[K] extends { default: string } ? z.output<(typeof SETTINGS)[K]['schema']> : z.output<(typeof SETTINGS)[K]['schema']> | null;
};

export type Env = Record<string, string | undefined>;

/** The raw string of a setting: unset and empty are the same. */
export function rawSetting(env: Env, s: Setting): string | undefined {
  const v = env[s.env];
  return v === undefined || v === '' ? s.default : v;
}

/** One setting's value; a bad one is a ConfigError naming its variable. */
export function parseSetting<V>(s: Setting<V>, raw: string): V {
  const r = s.schema.safeParse(raw);
  if (r.success) return r.data;
  const v = violation(s.schema, r.error, '');
  throw new ConfigError(s.env, !v.expected ? v.message : s.secret ? `expected ${v.expected}` : `expected ${v.expected}, got ${JSON.stringify(raw)}`);
}

/** Every setting of the table, typed, from env-shaped strings (in table order). */
export function readSettings(env: Env): Settings {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(SETTINGS) as Array<[SettingName, Setting]>) {
    const raw = rawSetting(env, s);
    out[name] = raw === undefined ? null : parseSetting(s, raw);
  }
  return out as Settings;
}
