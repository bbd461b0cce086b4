import { BadRequestError, ConflictError, DataIntegrityError, NotFoundError } from '../errors.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Logger } from '../log.js';
import type { Db } from '../storage/db.js';
import { SecretsRepo, type VersionRow } from '../storage/secrets-repo.js';
import { parseCas, parsePrefix, parseSecretData, parseSecretPath, parseVersion, parseVersionList } from './rules.js';
import type { ListOptions, ListPage, PutOptions, PutResult, SecretData, SecretMetadata, SecretVersion } from './types.js';

export interface SecretsServiceOptions {
  /** Versions kept per secret; older ones are pruned on write. */
  maxVersions: number;
  /** Called with each operation's duration (metrics). */
  observe?: (op: string, seconds: number) => void;
}

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 1000;
/** Rows a single list call may examine, so a narrow ACL over a huge store stays bounded. */
const LIST_SCAN_BUDGET = 10_000;

/**
 * The secrets service: every input validated here, values encrypted and
 * decrypted here and nowhere else. Callers (listeners, plugins) decide the
 * ACL before they call in.
 */
export class SecretsService {
  private readonly repo: SecretsRepo;

  constructor(
    private readonly db: Db,
    private readonly keyring: Keyring,
    private readonly log: Logger,
    private readonly opts: SecretsServiceOptions,
  ) {
    this.repo = new SecretsRepo(db);
  }

  private timed<T>(op: string, fn: () => T): T {
    if (!this.opts.observe) return fn();
    const t0 = process.hrtime.bigint();
    try {
      return fn();
    } finally {
      this.opts.observe(op, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }

  put(rawPath: string, rawData: unknown, options: PutOptions = {}): PutResult {
    return this.timed('put', () => this.doPut(rawPath, rawData, options));
  }

  /** The latest version, or `version`; deleted and destroyed versions are not found. */
  get(rawPath: string, rawVersion?: unknown): SecretVersion {
    return this.timed('get', () => this.doGet(rawPath, rawVersion));
  }

  private doPut(rawPath: string, rawData: unknown, options: PutOptions): PutResult {
    const path = parseSecretPath(rawPath);
    const { encoded } = parseSecretData(rawData);
    const cas = parseCas(options.cas);
    return this.repo.tx(() => {
      const row = this.repo.secret(path);
      const current = row?.current_version ?? 0;
      if (cas !== undefined && cas !== current) {
        throw new ConflictError(
          cas === 0 ? `secret ${path} already exists (cas 0 means create only)` : `cas mismatch: ${path} is at version ${current}, not ${cas}`,
        );
      }
      const version = current + 1;
      const now = new Date().toISOString();
      const sealed = this.keyring.sealValue(path, version, encoded);
      if (row) this.repo.bumpSecret(path, version, now);
      else this.repo.insertSecret(path, version, now);
      this.repo.insertVersion({ path, version, key_id: sealed.keyId, nonce: sealed.nonce, ciphertext: sealed.ciphertext, created_at: now });
      if (version > this.opts.maxVersions) this.repo.pruneUpTo(path, version - this.opts.maxVersions);
      return { path, version, created: !row };
    });
  }

  private doGet(rawPath: string, rawVersion?: unknown): SecretVersion {
    const path = parseSecretPath(rawPath);
    const wanted = rawVersion === undefined ? undefined : parseVersion(rawVersion);
    const found = this.repo.lookup(path, wanted ?? null);
    if (!found) throw new NotFoundError(`secret ${path} not found`);
    const version = wanted ?? found.current;
    const row = found.row;
    if (!row) throw new NotFoundError(`secret ${path} version ${version} not found`);
    if (row.destroyed_at) throw new NotFoundError(`secret ${path} version ${version} is destroyed`);
    if (row.deleted_at) throw new NotFoundError(`secret ${path} version ${version} is deleted`);
    return { path, version, data: this.decrypt(row), created_at: row.created_at };
  }

  /** Soft delete: the latest version, or `version`. */
  delete(rawPath: string, rawVersion?: unknown): void {
    const path = parseSecretPath(rawPath);
    const wanted = rawVersion === undefined ? undefined : parseVersion(rawVersion);
    this.repo.tx(() => {
      const secret = this.repo.secret(path);
      if (!secret) throw new NotFoundError(`secret ${path} not found`);
      const version = wanted ?? secret.current_version;
      if (!this.repo.version(path, version)) throw new NotFoundError(`secret ${path} version ${version} not found`);
      this.repo.softDelete(path, version, new Date().toISOString());
    });
  }

  undelete(rawPath: string, rawVersions: unknown): void {
    const path = parseSecretPath(rawPath);
    const versions = parseVersionList(rawVersions);
    this.repo.tx(() => {
      if (!this.repo.secret(path)) throw new NotFoundError(`secret ${path} not found`);
      for (const v of versions) this.repo.undelete(path, v);
    });
  }

  /** Erases the ciphertext of each version; the version stays in metadata as destroyed. */
  destroy(rawPath: string, rawVersions: unknown): void {
    const path = parseSecretPath(rawPath);
    const versions = parseVersionList(rawVersions);
    const now = new Date().toISOString();
    this.repo.tx(() => {
      if (!this.repo.secret(path)) throw new NotFoundError(`secret ${path} not found`);
      for (const v of versions) this.repo.destroy(path, v, now);
    });
    // Old page images holding the ciphertext stay in the WAL until a checkpoint
    // rewrites the db file and truncates the log. Best effort: a busy reader
    // can delay it, and the next checkpoint completes it.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  metadata(rawPath: string): SecretMetadata {
    const path = parseSecretPath(rawPath);
    const secret = this.repo.secret(path);
    if (!secret) throw new NotFoundError(`secret ${path} not found`);
    return {
      path,
      current_version: secret.current_version,
      versions: this.repo.versions(path).map((v) => ({
        version: v.version,
        created_at: v.created_at,
        deleted_at: v.deleted_at,
        destroyed: v.destroyed_at !== null,
      })),
    };
  }

  list(options: ListOptions = {}): ListPage {
    return this.timed('list', () => this.doList(options));
  }

  private doList(options: ListOptions): ListPage {
    const prefix = parsePrefix(options.prefix);
    const limit = options.limit === undefined ? DEFAULT_LIST_LIMIT : options.limit;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new BadRequestError('limit', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    }
    let after = options.cursor ? decodeCursor(options.cursor) : '';
    const allow = options.allow ?? (() => true);
    const paths: string[] = [];
    let scanned = 0;
    const batch = Math.min(Math.max(limit * 2, 64), LIST_SCAN_BUDGET);
    for (;;) {
      const rows = this.repo.listPaths(prefix, after, batch);
      for (const p of rows) {
        after = p;
        scanned += 1;
        if (allow(p)) paths.push(p);
        if (paths.length === limit || scanned >= LIST_SCAN_BUDGET) {
          const more = this.repo.listPaths(prefix, after, 1).length > 0;
          return { paths, next_cursor: more ? encodeCursor(after) : null };
        }
      }
      if (rows.length < batch) return { paths, next_cursor: null };
    }
  }

  count(): number {
    return this.repo.count();
  }

  private decrypt(row: VersionRow): SecretData {
    if (!row.ciphertext || !row.nonce || !row.key_id) {
      throw new DataIntegrityError(`secret ${row.path} version ${row.version} has no ciphertext`);
    }
    try {
      const plain = this.keyring.openValue(row.path, row.version, { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext });
      const data = JSON.parse(plain.toString('utf8')) as unknown;
      if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('not an object');
      return data as SecretData;
    } catch (err) {
      const e = err instanceof DataIntegrityError ? err : new DataIntegrityError(`secret ${row.path} version ${row.version} does not decode`, { cause: err });
      // Path and version only: the value (if any was recovered) never reaches a log.
      this.log.error({ path: row.path, version: row.version, key_id: row.key_id, code: e.code }, e.message);
      throw e;
    }
  }
}

function encodeCursor(path: string): string {
  return Buffer.from(path, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const path = /^[A-Za-z0-9_-]{1,700}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!/^[A-Za-z0-9._/-]{1,512}$/.test(path)) throw new BadRequestError('cursor', 'cursor is not one this server issued');
  return path;
}
