// PostgreSQL for tests: a fresh database per suite, dropped after, so parallel
// runs never collide. NEXUS_TEST_DATABASE_URL names the server (any database
// on it; .ci/run sets it, and then an unreachable server fails the run).
// Unset, the local default is tried and the PostgreSQL suites are skipped,
// with one line saying so, if nothing answers there; `off` skips them.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/test';
const HOW = 'set NEXUS_TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB (a role that may CREATE DATABASE) to run them, as .ci/run does';

let probed: Promise<string | null> | null = null;
let warned = false;

async function reachable(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** The server URL for PostgreSQL tests, or null (tests skip). Throws if the configured server is unreachable. */
export function pgServerUrl(): Promise<string | null> {
  probed ??= (async () => {
    const configured = process.env.NEXUS_TEST_DATABASE_URL;
    if (configured === 'off') return null;
    if (configured) {
      if (!(await reachable(configured))) throw new Error(`NEXUS_TEST_DATABASE_URL is set but the server does not answer: ${configured.replace(/:[^:@/]*@/, ':***@')}`);
      return configured;
    }
    return (await reachable(DEFAULT_URL)) ? DEFAULT_URL : null;
  })();
  return probed;
}

/** In a `before` hook: skips the suite (saying so once) when no PostgreSQL is available. */
export async function requirePg(ctx: Mocha.Context): Promise<string> {
  const url = await pgServerUrl();
  if (!url) {
    const why = process.env.NEXUS_TEST_DATABASE_URL === 'off' ? 'NEXUS_TEST_DATABASE_URL=off' : `no server at ${DEFAULT_URL}`;
    if (!warned) console.log(`\n  PostgreSQL tests SKIPPED (${why}); ${HOW}\n`);
    warned = true;
    ctx.skip();
  }
  return url!;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A new, empty database on the test server. */
export async function createTestDatabase(serverUrl: string): Promise<TestDatabase> {
  const name = `nexus_t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(serverUrl, name),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** One query on a database, for assertions that look under the storage layer. */
export async function sql<R = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as R[];
  } finally {
    await c.end();
  }
}
