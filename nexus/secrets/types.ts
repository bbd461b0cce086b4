export type { ListPage, SecretData, SecretMetadata, SecretVersion, VersionInfo } from './schema.js';

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
  /** Only paths for which this returns true are listed (the caller's ACL). */
  allow?: ((path: string) => boolean) | undefined;
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
