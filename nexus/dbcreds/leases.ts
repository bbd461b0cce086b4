import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { describePrincipal, type AuditEntry, type AuditTrail } from '../audit/trail.js';
import { BadRequestError, ForbiddenError, NotFoundError, RateLimitedError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { DbConnectionRow, LeaseRow } from '../storage/dbcreds-rows.js';
import type { Storage } from '../storage/storage.js';
import { allows, type DbCredsConfig } from './config.js';
import type { DbCreds, LeaseInfo } from './schema.js';
import { render, revocationOf } from './statements.js';
import { describeFailure, roleExists, runRetrying, runStatements, StatementError, TargetPools } from './target.js';
import { callerOf, DEFAULT_USERNAME_TEMPLATE, renderUsername } from './username.js';

/** Who asks for, renews or revokes a lease. */
export interface LeaseCaller {
  principal: Principal;
  port: 'mtls' | 'oidc';
  /** The verified claims of an OIDC caller (repository, run id for the username). */
  claims?: Readonly<Record<string, unknown>>;
  /** SHA-256 of the exchanged token presented (OIDC); null on the mTLS port. */
  tokenHash: Buffer | null;
  /** When that token ends (ms): no lease outlives it. */
  tokenExpiresAt: number | null;
  /** An admin on the mTLS port may act on any lease. */
  admin?: boolean;
  /** Whether the caller's grants as they are now (narrowed, X-Nexus-Role) allow `read` on `path`: renewing needs what issuing needs. */
  mayRead(path: string): boolean;
  requestId?: string;
  tokenId?: string;
}

export interface LeaseOptions {
  /** This process, as the owner of its claims (the replica id). */
  owner: string;
  /** A claim's length: no other replica takes the lease meanwhile. */
  claimMs?: number;
  /** How long a creator holds its new row: after that, a pending row is an orphan of a crash between row and user. */
  pendingGraceMs?: number;
  /** Attempts before a revocation is given up (and alerted). */
  maxAttempts?: number;
  /** Revocations run side by side (per sweep or bulk revocation). */
  concurrency?: number;
  /** Pending and active leases one exchanged token, or one mTLS caller, may hold (NEXUS_DB_MAX_LEASES_PER_CALLER). */
  maxLeasesPerCaller?: number;
  now?: () => number;
  /** For crash tests: runs after the lease row is written, before the user is created. */
  afterLeaseRow?: (id: string) => void | Promise<void>;
  /** For crash tests: runs after the user is created, before its row is marked active. */
  afterUserCreated?: (id: string) => void | Promise<void>;
}

export type RevocationOutcome = 'revoked' | 'retry' | 'failed';

const LEASE_PREFIX = 'db/creds/';

/** Back-off between attempts: 1 s doubling, at most 5 min. */
export function backoffMs(attempts: number): number {
  return Math.min(300_000, 1000 * 2 ** Math.max(0, attempts - 1));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Runs `fn` over `items`, at most `n` at a time. */
async function eachLimited<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

export function leaseInfo(r: LeaseRow): LeaseInfo {
  return {
    lease_id: r.id,
    role: r.role,
    connection: r.connection,
    username: r.username,
    caller: r.caller,
    state: r.state,
    created_at: iso(r.created_at),
    expires_at: iso(r.expires_at),
    max_expires_at: iso(r.max_expires_at),
    attempts: r.attempts,
    ...(r.last_error ? { last_error: r.last_error } : {}),
  };
}

/**
 * Leases of short-lived database users: minted per request, renewed up to
 * their role's max_ttl_s and their token's end, revoked on request, at
 * expiry (the sweeper), or with the token they were minted with. The row is
 * written (claimed by its creator) before the user exists, so a crash leaves
 * a row the sweeper revokes once the claim runs out, never an orphan user.
 */
export class LeaseService {
  readonly targets = new TargetPools({ connectTimeoutMs: 5000, statementTimeoutMs: 10_000, poolSize: 8 });
  private readonly o: Required<Omit<LeaseOptions, 'afterLeaseRow' | 'afterUserCreated'>> & Pick<LeaseOptions, 'afterLeaseRow' | 'afterUserCreated'>;

  constructor(
    private readonly storage: Storage,
    private readonly config: DbCredsConfig,
    private readonly audit: AuditTrail,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    opts: LeaseOptions,
  ) {
    this.o = { claimMs: 120_000, pendingGraceMs: 60_000, maxAttempts: 8, concurrency: 8, maxLeasesPerCaller: 10, now: Date.now, ...opts };
  }

  private pool(c: DbConnectionRow) {
    return this.targets.pool(c.name, c.updated_at, () => this.config.login(c));
  }

  /** Creates a user for `roleName` and its lease; the one answer that holds the password. */
  async issue(roleName: string, who: LeaseCaller, ttlS?: number): Promise<DbCreds> {
    const role = await this.config.roleRow(roleName);
    const conn = await this.storage.dbcreds.connection(role.connection);
    if (!conn) throw new UnavailableError(`database role ${role.name} names connection ${role.connection}, which does not exist`);
    if (!allows(conn, role.name)) throw new ForbiddenError(`database connection ${conn.name} does not allow role ${role.name} (its allowed_roles)`);
    const ttl = ttlS ?? role.default_ttl_s;
    if (ttl > role.max_ttl_s) throw new BadRequestError('ttl', `ttl ${ttl} exceeds role ${role.name}'s max_ttl_s (${role.max_ttl_s})`);
    const now = this.o.now();
    const maxExpires = Math.min(now + role.max_ttl_s * 1000, who.tokenExpiresAt ?? Infinity);
    const expires = Math.min(now + ttl * 1000, maxExpires);
    if (expires <= now) throw new BadRequestError('token', 'the token expires now: exchange a new one');
    const caller = callerOf(who.principal, who.claims);
    const username = renderUsername(role.username_template ?? DEFAULT_USERNAME_TEMPLATE, role.name, caller, now);
    const row: LeaseRow = {
      id: `${LEASE_PREFIX}${role.name}/${randomBytes(16).toString('base64url')}`,
      role: role.name,
      connection: conn.name,
      username,
      token_hash: who.tokenHash,
      caller: caller.id,
      created_at: now,
      expires_at: expires,
      max_expires_at: maxExpires,
      state: 'pending',
      attempts: 0,
      next_attempt_at: 0,
      last_error: null,
      // Held by its creator while the user is made; after a crash the sweeper takes it when this runs out.
      claim_owner: this.o.owner,
      claim_until: now + this.o.pendingGraceMs,
    };
    await this.storage.leases.insert(row);
    // Counted after the row is written, so concurrent requests (on any replica) each see the others' rows:
    // a burst may be refused a little early, never let past the cap.
    if ((await this.storage.leases.countHeld(who.tokenHash, caller.id)) > this.o.maxLeasesPerCaller) {
      await this.storage.leases.done(row.id, this.o.owner);
      const holder = who.tokenHash ? 'this token' : caller.id;
      throw new RateLimitedError(60, `${holder} already holds ${this.o.maxLeasesPerCaller} active leases (the most one caller may hold): revoke one (PUT /v1/leases/revoke) or let one expire first`);
    }
    await this.o.afterLeaseRow?.(row.id);
    const password = randomBytes(24).toString('base64url');
    try {
      const statements = (JSON.parse(role.creation_statements) as string[]).map((s) => render(s, { name: username, password, expiration: new Date(expires) }));
      await runRetrying(await this.pool(conn), conn.name, statements);
    } catch (err) {
      // Nothing half-made stays behind: the user (if any part of it exists) and the row go now.
      const outcome = await this.revokeClaimed(row, 'creation failed', who.port === 'mtls' ? 'mtls' : 'oidc');
      await this.record(who, 'lease.create', row, 'error', err instanceof StatementError ? `creation statement ${err.index + 1} failed: ${err.detail}` : describeFailure(err).text);
      if (err instanceof StatementError) throw new BadRequestError('creation_statements', `database role ${role.name}: creation statement ${err.index + 1} failed on connection ${conn.name} (${err.detail}); no user was left behind${outcome === 'revoked' ? '' : ' (its cleanup is retried)'}`);
      throw err;
    }
    await this.o.afterUserCreated?.(row.id);
    await this.storage.leases.activate(row.id);
    if (!(await this.record(who, 'lease.create', row, 'allow'))) {
      await this.revokeNow(row.id, 'audit trail unwritable', who.port);
      throw new UnavailableError('the audit trail cannot be written; refusing to hand out an unrecorded credential');
    }
    return { username, password, lease_id: row.id, lease_duration: Math.round((expires - now) / 1000), renewable: expires < maxExpires };
  }

  private async leaseFor(id: string, who: LeaseCaller): Promise<LeaseRow> {
    const row = await this.storage.leases.get(id);
    const mine = row && (who.admin || (who.tokenHash ? row.token_hash?.equals(who.tokenHash) : row.token_hash === null && row.caller === callerOf(who.principal).id));
    // Another's lease is as absent as one that never was: ids are not probed.
    if (!row || !mine) throw new NotFoundError(`no lease ${id} of this caller`);
    return row;
  }

  /** Extends a lease by `incrementS` from now (default: its role's default_ttl_s), never past its max. */
  async renew(id: string, incrementS: number | undefined, who: LeaseCaller): Promise<{ lease_id: string; lease_duration: number; renewable: boolean }> {
    const row = await this.leaseFor(id, who);
    const path = `${LEASE_PREFIX}${row.role}`;
    if (!who.admin && !who.mayRead(path)) throw new ForbiddenError(`permission denied: read on ${path} (renewing a lease needs what issuing it needs)`);
    if (row.state !== 'active') throw new BadRequestError('lease_id', `lease ${id} is ${row.state === 'pending' ? 'being created' : 'being revoked'}: it cannot be renewed`);
    const role = await this.storage.dbcreds.role(row.role);
    const now = this.o.now();
    const want = now + (incrementS ?? role?.default_ttl_s ?? Math.round((row.expires_at - row.created_at) / 1000)) * 1000;
    const expires = Math.min(want, row.max_expires_at);
    if (expires <= now) throw new BadRequestError('lease_id', `lease ${id} has reached its end`);
    const conn = await this.config.connectionRow(row.connection);
    // The database is told first: a row extended past what PostgreSQL allows would be a lie.
    await runStatements(await this.pool(conn), conn.name, [render('ALTER ROLE {{name}} VALID UNTIL {{expiration}}', { name: row.username, expiration: new Date(expires) })]).catch((err: unknown) => {
      if (err instanceof StatementError) throw new UnavailableError(`lease ${id}: the database refused the renewal (${err.detail})`);
      throw err;
    });
    const after = await this.storage.leases.extend(id, expires);
    if (!after) throw new BadRequestError('lease_id', `lease ${id} is being revoked: it cannot be renewed`);
    await this.record(who, 'lease.renew', after, 'allow');
    return { lease_id: id, lease_duration: Math.round((expires - now) / 1000), renewable: expires < row.max_expires_at };
  }

  /** Revokes one lease now (its user dropped, sessions ended) before answering. */
  async revoke(id: string, who: LeaseCaller): Promise<void> {
    const row = await this.leaseFor(id, who);
    const outcome = await this.revokeNow(row.id, 'requested', who.port, who);
    if (outcome !== 'revoked') throw new UnavailableError(`lease ${id} could not be revoked now; the sweeper keeps trying`);
  }

  /** Leases under `prefix` (db/creds/ or db/creds/ROLE), ids and states, never passwords. */
  async list(prefix: string): Promise<LeaseInfo[]> {
    const role = this.prefixRole(prefix);
    const out: LeaseInfo[] = [];
    for (let after = ''; ; ) {
      const page = await this.storage.leases.list(role, after, 500);
      out.push(...page.map(leaseInfo));
      if (page.length < 500 || out.length >= 10_000) return out;
      after = page[page.length - 1]!.id;
    }
  }

  /** Revokes every lease under `prefix` (pilot lease revoke-prefix). */
  async revokePrefix(prefix: string, who: LeaseCaller): Promise<{ revoked: number; failed: number }> {
    const ids = (await this.list(prefix)).filter((l) => l.state !== 'pending').map((l) => l.lease_id);
    const outcomes = await eachLimited(ids, this.o.concurrency, (id) => this.revokeNow(id, 'revoke-prefix', who.port, who));
    return { revoked: outcomes.filter((o) => o === 'revoked').length, failed: outcomes.filter((o) => o !== 'revoked').length };
  }

  /**
   * Revokes every lease minted with these exchanged tokens (SHA-256 hashes),
   * now: for revoke-self, and for any path that ends tokens and wants their
   * leases gone before it answers. The sweeper catches the rest within a second.
   */
  async revokeForTokens(hashes: Buffer[], reason = 'token revoked', port: AuditEntry['port'] = 'oidc'): Promise<{ revoked: number; failed: number }> {
    const ids = await this.storage.leases.idsOfTokens(hashes);
    await this.storage.leases.markRevoking(ids);
    const outcomes = await eachLimited(ids, this.o.concurrency, (id) => this.revokeNow(id, reason, port));
    return { revoked: outcomes.filter((o) => o === 'revoked').length, failed: outcomes.filter((o) => o !== 'revoked').length };
  }

  /** One sweep: claims every lease due and revokes it. Resolves to how many were attempted. */
  async sweepNow(): Promise<number> {
    let total = 0;
    for (;;) {
      const now = this.o.now();
      const due = await this.storage.leases.claimDue({ owner: this.o.owner, now, claimUntil: now + this.o.claimMs, limit: 100 });
      if (due.length === 0) return total;
      total += due.length;
      await eachLimited(due, this.o.concurrency, (row) => this.revokeClaimed(row, this.reasonOf(row, now), 'sweeper'));
      if (due.length < 100) return total;
    }
  }

  countActive(): Promise<number> {
    return this.storage.leases.countActive();
  }

  async close(): Promise<void> {
    await this.targets.close();
  }

  private reasonOf(row: LeaseRow, now: number): string {
    if (row.state === 'pending') return 'orphaned by a crash before its user was created';
    if (row.attempts > 0) return 'retry';
    return row.expires_at <= now ? 'expired' : 'token ended';
  }

  private prefixRole(prefix: string): string | null {
    const m = /^db\/creds\/(?:([A-Za-z0-9._-]{1,128})\/?)?$/.exec(prefix);
    if (!m) throw new BadRequestError('prefix', 'prefix must be db/creds/ or db/creds/ROLE');
    return m[1] ?? null;
  }

  /** Claims and revokes one lease, waiting out another replica's claim (it is revoking it: done when the row is gone). */
  private async revokeNow(id: string, reason: string, port: AuditEntry['port'], who?: LeaseCaller): Promise<RevocationOutcome> {
    const deadline = this.o.now() + 15_000;
    for (;;) {
      const now = this.o.now();
      const claimed = await this.storage.leases.claim(id, this.o.owner, now, now + this.o.claimMs);
      if (claimed) return this.revokeClaimed(claimed, reason, port, who);
      if (!(await this.storage.leases.get(id))) return 'revoked';
      if (now > deadline) return 'retry';
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Revokes a lease this process holds the claim of; a failure is retried later with back-off, then given up loudly. */
  private async revokeClaimed(row: LeaseRow, reason: string, port: AuditEntry['port'], who?: LeaseCaller): Promise<RevocationOutcome> {
    try {
      const conn = await this.storage.dbcreds.connection(row.connection);
      if (!conn) throw new Error(`database connection ${row.connection} no longer exists`);
      const role = await this.storage.dbcreds.role(row.role);
      const pool = await this.pool(conn);
      // A user that never got created (a crash, a failed creation) needs nothing but its row gone.
      if (await roleExists(pool, conn.name, row.username)) {
        for (const batch of revocationOf(role?.revocation_statements ? (JSON.parse(role.revocation_statements) as string[]) : null, row.username)) {
          await runRetrying(pool, conn.name, batch);
        }
      }
      if (await this.storage.leases.done(row.id, this.o.owner)) {
        this.metrics.leaseRevocations.inc({ outcome: 'revoked' });
        await this.record(who ?? port, 'lease.revoke', row, 'allow', reason);
      }
      return 'revoked';
    } catch (err) {
      const attempts = row.attempts + 1;
      const giveUp = attempts >= this.o.maxAttempts;
      const why = err instanceof StatementError ? `revocation statement ${err.index + 1} failed: ${err.detail}` : err instanceof UnavailableError ? err.message : describeFailure(err).text;
      await this.storage.leases.failed(row.id, this.o.owner, why, this.o.now() + backoffMs(attempts), giveUp).catch((e: unknown) => this.log.warn({ err: e, lease_id: row.id }, 'could not record a failed lease revocation'));
      this.metrics.leaseRevocations.inc({ outcome: giveUp ? 'failed' : 'retry' });
      const lease = { ...row, attempts };
      if (giveUp) {
        this.log.error({ lease_id: row.id, role: row.role, connection: row.connection, username: row.username, attempts, error: why }, 'lease revocation given up: the database user may still exist (alert)');
        await this.record(who ?? port, 'lease.revoke_failed', lease, 'error', `${reason}; given up after ${attempts} attempts: ${why}`);
      } else {
        this.log.warn({ lease_id: row.id, role: row.role, connection: row.connection, attempts, error: why }, 'lease revocation failed; retrying with back-off');
        await this.record(who ?? port, 'lease.revoke', lease, 'error', `${reason}; attempt ${attempts} failed: ${why}`);
      }
      return giveUp ? 'failed' : 'retry';
    }
  }

  private record(who: LeaseCaller | AuditEntry['port'], action: string, row: LeaseRow, decision: AuditEntry['decision'], reason?: string): Promise<boolean> {
    const caller = typeof who === 'string' ? undefined : who;
    return this.audit.record({
      request_id: caller?.requestId,
      port: caller?.port ?? (who as AuditEntry['port']),
      principal: describePrincipal(caller?.principal),
      action,
      path: row.id,
      decision,
      reason,
      token_id: caller?.tokenId,
      lease: { id: row.id, role: row.role, connection: row.connection, username: row.username, caller: row.caller, expires_at: iso(row.expires_at), ...(row.attempts ? { attempts: row.attempts } : {}) },
    });
  }
}
