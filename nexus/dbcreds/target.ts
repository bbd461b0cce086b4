import pg from 'pg';
import { BadRequestError, UnavailableError } from '../errors.js';

/**
 * The databases credentials are minted on (not Nexus's own storage): one
 * small pool per connection, opened on first use with the admin password
 * from the sealed configuration, replaced when the connection changes.
 * Errors from here never carry the server's message text for a statement
 * that held a password: only its position and SQLSTATE.
 */

export interface TargetAddress {
  host: string;
  port: number;
  database: string;
  ssl: boolean;
}

/** A connection URL as accepted: postgres://host[:port]/database, no credentials. */
export function parseTargetUrl(raw: string): TargetAddress {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BadRequestError('url', 'url must be postgres://host:port/database');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new BadRequestError('url', 'url must be postgres://host:port/database');
  if (u.username || u.password) throw new BadRequestError('url', 'url must not hold credentials: give username and password as their own fields');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!u.hostname || !database || database.includes('/')) throw new BadRequestError('url', 'url must name a host and a database: postgres://host:port/database');
  const sslmode = u.searchParams.get('sslmode');
  if ([...u.searchParams.keys()].some((k) => k !== 'sslmode') || (sslmode !== null && !['disable', 'require'].includes(sslmode))) {
    throw new BadRequestError('url', 'url may carry only ?sslmode=disable|require');
  }
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 5432, database, ssl: sslmode === 'require' };
}

export interface TargetLogin {
  url: string;
  username: string;
  password: string;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', '57P01', '57P03']);

/** What went wrong reaching a target, in words an operator can act on (never a password). */
export function describeFailure(err: unknown): { kind: 'unreachable' | 'authentication' | 'database' | 'other'; text: string } {
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  if (UNREACHABLE.has(code) || /timeout|terminated|Connection terminated/i.test(e?.message ?? '')) return { kind: 'unreachable', text: `unreachable (${code || 'timeout'})` };
  if (code === '28P01' || code === '28000') return { kind: 'authentication', text: `authentication refused (SQLSTATE ${code})` };
  if (code === '3D000') return { kind: 'database', text: 'the database does not exist (SQLSTATE 3D000)' };
  return { kind: 'other', text: code ? `SQLSTATE ${code}` : 'unexpected error' };
}

export interface TargetOptions {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  poolSize: number;
}

export const DEFAULT_TARGET_OPTIONS: TargetOptions = { connectTimeoutMs: 5000, statementTimeoutMs: 10_000, poolSize: 4 };

function clientConfig(login: TargetLogin, o: TargetOptions): pg.ClientConfig {
  const a = parseTargetUrl(login.url);
  return {
    host: a.host,
    port: a.port,
    database: a.database,
    user: login.username,
    password: login.password,
    ssl: a.ssl ? { rejectUnauthorized: true } : false,
    connectionTimeoutMillis: o.connectTimeoutMs,
    statement_timeout: o.statementTimeoutMs,
    query_timeout: o.statementTimeoutMs + 1000,
    application_name: 'nexus-dbcreds',
  };
}

/** Connects once as the admin; a 400 naming what failed (unreachable, authentication refused, missing CREATEROLE). */
export async function verifyTarget(login: TargetLogin, o: TargetOptions = DEFAULT_TARGET_OPTIONS): Promise<void> {
  const client = new pg.Client(clientConfig(login, o));
  client.on('error', () => {});
  try {
    try {
      await client.connect();
    } catch (err) {
      throw new BadRequestError('connection', `could not connect to ${redacted(login.url)} as ${login.username}: ${describeFailure(err).text}`);
    }
    const r = await client.query<{ rolcreaterole: boolean; rolsuper: boolean }>('SELECT rolcreaterole, rolsuper FROM pg_roles WHERE rolname = current_user');
    const row = r.rows[0];
    if (!row || (!row.rolcreaterole && !row.rolsuper)) throw new BadRequestError('connection', `${login.username} on ${redacted(login.url)} lacks CREATEROLE: it cannot create users`);
  } finally {
    await client.end().catch(() => {});
  }
}

function redacted(url: string): string {
  try {
    const a = parseTargetUrl(url);
    return `${a.host}:${a.port}/${a.database}`;
  } catch {
    return '(bad url)';
  }
}

/** Pools to the target databases, by connection name and version. */
export class TargetPools {
  private readonly pools = new Map<string, { version: string; pool: pg.Pool }>();

  constructor(private readonly o: TargetOptions = DEFAULT_TARGET_OPTIONS) {}

  /** The pool for `name` at `version` (its updated_at): a changed connection gets a new one. */
  async pool(name: string, version: string, login: () => Promise<TargetLogin>): Promise<pg.Pool> {
    const have = this.pools.get(name);
    if (have?.version === version) return have.pool;
    const pool = new pg.Pool({ ...clientConfig(await login(), this.o), max: this.o.poolSize, idleTimeoutMillis: 30_000 });
    pool.on('error', () => {});
    const again = this.pools.get(name);
    if (again?.version === version) {
      void pool.end();
      return again.pool;
    }
    this.pools.set(name, { version, pool });
    if (have) void have.pool.end().catch(() => {});
    return pool;
  }

  forget(name: string): void {
    const have = this.pools.get(name);
    this.pools.delete(name);
    if (have) void have.pool.end().catch(() => {});
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.pool.end().catch(() => {})));
  }
}

/** One step of a transaction: a rendered statement, or work that reads the catalog before it writes. */
export type Step = string | ((client: pg.ClientBase) => Promise<void>);

/**
 * Runs rendered statements on the target in one transaction. A failure is
 * reported by the statement's position and SQLSTATE only: its text (and the
 * server's message, which may quote it) may hold the password.
 */
export async function runStatements(pool: pg.Pool, connection: string, statements: Step[]): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw new UnavailableError(`database connection ${connection} is ${describeFailure(err).text}`);
  }
  // Checked out, a client has no error listener of the pool's: a target that goes away would crash the process.
  const ignore = () => {};
  client.on('error', ignore);
  let i = -1;
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    for (i = 0; i < statements.length; i++) {
      const step = statements[i]!;
      await (typeof step === 'string' ? client.query(step) : step(client));
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    const f = describeFailure(err);
    // A connection that broke or timed out is not put back in the pool.
    if (f.kind === 'unreachable') broken = err as Error;
    if (f.kind === 'unreachable' || i < 0) throw new UnavailableError(`database connection ${connection} is ${f.text}`);
    throw new StatementError(i, f.text, (err as { code?: string }).code ?? '');
  } finally {
    client.removeListener('error', ignore);
    client.release(broken);
  }
}

/**
 * Catalog races between concurrent revocations (two DROP OWNED rewriting the
 * same table's ACL: "tuple concurrently updated"), deadlocks, serialization
 * failures: worth trying again at once.
 */
export function isTransient(err: unknown): boolean {
  return err instanceof StatementError && ['XX000', '40001', '40P01'].includes(err.sqlstate);
}

/** runStatements, tried again (up to 5 times, with jitter) when the transaction lost a catalog race. */
export async function runRetrying(pool: pg.Pool, connection: string, statements: Step[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runStatements(pool, connection, statements);
    } catch (err) {
      if (!isTransient(err) || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt * Math.random()));
    }
  }
}

/** Whether a role exists on the target (revocation tolerates a user that never got created). */
export async function roleExists(pool: pg.Pool, connection: string, name: string): Promise<boolean> {
  try {
    return (await pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount! > 0;
  } catch (err) {
    throw new UnavailableError(`database connection ${connection} is ${describeFailure(err).text}`);
  }
}

/** A statement the target refused: where and why, never its text. */
export class StatementError extends Error {
  constructor(
    readonly index: number,
    readonly detail: string,
    readonly sqlstate: string,
  ) {
    super(`statement ${index + 1} failed: ${detail}`);
  }
}
