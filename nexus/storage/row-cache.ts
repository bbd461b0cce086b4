import { Lru } from '../lru.js';
import type { Repos, SecretsRepo, Storage, VersionRow } from './storage.js';

type Lookup = { current: number; row: VersionRow | null } | undefined;

/** The SecretsRepo methods that change a path's rows (each takes the path first). */
const WRITES = ['insertSecret', 'bumpSecret', 'insertVersion', 'pruneUpTo', 'purge', 'softDelete', 'undelete', 'destroy', 'replaceCiphertext'] as const;
/** The ones that only read. */
const READS = ['secret', 'version', 'lookup', 'versions', 'listPaths', 'count', 'notUnderKey', 'countNotUnderKey'] as const;
// Every method is one or the other: a new SecretsRepo method fails to compile here until it is sorted.
const SORTED: Exclude<keyof SecretsRepo, (typeof WRITES)[number] | (typeof READS)[number]> extends never ? true : never = true;
void SORTED;

/** Larger ciphertexts are read from storage each time: the cache stays small whatever the values. */
const MAX_CACHED_BYTES = 4096;

/**
 * The rows secret reads look up, kept in memory as stored: ciphertext,
 * never plaintext (decryption still happens on every read). Every write
 * through this process's storage drops the path's rows, before and again
 * after its transaction ends; a lookup that overlapped any write or open
 * transaction is not kept. Only for storage no other process writes (SQLite
 * under the data-dir lock); changes made elsewhere must call invalidate().
 */
export class CiphertextRowCache {
  private readonly paths: Lru<string, Map<number | null, Lookup>>;
  private generation = 0;
  /** Write transactions under way: rows read meanwhile may not be committed (SQLite reads on the writer's connection). */
  private open = 0;

  constructor(max = 10_000) {
    this.paths = new Lru(max);
  }

  /** Invalidation hook: drop one path's rows, or all of them. */
  invalidate(path?: string): void {
    this.generation++;
    if (path === undefined) this.paths.clear();
    else this.paths.delete(path);
  }

  async lookup(path: string, version: number | null, read: () => Promise<Lookup>): Promise<Lookup> {
    const hit = this.paths.get(path)?.get(version);
    if (hit) return hit;
    const generation = this.generation;
    const found = await read();
    if (found && generation === this.generation && this.open === 0 && (found.row?.ciphertext?.length ?? 0) <= MAX_CACHED_BYTES) {
      let versions = this.paths.get(path);
      if (!versions) this.paths.set(path, (versions = new Map()));
      versions.set(version, found);
    }
    return found;
  }

  /** The repository with lookups served from here and every write dropping what it touches. */
  wrapRepo(repo: SecretsRepo, touched?: Set<string>): SecretsRepo {
    const wrapped: SecretsRepo = Object.create(repo) as SecretsRepo;
    wrapped.lookup = (path, version) => this.lookup(path, version, () => repo.lookup(path, version));
    for (const name of WRITES) {
      const write = repo[name].bind(repo) as (path: string, ...rest: unknown[]) => Promise<unknown>;
      (wrapped as unknown as Record<string, unknown>)[name] = async (path: string, ...rest: unknown[]) => {
        this.invalidate(path);
        touched?.add(path);
        try {
          return await write(path, ...rest);
        } finally {
          if (!touched) this.invalidate(path);
        }
      };
    }
    return wrapped;
  }

  /** The storage with its secrets repository, in and out of transactions, going through this cache. */
  wrap(storage: Storage): Storage {
    const secrets = this.wrapRepo(storage.secrets);
    const tx = <T>(fn: (r: Repos) => Promise<T>): Promise<T> => {
      const touched = new Set<string>();
      this.open++;
      return storage
        .tx((r) => fn(new Proxy(r, { get: (t, k) => (k === 'secrets' ? this.wrapRepo(t.secrets, touched) : Reflect.get(t, k, t)) })))
        .finally(() => {
          // Committed or rolled back, the rows read meanwhile may be stale either way.
          this.open--;
          for (const p of touched) this.invalidate(p);
        });
    };
    return new Proxy(storage, {
      get: (t, k) => {
        if (k === 'secrets') return secrets;
        if (k === 'tx') return tx;
        const v = Reflect.get(t, k, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  }
}
