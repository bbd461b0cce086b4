import type { SealedValue } from '../crypto/keyring.js';
import type { Policy } from '../policy/types.js';
import type { AuditKeyRow, ChainHead } from './audit-repo.js';
import type { ChangeListener, ChangeTopic, ConfigTopic } from './changes.js';
import type { DbCredsRepo, LeasesRepo } from './dbcreds-rows.js';
import type { Migration, MigrationStatus } from './migrator.js';

// The one storage interface both engines implement (SQLite in the data dir,
// PostgreSQL shared by replicas). Repositories speak rows, never crypto; every
// method is async so either engine fits behind it.

export interface SecretRow {
  path: string;
  current_version: number;
  created_at: string;
  updated_at: string;
}

export interface VersionRow {
  path: string;
  version: number;
  key_id: string | null;
  nonce: Buffer | null;
  ciphertext: Buffer | null;
  created_at: string;
  deleted_at: string | null;
  destroyed_at: string | null;
}

/** Everything that touches the `secrets` and `secret_versions` tables. No crypto here. */
export interface SecretsRepo {
  secret(path: string): Promise<SecretRow | undefined>;
  insertSecret(path: string, version: number, now: string): Promise<void>;
  bumpSecret(path: string, version: number, now: string): Promise<void>;
  version(path: string, version: number): Promise<VersionRow | undefined>;
  /** The secret's current version and the row of `version` (default: current), in one query. */
  lookup(path: string, version: number | null): Promise<{ current: number; row: VersionRow | null } | undefined>;
  versions(path: string): Promise<VersionRow[]>;
  insertVersion(row: Omit<VersionRow, 'deleted_at' | 'destroyed_at'>): Promise<void>;
  /** Removes every version <= `upTo`. */
  pruneUpTo(path: string, upTo: number): Promise<void>;
  /** Removes the secret and every version row; resolves to how many versions went. */
  purge(path: string): Promise<number>;
  softDelete(path: string, version: number, now: string): Promise<boolean>;
  undelete(path: string, version: number): Promise<boolean>;
  destroy(path: string, version: number, now: string): Promise<boolean>;
  /** Paths starting with `prefix`, strictly after `after`, in byte order. */
  listPaths(prefix: string, after: string, limit: number): Promise<string[]>;
  count(): Promise<number>;
  /** Live ciphertexts not under data key `keyId`, after (path, version), in key order. */
  notUnderKey(keyId: string, after: { path: string; version: number }, limit: number): Promise<VersionRow[]>;
  countNotUnderKey(keyId: string): Promise<number>;
  replaceCiphertext(path: string, version: number, keyId: string, nonce: Buffer, ciphertext: Buffer): Promise<void>;
}

/** A data-encryption key as stored: wrapped by the root key whose check value is root_kcv. */
export interface DataKeyRow {
  id: string;
  nonce: Buffer;
  wrapped: Buffer;
  root_kcv: string;
  active: 0 | 1;
  created_at: string;
}

export interface DataKeysRepo {
  get(id: string): Promise<DataKeyRow | undefined>;
  active(): Promise<DataKeyRow | undefined>;
  all(): Promise<DataKeyRow[]>;
  /** Rows not yet wrapped by the root key `kcv`, at most `limit`. */
  notWrappedBy(kcv: string, limit: number): Promise<DataKeyRow[]>;
  /** Inserts a key; an active one replaces the active key (call inside a transaction). */
  insert(row: DataKeyRow): Promise<void>;
  /** Makes `id` the one active key (call inside a transaction). */
  activate(id: string): Promise<void>;
  rewrap(id: string, nonce: Buffer, wrapped: Buffer, kcv: string): Promise<void>;
  /** Deletes data keys no secret version refers to, except the active one. */
  deleteUnused(): Promise<number>;
}

export interface PoliciesRepo {
  all(): Promise<Policy[]>;
  get(name: string): Promise<Policy | undefined>;
  upsert(p: Omit<Policy, 'created_at' | 'updated_at'>, now: string): Promise<void>;
  delete(name: string): Promise<boolean>;
}

/** Named values in the `meta` table. */
export interface MetaRepo {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/**
 * config_version: one counter per kind of configuration, bumped in the
 * transaction of every change, so a process can tell that it missed one.
 */
export interface ConfigVersionsRepo {
  /** Call inside the change's transaction. */
  bump(topic: ConfigTopic): Promise<void>;
  /** Every topic's counter, in one read. */
  all(): Promise<Map<ConfigTopic, number>>;
}

/** An OIDC issuer row; list-valued columns hold JSON text on both engines. */
export interface IssuerRow {
  name: string;
  issuer: string;
  audiences: string;
  algorithms: string;
  jwks_uri: string | null;
  max_token_age_s: number | null;
  /** null in rows written before migration 004: the default. */
  max_token_lifetime_s: number | null;
  /** JSON array; null: the default. */
  tenant_claims: string | null;
  /** JSON array; null: none. */
  allowed_types: string | null;
  /** JSON JWK Set held inline; null: none (migration 013). */
  jwks: string | null;
  /** A file holding a JWK Set, reloaded on change; null: none. */
  jwks_file: string | null;
  /** How long fetched keys verify while the IdP does not answer; null: the default. */
  jwks_stale_s: number | null;
  /** JSON {"per_tenant_rps"?, "per_ip_failed_rps"?}: the issuer's own rates; null: the global settings (migration 014). */
  rate_limit: string | null;
  /** The config file that declares it (removed from the file, removed at the next start); null: created through the API. */
  managed_by: string | null;
  created_at: string;
  updated_at: string;
}

export interface RoleRow {
  name: string;
  issuer: string;
  bound_claims: string;
  bound_claims_glob: string;
  paths: string;
  permissions: string;
  token_ttl_s: number | null;
  /** As for issuers: the declaring config file, or null. */
  managed_by: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * An exchanged token, by the SHA-256 of the token (the token itself is never
 * stored): what it was minted from, never grants (those are re-resolved).
 */
export interface TokenRow {
  issuer: string;
  issuer_url: string;
  /** The issuer's configured jwks_uri at mint time (null: discovery). */
  jwks_uri: string | null;
  /** JSON: the JWT's alg and typ. */
  header: string;
  subject: string;
  /** JSON array of role names. */
  roles: string;
  /** JSON object: the verified JWT payload. */
  claims: string;
  /** The kid of the issuer key that verified the JWT (null: it had none, or the row predates migration 006). */
  key_kid: string | null;
  /** That key's RFC 7638 SHA-256 thumbprint (null: the row predates migration 006). */
  key_thumbprint: string | null;
  /** ms since epoch */
  expires_at: number;
  /**
   * The CI run or job the JWT was minted for ('github:<repository>:<run_id>:<run_attempt>',
   * 'gitlab:<project_path>:<job_id>'), for the platform's end-of-work event; null: none.
   */
  ci_run: string | null;
  /** ISO time; set by insertToken. */
  created_at?: string;
}

/** The OIDC plugin's tables: issuers, roles, exchanged-token hashes. */
export interface OidcRepo {
  issuers(): Promise<IssuerRow[]>;
  issuer(name: string): Promise<IssuerRow | undefined>;
  upsertIssuer(row: Omit<IssuerRow, 'created_at' | 'updated_at'>, now: string): Promise<void>;
  deleteIssuer(name: string): Promise<boolean>;
  rolesOfIssuer(name: string): Promise<string[]>;
  roles(): Promise<RoleRow[]>;
  role(name: string): Promise<RoleRow | undefined>;
  upsertRole(row: Omit<RoleRow, 'created_at' | 'updated_at'>, now: string): Promise<void>;
  deleteRole(name: string): Promise<boolean>;
  insertToken(hash: Buffer, t: TokenRow, now: string): Promise<void>;
  token(hash: Buffer): Promise<TokenRow | undefined>;
  /** Deletes every exchanged token that carries `role`; returns how many. */
  revokeRole(role: string): Promise<number>;
  /** Deletes one exchanged token; false when there was none. */
  revokeToken(hash: Buffer): Promise<boolean>;
  /** Deletes every exchanged token of `issuer` (the issuer's name), or only those that carry `role`; returns how many. */
  revokeIssuer(issuer: string, role: string | null): Promise<number>;
  /** Deletes every exchanged token of `issuer` minted for CI run `ciRun`; returns their hashes. */
  revokeCiRun(issuer: string, ciRun: string): Promise<Buffer[]>;
  /**
   * Remembers a CI event delivery under each of `keys` until `expiresAt` (ms);
   * false, remembering nothing new, when any key is already remembered (a replay).
   * Call inside a transaction.
   */
  claimDelivery(keys: string[], now: number, expiresAt: number): Promise<boolean>;
  /**
   * Deletes at most `limit` exchanged tokens that expired at or before `now`
   * (ms), and CI deliveries remembered past it; returns how many tokens. One short statement: callers loop in batches.
   */
  purgeExpired(now: number, limit: number): Promise<number>;
  /**
   * Makes the space of deleted token rows reusable, where nothing else will:
   * PostgreSQL with autovacuum off for the table (SQLite reuses freed pages
   * by itself: absent there). Returns whether it vacuumed.
   */
  reclaimTokens?(): Promise<boolean>;
}

/** A write-only value inside configuration, sealed under data key `key_id`; `owner` is 'kind/name'. */
export interface ConfigSecretRow {
  owner: string;
  key_id: string;
  nonce: Buffer;
  ciphertext: Buffer;
  updated_at: string;
}

/**
 * config_secrets: write-only values inside configuration (a connection's
 * admin password, an issuer's webhook secret). Rows, never plaintext.
 */
export interface ConfigSecretsRepo {
  get(owner: string): Promise<ConfigSecretRow | undefined>;
  /** Inserts or replaces `owner`'s value, sealed by Keyring.sealConfig for that owner. */
  put(owner: string, sealed: SealedValue, now: string): Promise<void>;
  /** False when there was none. */
  delete(owner: string): Promise<boolean>;
}

/** A principal's learned baseline (access signals); times in ms since the epoch. */
export interface SignalBaselineRow {
  principal: string;
  first_seen: number;
  peak: number;
}

/** A raised signal as kept for GET /v1/signals. */
export interface SignalEventRow {
  at: string;
  signal: string;
  port: string;
  principal: string;
  address: string;
  path: string | null;
  why: string;
}

/** signal_baselines, signal_paths, signal_events: written in batches, read at start and off the request path. */
export interface SignalsRepo {
  /** The `limit` most recently updated baselines. */
  recent(limit: number): Promise<SignalBaselineRow[]>;
  baselines(principals: string[]): Promise<SignalBaselineRow[]>;
  /** The learned paths of `principals`, at most `perPrincipal` each. */
  paths(principals: string[], perPrincipal: number): Promise<Array<{ principal: string; path: string }>>;
  /** Upserts: the earliest first_seen and the highest peak win (replicas write the same principal). */
  saveBaselines(rows: SignalBaselineRow[], nowMs: number): Promise<void>;
  addPaths(rows: Array<{ principal: string; path: string }>): Promise<void>;
  addEvents(rows: SignalEventRow[]): Promise<void>;
  /** The newest `limit` signals at or after `since` (ISO), oldest first. */
  events(since: string, limit: number): Promise<SignalEventRow[]>;
  pruneEvents(before: string): Promise<number>;
}

/** audit_keys: earlier root keys' audit MAC keys, wrapped by the current root key. */
export interface AuditKeysStore {
  all(): Promise<AuditKeyRow[]>;
  put(row: AuditKeyRow): Promise<void>;
}

/** audit_anchor on an engine reached asynchronously (PostgreSQL). */
export interface AuditAnchorsStore {
  all(): Promise<Map<string, ChainHead>>;
  set(chain: string, head: ChainHead): Promise<void>;
}

/** The repositories, bound either to the engine or to one transaction. */
export interface Repos {
  auditKeys: AuditKeysStore;
  secrets: SecretsRepo;
  dataKeys: DataKeysRepo;
  policies: PoliciesRepo;
  meta: MetaRepo;
  oidc: OidcRepo;
  configVersions: ConfigVersionsRepo;
  dbcreds: DbCredsRepo;
  leases: LeasesRepo;
  configSecrets: ConfigSecretsRepo;
  signals: SignalsRepo;
}

export type EngineName = 'sqlite' | 'postgres';

export interface Storage extends Repos {
  readonly engine: EngineName;
  /**
   * Other processes may write this database (replicas on PostgreSQL): what
   * must bite at once (revocations, narrowed roles) is read at use, not from
   * a cache.
   */
  readonly shared: boolean;
  /** Tells every process on this database, this one too, that `topic` changed. Never throws. */
  publish(topic: ChangeTopic): Promise<void>;
  /** Hears every process's notices (and 'all' after a gap in hearing); returns the unsubscribe. */
  subscribe(fn: ChangeListener): () => void;
  /**
   * Resolves once notices are being heard (PostgreSQL: the LISTEN is in place,
   * or its first try failed), and starts the backstop for notices that never
   * come: configuration versions read every CONFIG_POLL_MS, a moved topic
   * heard again as if noticed. Call it before the first load of any cache.
   */
  changesReady(): Promise<void>;
  /**
   * Audit chain heads, where the engine keeps them itself (PostgreSQL). On
   * SQLite the audit trail anchors through a connection of its own instead.
   */
  readonly auditAnchors?: AuditAnchorsStore;
  /** Where the data lives, for logs (a file, or a URL without its password). */
  readonly location: string;
  /**
   * Runs `fn` in one write transaction: all of it or none, and serializable
   * against every other writer (other replicas too). `fn` may be run again
   * when the engine reports a serialization conflict, so it must not have
   * effects outside the repositories it is given.
   */
  tx<T>(fn: (r: Repos) => Promise<T>): Promise<T>;
  /** The engine answers a trivial query. */
  ping(): Promise<boolean>;
  /**
   * After a destroy or key rotation: make the erased bytes unrecoverable from
   * the engine's own files (old row images in a WAL or dead tuples).
   */
  scrub(): Promise<void>;
  migrationStatus(): Promise<MigrationStatus>;
  /** Applies pending migrations in order (one process at a time). Returns those applied. */
  migrateUp(): Promise<Migration[]>;
  close(): Promise<void>;
}
