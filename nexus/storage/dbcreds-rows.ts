// Rows and repositories of database connections, credential roles and
// leases (issue 21). Repositories speak rows; the admin password is not in
// any of them (it is sealed in config_secrets).

export interface DbConnectionRow {
  name: string;
  /** postgres://host:port/db, without credentials. */
  url: string;
  username: string;
  /** JSON array of role names. */
  allowed_roles: string;
  created_at: string;
  updated_at: string;
}

export interface DbRoleRow {
  name: string;
  connection: string;
  /** JSON array. */
  creation_statements: string;
  /** JSON array; null: the default revocation. */
  revocation_statements: string | null;
  default_ttl_s: number;
  max_ttl_s: number;
  /** null: the default template. */
  username_template: string | null;
  created_at: string;
  updated_at: string;
}

export type LeaseState = 'pending' | 'active' | 'revoking' | 'failed';

/** A lease: only what revocation needs (never a password). Times in ms since the epoch. */
export interface LeaseRow {
  id: string;
  role: string;
  connection: string;
  username: string;
  /** SHA-256 of the exchanged token it was minted with; null for an mTLS caller. */
  token_hash: Buffer | null;
  caller: string;
  created_at: number;
  expires_at: number;
  max_expires_at: number;
  state: LeaseState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  claim_owner: string | null;
  claim_until: number | null;
}

export interface DbCredsRepo {
  connections(): Promise<DbConnectionRow[]>;
  connection(name: string): Promise<DbConnectionRow | undefined>;
  upsertConnection(row: Omit<DbConnectionRow, 'created_at' | 'updated_at'>, now: string): Promise<void>;
  deleteConnection(name: string): Promise<boolean>;
  roles(): Promise<DbRoleRow[]>;
  role(name: string): Promise<DbRoleRow | undefined>;
  upsertRole(row: Omit<DbRoleRow, 'created_at' | 'updated_at'>, now: string): Promise<void>;
  deleteRole(name: string): Promise<boolean>;
}

/** What the sweeper asks for: the leases due for revocation at `now`. */
export interface DueQuery {
  owner: string;
  now: number;
  /** The claim lasts until then: no other replica takes the lease meanwhile. */
  claimUntil: number;
  limit: number;
}

export interface LeasesRepo {
  insert(row: LeaseRow): Promise<void>;
  get(id: string): Promise<LeaseRow | undefined>;
  /** pending -> active; false when the row is no longer pending (revoked meanwhile). */
  activate(id: string): Promise<boolean>;
  /** Leases of `role` (all: null), by id after `after`. */
  list(role: string | null, after: string, limit: number): Promise<LeaseRow[]>;
  countActive(): Promise<number>;
  countOfConnection(connection: string): Promise<number>;
  /** Pending and active leases of one holder: an exchanged token (its hash), or, with null, the mTLS caller `caller`. */
  countHeld(tokenHash: Buffer | null, caller: string): Promise<number>;
  /** Sets an active lease's expiry; the row after, or undefined when it is not active. */
  extend(id: string, expiresAt: number): Promise<LeaseRow | undefined>;
  /**
   * Claims, for `q.owner`, the leases due now: active ones expired or whose
   * exchanged token is gone, pending ones whose creator's claim ran out, and
   * those marked revoking; never one claimed by another owner until its claim ends.
   */
  claimDue(q: DueQuery): Promise<LeaseRow[]>;
  /** Claims one lease for revocation (marks it revoking), unless another owner holds it. */
  claim(id: string, owner: string, now: number, claimUntil: number): Promise<LeaseRow | undefined>;
  /** Ids of the leases minted with any of these tokens. */
  idsOfTokens(hashes: Buffer[]): Promise<string[]>;
  /** Marks leases revoking (due at once). */
  markRevoking(ids: string[]): Promise<void>;
  /** Deletes a revoked lease still claimed by `owner`; false when it was not (taken over, or gone). */
  done(id: string, owner: string): Promise<boolean>;
  /** Records a failed attempt and releases the claim; `giveUp` marks it failed. */
  failed(id: string, owner: string, error: string, nextAttemptAt: number, giveUp: boolean): Promise<void>;
}
