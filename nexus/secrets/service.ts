import { ConflictError, DataIntegrityError, NotFoundError } from '../errors.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Logger } from '../log.js';
import type { Repos, Storage, VersionRow } from '../storage/storage.js';
import { parseInput } from '../schema.js';
import { parsePatchData, parsePrefix, parseSecretData, parseSecretPath, parseVersion } from './rules.js';
import { Cas, ListLimit, Version, VersionList } from './schema.js';
import type { ListOptions, ListPage, SecretDataPage, ListScope, PurgeResult, PutOptions, PutResult, SecretData, SecretMetadata, SecretVersion, SkipReason, VersionsOutcome } from './types.js';
import type { ListCursors } from './cursor.js';

export interface SecretsServiceOptions {
  /** Versions kept per secret; older ones are pruned on write. */
  maxVersions: number;
  /** Encrypts and authenticates list cursors (key derived from the root key). */
  cursors: ListCursors;
  /** Called with each operation's duration (metrics). */
  observe?: (op: string, seconds: number) => void;
}

/** A listing's scope when the caller names none: every path. */
const EVERYTHING: ListScope = { allows: () => true, ranges: (prefix) => [prefix], skipPast: (path) => path };

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

  /** Merges `rawPatch` into the latest version as a new version; a `null` value removes its key. */
  patch(rawPath: string, rawPatch: unknown, options: PutOptions = {}): Promise<PutResult> {
    return this.timed('patch', async () => {
      const path = parseSecretPath(rawPath);
      const patch = parsePatchData(rawPatch);
      return this.writeVersion(path, options, async (repo, current) => {
        const merged: Record<string, string | null> = { ...(await this.readable(path, current, await repo.secrets.version(path, current))) };
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) delete merged[k];
          else merged[k] = v;
        }
        return parseSecretData(merged).encoded;
      });
    });
  }

  /** Writes version `rawVersion`'s data as a new version; that version must be readable. */
  rollback(rawPath: string, rawVersion: unknown, options: PutOptions = {}): Promise<PutResult> {
    return this.timed('rollback', async () => {
      const path = parseSecretPath(rawPath);
      const version = parseInput(Version, rawVersion, 'version');
      return this.writeVersion(path, options, async (repo) => parseSecretData(await this.readable(path, version, await repo.secrets.version(path, version))).encoded);
    });
  }

  private async doPut(rawPath: string, rawData: unknown, options: PutOptions): Promise<PutResult> {
    const path = parseSecretPath(rawPath);
    const { encoded } = parseSecretData(rawData);
    return this.writeVersion(path, options, async () => encoded, true);
  }

  /**
   * One new version in one transaction: check-and-set against the current
   * version, then `value(current)` (read inside the transaction, so a patch or
   * rollback cannot race another writer) sealed under the next version number.
   */
  private async writeVersion(path: string, options: PutOptions, value: (repo: Repos, current: number) => Promise<Buffer>, mayCreate = false): Promise<PutResult> {
    const cas = options.cas === undefined || options.cas === null ? undefined : parseInput(Cas, options.cas, 'cas');
    // The data key is chosen (and made, on first use) before the write transaction.
    const keyId = await this.keyring.activeKeyId();
    return this.storage.tx(async (repo) => {
      const row = await repo.secrets.secret(path);
      if (!row && !mayCreate) throw new NotFoundError(`secret ${path} not found`);
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
      const encoded = await value(repo, current);
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
    const data = await this.readable(path, version, found.row);
    return { path, version, data, created_at: found.row!.created_at };
  }

  /** The data of a version that is neither missing, deleted nor destroyed. */
  private async readable(path: string, version: number, row: VersionRow | null | undefined): Promise<SecretData> {
    if (!row) throw new NotFoundError(`secret ${path} version ${version} not found`);
    if (row.destroyed_at) throw new NotFoundError(`secret ${path} version ${version} is destroyed`);
    if (row.deleted_at) throw new NotFoundError(`secret ${path} version ${version} is deleted`);
    return this.decrypt(row);
  }

  /** Soft delete: the latest version, or each of `rawVersions`. */
  async delete(rawPath: string, rawVersions?: unknown): Promise<VersionsOutcome> {
    const path = parseSecretPath(rawPath);
    const wanted = rawVersions === undefined ? undefined : parseInput(VersionList, rawVersions, 'versions');
    const now = new Date().toISOString();
    return this.perVersion(path, wanted, async (repo, row) => {
      if (row.destroyed_at) return 'destroyed';
      if (row.deleted_at) return 'already_deleted';
      await repo.secrets.softDelete(path, row.version, now);
      return null;
    });
  }

  async undelete(rawPath: string, rawVersions: unknown): Promise<VersionsOutcome> {
    const path = parseSecretPath(rawPath);
    const versions = parseInput(VersionList, rawVersions, 'versions');
    return this.perVersion(path, versions, async (repo, row) => {
      if (row.destroyed_at) return 'destroyed';
      if (!row.deleted_at) return 'not_deleted';
      await repo.secrets.undelete(path, row.version);
      return null;
    });
  }

  /**
   * Erases the ciphertext of each version; the version stays in metadata as
   * destroyed. Once this resolves, the bytes are gone from the live tables and
   * the engine has been asked to drop its old copies (Storage.scrub).
   */
  async destroy(rawPath: string, rawVersions: unknown): Promise<VersionsOutcome> {
    const path = parseSecretPath(rawPath);
    const versions = parseInput(VersionList, rawVersions, 'versions');
    const now = new Date().toISOString();
    const outcome = await this.perVersion(path, versions, async (repo, row) => {
      if (row.destroyed_at) return 'already_destroyed';
      await repo.secrets.destroy(path, row.version, now);
      return null;
    });
    await this.storage.scrub();
    return outcome;
  }

  /** Removes the path with every version and its bytes: it is no longer listed, and a new write starts at version 1. */
  async purge(rawPath: string): Promise<PurgeResult> {
    const path = parseSecretPath(rawPath);
    const versions = await this.storage.tx(async (repo) => {
      if (!(await repo.secrets.secret(path))) throw new NotFoundError(`secret ${path} not found`);
      return repo.secrets.purge(path);
    });
    await this.storage.scrub();
    return { path, versions };
  }

  /**
   * Applies `change` to each named version (default: the latest) in one
   * transaction; `change` says why it left a version alone, or null when it
   * changed it. Missing versions (never written, or pruned) are reported.
   */
  private perVersion(path: string, versions: number[] | undefined, change: (repo: Repos, row: VersionRow) => Promise<SkipReason | null>): Promise<VersionsOutcome> {
    return this.storage.tx(async (repo) => {
      const secret = await repo.secrets.secret(path);
      if (!secret) throw new NotFoundError(`secret ${path} not found`);
      const outcome: VersionsOutcome = { path, done: [], skipped: [] };
      for (const version of versions ?? [secret.current_version]) {
        const row = await repo.secrets.version(path, version);
        const reason = row ? await change(repo, row) : 'not_found';
        if (reason) outcome.skipped.push({ version, reason });
        else outcome.done.push(version);
      }
      return outcome;
    });
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

  /**
   * A page of `list` with each path's latest data: one round trip per page for
   * a job that wants a whole subtree. A path whose latest version is deleted
   * or destroyed is passed over (it has no data to read), not an error; the
   * cursor still moves past it.
   */
  listData(options: ListOptions = {}): Promise<SecretDataPage> {
    return this.timed('list_data', async () => {
      const page = await this.doList(options);
      const secrets: SecretDataPage['secrets'] = [];
      for (const path of page.paths) {
        const found = await this.storage.secrets.lookup(path, null);
        const row = found?.row;
        if (!row || row.deleted_at || row.destroyed_at) continue;
        secrets.push({ path, version: found.current, data: await this.decrypt(row) });
      }
      return { secrets, next_cursor: page.next_cursor };
    });
  }

  /**
   * A page answers only from paths the caller may list: it ends after `limit`
   * of them or at the end of the scope, never at a budget of rows read (where
   * it stopped would count hidden rows). The cursor, when another listable
   * path follows, holds the last path answered, padded to one size.
   */
  private async doList(options: ListOptions): Promise<ListPage> {
    const prefix = parsePrefix(options.prefix);
    const limit = parseInput(ListLimit, options.limit, 'limit');
    const after = options.cursor ? this.opts.cursors.decode(prefix, options.cursor) : '';
    const paths: string[] = [];
    // One more than a page, so a cursor comes only when a listable path follows; batches of 64 to 256 rows.
    for await (const p of this.listable(prefix, after, options.scope ?? EVERYTHING, Math.min(Math.max(limit + 1, 64), 256))) {
      if (paths.length === limit) return { paths, next_cursor: this.opts.cursors.encode(prefix, paths[limit - 1]!) };
      paths.push(p);
    }
    return { paths, next_cursor: null };
  }

  /**
   * The listable paths after `after`, in key order, read `batch` rows at a
   * time from the scope's ranges only. A row the caller may not list makes the
   * walk seek past the subtree no listable path can lie in. Rows read: none
   * outside the ranges; inside them the listable rows, the hidden rows a
   * glob could still extend into a listable path, and for each hidden subtree
   * no glob can reach, its first row and at most the rest of that batch.
   */
  private async *listable(prefix: string, after: string, scope: ListScope, batch: number): AsyncGenerator<string> {
    for (const range of scope.ranges(prefix)) {
      let from = after;
      for (;;) {
        // `from` past the range's end (every path in it is below `${range}\x7f`): nothing to read.
        if (from >= `${range}\x7f`) break;
        const rows = await this.storage.secrets.listPaths(range, from, batch);
        let seek = '';
        for (const p of rows) {
          from = p;
          if (p <= seek) continue;
          if (scope.allows(p)) yield p;
          else seek = scope.skipPast(p);
        }
        if (rows.length < batch) break;
        if (seek > from) from = seek;
      }
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
