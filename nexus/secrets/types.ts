export type { ListPage, SecretData, SecretDataPage, SecretMetadata, SecretVersion, VersionInfo } from './schema.js';

/** A validated secret path (see parseSecretPath). */
export type SecretPath = string & { readonly __brand: 'SecretPath' };

export interface PutResult {
  path: string;
  version: number;
  /** True when this put created the secret (HTTP 201). */
  created: boolean;
}

export interface PutOptions {
  /** Check-and-set: the expected current version; 0 = create only. */
  cas?: number | undefined;
  /**
   * Whether a cas conflict may name the current version: only for a caller
   * who may read the path (a write-only caller must not learn it). Default no.
   */
  revealVersion?: boolean;
}

export interface ListOptions {
  prefix?: string | undefined;
  limit?: number | undefined;
  cursor?: string | null | undefined;
  /** What the caller may list (its ACL); default everything. */
  scope?: ListScope | undefined;
}

/**
 * The caller's list permission as a listing walks the key order: which paths
 * it may list, where they can lie, and how far the walk may jump past one it
 * may not list. A listing reads nothing outside `ranges`.
 */
export interface ListScope {
  allows(path: string): boolean;
  /** Disjoint prefixes, in key order, that every listable path starting with `prefix` starts with. */
  ranges(prefix: string): string[];
  /** For a path it may not list: a key such that no listable path lies between the path and it (the path itself if none better). */
  skipPast(path: string): string;
}

/** Why a version named in a delete, undelete or destroy was left as it was. */
export type SkipReason = 'not_found' | 'already_deleted' | 'not_deleted' | 'destroyed' | 'already_destroyed';

/** What a delete, undelete or destroy did to each version it named. */
export interface VersionsOutcome {
  path: string;
  done: number[];
  skipped: Array<{ version: number; reason: SkipReason }>;
}

export interface PurgeResult {
  path: string;
  /** Versions (rows) removed with the path. */
  versions: number;
}
