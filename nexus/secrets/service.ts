import { ConflictError, DataIntegrityError, NotFoundError } from '../errors.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Logger } from '../log.js';
import type { Storage, VersionRow } from '../storage/storage.js';
import { parseInput } from '../schema.js';
import { parsePrefix, parseSecretData, parseSecretPath, parseVersion } from './rules.js';
import { Cas, ListLimit, VersionList } from './schema.js';
import type { ListOptions, ListPage, PutOptions, PutResult, SecretData, SecretMetadata, SecretVersion } from './types.js';
import type { ListCursors } from './cursor.js';

export interface SecretsServiceOptions {
  /** Versions kept per secret; older ones are pruned on write. */
  maxVersions: number;
  /** Encrypts and authenticates list cursors (key derived from the root key). */
  cursors: ListCursors;
  /** Called with each operation's duration (metrics). */
  observe?: (op: string, seconds: number) => void;
}

/** Rows a single list call may examine, so a narrow ACL over a huge store stays bounded. */
const LIST_SCAN_BUDGET = 10_000;

/**
 * The secrets service: every input validated here, values encrypted and
 * decrypted here and nowhere else. Callers (listeners, plugins) decide the
 * ACL before they call in.
 */
export class SecretsService {
  constructor(
    private readonly storage: Storage,
    private readonly keyring: Keyring,
    private readonly log: Logger,
    private readonly opts: SecretsServiceOptions,
  ) {}

  private async timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (!this.opts.observe) return fn();
    const t0 = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      this.opts.observe(op, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }

  put(rawPath: string, rawData: unknown, options: PutOptions = {}): Promise<PutResult> {
    return this.timed('put', () => this.doPut(rawPath, rawData, options));
  }

  /** The latest version, or `version`; deleted and destroyed versions are not found. */
  get(rawPath: string, rawVersion?: unknown): Promise<SecretVersion> {
    return this.timed('get', () => this.doGet(rawPath, rawVersion));
  }

  private async doPut(rawPath: string, rawData: unknown, options: PutOptions): Promise<PutResult> {
    const path = parseSecretPath(rawPath);
    const { encoded } = parseSecretData(rawData);
    const cas = options.cas === undefined || options.cas === null ? undefined : parseInput(Cas, options.cas, 'cas');
    // The data key is chosen (and made, on first use) before the write transaction.
    const keyId = await this.keyring.activeKeyId();
    return this.storage.tx(async (repo) => {
      const row = await repo.secrets.secret(path);
      const current = row?.current_version ?? 0;
      if (cas !== undefined && cas !== current) {
        throw new ConflictError(
          cas === 0
            ? `secret ${path} already exists (cas 0 means create only)`
            : options.revealVersion
              ? `cas mismatch: ${path} is at version ${current}, not ${cas}`
              : `cas mismatch: ${path} is not at version ${cas}`,
        );
      }
      const version = current + 1;
      const now = new Date().toISOString();
      const sealed = await this.keyring.sealValue(path, version, encoded, keyId);
      if (row) await repo.secrets.bumpSecret(path, version, now);
      else await repo.secrets.insertSecret(path, version, now);
      await repo.secrets.insertVersion({ path, version, key_id: sealed.keyId, nonce: sealed.nonce, ciphertext: sealed.ciphertext, created_at: now });
      if (version > this.opts.maxVersions) await repo.secrets.pruneUpTo(path, version - this.opts.maxVersions);
      return { path, version, created: !row };
    });
  }

  private async doGet(rawPath: string, rawVersion?: unknown): Promise<SecretVersion> {
    const path = parseSecretPath(rawPath);
    const wanted = rawVersion === undefined ? undefined : parseVersion(rawVersion);
    const found = await this.storage.secrets.lookup(path, wanted ?? null);
    if (!found) throw new NotFoundError(`secret ${path} not found`);
    const version = wanted ?? found.current;
    const row = found.row;
    if (!row) throw new NotFoundError(`secret ${path} version ${version} not found`);
    if (row.destroyed_at) throw new NotFoundError(`secret ${path} version ${version} is destroyed`);
    if (row.deleted_at) throw new NotFoundError(`secret ${path} version ${version} is deleted`);
    return { path, version, data: await this.decrypt(row), created_at: row.created_at };
  }

  /** Soft delete: the latest version, or `version`. */
  async delete(rawPath: string, rawVersion?: unknown): Promise<void> {
    const path = parseSecretPath(rawPath);
    const wanted = rawVersion === undefined ? undefined : parseVersion(rawVersion);
    await this.storage.tx(async (repo) => {
      const secret = await repo.secrets.secret(path);
      if (!secret) throw new NotFoundError(`secret ${path} not found`);
      const version = wanted ?? secret.current_version;
      if (!(await repo.secrets.version(path, version))) throw new NotFoundError(`secret ${path} version ${version} not found`);
      await repo.secrets.softDelete(path, version, new Date().toISOString());
    });
  }

  async undelete(rawPath: string, rawVersions: unknown): Promise<void> {
    const path = parseSecretPath(rawPath);
    const versions = parseInput(VersionList, rawVersions, 'versions');
    await this.storage.tx(async (repo) => {
      if (!(await repo.secrets.secret(path))) throw new NotFoundError(`secret ${path} not found`);
      for (const v of versions) await repo.secrets.undelete(path, v);
    });
  }

  /**
   * Erases the ciphertext of each version; the version stays in metadata as
   * destroyed. Once this resolves, the bytes are gone from the live tables and
   * the engine has been asked to drop its old copies (Storage.scrub).
   */
  async destroy(rawPath: string, rawVersions: unknown): Promise<void> {
    const path = parseSecretPath(rawPath);
    const versions = parseInput(VersionList, rawVersions, 'versions');
    const now = new Date().toISOString();
    await this.storage.tx(async (repo) => {
      if (!(await repo.secrets.secret(path))) throw new NotFoundError(`secret ${path} not found`);
      for (const v of versions) await repo.secrets.destroy(path, v, now);
    });
    await this.storage.scrub();
  }

  async metadata(rawPath: string): Promise<SecretMetadata> {
    const path = parseSecretPath(rawPath);
    const secret = await this.storage.secrets.secret(path);
    if (!secret) throw new NotFoundError(`secret ${path} not found`);
    return {
      path,
      current_version: secret.current_version,
      versions: (await this.storage.secrets.versions(path)).map((v) => ({
        version: v.version,
        created_at: v.created_at,
        deleted_at: v.deleted_at,
        destroyed: v.destroyed_at !== null,
      })),
    };
  }

  list(options: ListOptions = {}): Promise<ListPage> {
    return this.timed('list', () => this.doList(options));
  }

  private async doList(options: ListOptions): Promise<ListPage> {
    const prefix = parsePrefix(options.prefix);
    const limit = parseInput(ListLimit, options.limit, 'limit');
    let after = options.cursor ? this.opts.cursors.decode(prefix, options.cursor) : '';
    const allow = options.allow ?? (() => true);
    const paths: string[] = [];
    let scanned = 0;
    const batch = Math.min(Math.max(limit * 2, 64), LIST_SCAN_BUDGET);
    for (;;) {
      const rows = await this.storage.secrets.listPaths(prefix, after, batch);
      for (const p of rows) {
        after = p;
        scanned += 1;
        if (allow(p)) paths.push(p);
        if (paths.length === limit || scanned >= LIST_SCAN_BUDGET) {
          const more = (await this.storage.secrets.listPaths(prefix, after, 1)).length > 0;
          return { paths, next_cursor: more ? this.opts.cursors.encode(prefix, after) : null };
        }
      }
      if (rows.length < batch) return { paths, next_cursor: null };
    }
  }

  count(): Promise<number> {
    return this.storage.secrets.count();
  }

  private async decrypt(row: VersionRow): Promise<SecretData> {
    if (!row.ciphertext || !row.nonce || !row.key_id) {
      throw new DataIntegrityError(`secret ${row.path} version ${row.version} has no ciphertext`);
    }
    try {
      const plain = await this.keyring.openValue(row.path, row.version, { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext });
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
