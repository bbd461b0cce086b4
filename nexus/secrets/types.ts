/** A secret's value: string keys to string values. */
export type SecretData = Record<string, string>;

/** A validated secret path (see parseSecretPath). */
export type SecretPath = string & { readonly __brand: 'SecretPath' };

export interface SecretVersion {
  path: string;
  version: number;
  data: SecretData;
  created_at: string;
}

export interface VersionInfo {
  version: number;
  created_at: string;
  deleted_at: string | null;
  destroyed: boolean;
}

export interface SecretMetadata {
  path: string;
  current_version: number;
  versions: VersionInfo[];
}

export interface PutResult {
  path: string;
  version: number;
  /** True when this put created the secret (HTTP 201). */
  created: boolean;
}

export interface ListPage {
  paths: string[];
  next_cursor: string | null;
}

export interface PutOptions {
  /** Check-and-set: the expected current version; 0 = create only. */
  cas?: number | undefined;
}

export interface ListOptions {
  prefix?: string | undefined;
  limit?: number | undefined;
  cursor?: string | null | undefined;
  /** Only paths for which this returns true are listed (the caller's ACL). */
  allow?: ((path: string) => boolean) | undefined;
}
