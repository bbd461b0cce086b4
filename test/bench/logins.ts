// Bounded state under a login storm (issue 26): N token exchanges
// (BENCH_LOGINS, 20,000 by default; 1,000,000 for the full run) with short-
// lived tokens, then a wait until they have expired and been purged. Printed:
// the database's size at the start, at the end of the run and after expiry;
// the server's RSS after the first 10% and at the end; exchange latency over
// the first and the last 1,000. SQLite, then one replica on PostgreSQL.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startIdp } from '../helpers/idp.js';
import { tempDir } from '../helpers/env.js';
import { createTestDatabase, pgServerUrl, sql } from '../helpers/pg.js';
import { call, type ClientCreds } from '../helpers/server.js';
import { jobConnection, type JobConnection } from './job-client.js';
import { spawnNexus } from './nexus-process.js';
import { oidcFixture } from './oidc.js';
import type { BenchRow } from './report.js';
import { rssKiB } from './rss.js';

const TTL_S = 5;
const PURGE_MS = 1000;
const WORKERS = 8;
const WINDOW = 1000;

interface Db {
  name: string;
  /**
   * What the size after expiry is held to: SQLite's pages in use return to
   * the start; PostgreSQL keeps a table's freed space for reuse (autovacuum
   * marks it, nothing shrinks the file), so bounded there means no growth past
   * the size reached once the live set was there (after the first 10%).
   */
  reference: 'start' | 'tenth';
  /** Bytes the database holds for its data (SQLite: pages in use; PostgreSQL: the token table with indexes and TOAST). */
  size(): Promise<number>;
  tokens(): Promise<number>;
}

function sqliteDb(file: string): Db {
  const q = <T>(text: string): T => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare(text).get() as T;
    } finally {
      db.close();
    }
  };
  return {
    name: 'SQLite',
    reference: 'start',
    // The file keeps freed pages for reuse: what matters is the pages in use.
    size: async () => {
      const r = q<{ n: number; free: number; size: number }>('SELECT p.page_count AS n, f.freelist_count AS free, s.page_size AS size FROM pragma_page_count p, pragma_freelist_count f, pragma_page_size s');
      return (r.n - r.free) * r.size;
    },
    tokens: async () => q<{ n: number }>('SELECT count(*) AS n FROM oidc_tokens').n,
  };
}

function pgDb(url: string): Db {
  return {
    name: 'PostgreSQL',
    reference: 'tenth',
    size: async () => Number((await sql<{ n: string }>(url, "SELECT pg_total_relation_size('oidc_tokens') AS n"))[0]!.n),
    tokens: async () => Number((await sql<{ n: string }>(url, 'SELECT count(*) AS n FROM oidc_tokens'))[0]!.n),
  };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function progress(done: number, total: number, t0: number): void {
  if (!process.stderr.isTTY && done !== total && done % Math.max(1, Math.floor(total / 20)) !== 0) return;
  const width = 30;
  const filled = Math.round((done / total) * width);
  const rate = done / ((performance.now() - t0) / 1000);
  process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${((done / total) * 100).toFixed(0).padStart(3)}% ${done}/${total} ${Math.round(rate)}/s${process.stderr.isTTY ? '' : '\n'}`);
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

async function logins(db: Db, srv: { pid: number; oidcPort: number; port: number }, admin: ClientCreds, ca: Buffer, mint: (jti: string) => Promise<string>, n: number): Promise<BenchRow[]> {
  await call(srv.port, admin, 'PUT', '/v1/oidc/roles/bench', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/*'], permissions: ['read'], token_ttl_s: TTL_S });
  const conns: JobConnection[] = Array.from({ length: WORKERS }, () => jobConnection(srv.oidcPort, ca));
  // Warm-up, then the starting size with the schema and fixture in place.
  for (let i = 0; i < 200; i++) await conns[0]!.request('POST', '/v1/auth/token', { jwt: await mint(`warm-${i}`) });
  await new Promise((r) => setTimeout(r, TTL_S * 1000 + 2 * PURGE_MS));
  const sizeStart = await db.size();
  const times = new Float64Array(n);
  let next = 0;
  let done = 0;
  let rssTenth = 0;
  let sizeTenth: Promise<number> = Promise.resolve(0);
  const t0 = performance.now();
  await Promise.all(
    conns.map(async (c) => {
      for (let i = next++; i < n; i = next++) {
        const jwt = await mint(`login-${i}`);
        const t = performance.now();
        await c.request('POST', '/v1/auth/token', { jwt });
        times[i] = performance.now() - t;
        done++;
        if (done === Math.ceil(n / 10)) {
          rssTenth = rssKiB(srv.pid);
          sizeTenth = db.size();
        }
        progress(done, n, t0);
      }
    }),
  );
  if (process.stderr.isTTY) process.stderr.write('\n');
  const elapsed = (performance.now() - t0) / 1000;
  const rssEnd = rssKiB(srv.pid);
  const sizeEnd = await db.size();
  const liveAtEnd = await db.tokens();
  for (const c of conns) c.close();
  // Every token minted has expired TTL_S after the last one; the purge runs every PURGE_MS.
  const deadline = Date.now() + TTL_S * 1000 + 30 * PURGE_MS;
  while ((await db.tokens()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, PURGE_MS / 2));
  const left = await db.tokens();
  const sizeAfter = await db.size();
  const ref = db.reference === 'start' ? sizeStart : await sizeTenth;
  const dbRatio = sizeAfter / ref;
  const first = Array.from(times.subarray(0, Math.min(WINDOW, n))).sort((a, b) => a - b);
  const last = Array.from(times.subarray(Math.max(0, n - WINDOW))).sort((a, b) => a - b);
  console.log(`\nLogins, ${db.name}: ${n} exchanges in ${elapsed.toFixed(1)} s (${Math.round(n / elapsed)}/s, ${WORKERS} keep-alive connections), token TTL ${TTL_S} s, purge every ${PURGE_MS} ms`);
  console.log(
    `  database: ${mb(sizeStart)} at start, ${mb(await sizeTenth)} after 10%, ${mb(sizeEnd)} at the end (${liveAtEnd} live tokens), ${mb(sizeAfter)} after expiry (${left} tokens left): ${dbRatio.toFixed(2)}x of the ${db.reference === 'start' ? 'start' : 'size after 10%'} (aim <= 1.10x)`,
  );
  console.log(`  server RSS: ${(rssTenth / 1024).toFixed(1)} MB after the first 10%, ${(rssEnd / 1024).toFixed(1)} MB at the end: ${(rssEnd / rssTenth).toFixed(2)}x (aim <= 1.10x)`);
  console.log(`  exchange latency, first ${first.length}: p50 ${pct(first, 0.5).toFixed(2)} ms p99 ${pct(first, 0.99).toFixed(2)} ms; last ${last.length}: p50 ${pct(last, 0.5).toFixed(2)} ms p99 ${pct(last, 0.99).toFixed(2)} ms (aim p50 <= 1.2x)`);
  const endP50 = pct(last, 0.5);
  const startP50 = pct(first, 0.5);
  return [
    {
      scenario: `Logins, ${db.name}: ${n} exchanges; DB after expiry vs start, RSS end vs 10%, p50 last vs first ${WINDOW}`,
      unit: 'ops/s',
      rate: n / elapsed,
      p50: endP50,
      p99: pct(last, 0.99),
      baseline: { name: `first ${WINDOW}, p50 ${startP50.toFixed(2)} ms`, rate: n / elapsed },
      aim: {
        text: `DB ${dbRatio.toFixed(2)}x, RSS ${(rssEnd / rssTenth).toFixed(2)}x, p50 ${(endP50 / startP50).toFixed(2)}x, ${left} left; aims <= 1.1/1.1/1.2, 0`,
        met: dbRatio <= 1.1 && rssEnd <= 1.1 * rssTenth && endP50 <= 1.2 * startP50 && left === 0,
      },
    },
  ];
}

const SERVER_ENV = { NEXUS_OIDC_ADDR: '127.0.0.1:0', NEXUS_OIDC_SUBJECT_RPS: '1000000', NEXUS_LOG_LEVEL: 'warn', NEXUS_OIDC_TOKEN_PURGE_INTERVAL_MS: String(PURGE_MS) };

export async function loginsBench(): Promise<BenchRow[]> {
  const n = Number(process.env.BENCH_LOGINS ?? '20000');
  if (!Number.isInteger(n) || n < WINDOW) throw new Error(`BENCH_LOGINS: an integer of at least ${WINDOW}, got ${process.env.BENCH_LOGINS}`);
  const idp = await startIdp();
  const es = await idp.server.issuer.keys.generate('ES256', { kid: 'logins-es256' });
  const rows: BenchRow[] = [];
  try {
    // BENCH_LOGINS_BACKENDS=postgres (or sqlite) runs one back end only.
    const backends = (process.env.BENCH_LOGINS_BACKENDS ?? 'sqlite,postgres').split(',');
    for (const backend of ['sqlite', 'postgres'] as const) {
      if (!backends.includes(backend)) continue;
      const server = backend === 'postgres' ? await pgServerUrl() : null;
      if (backend === 'postgres' && !server) {
        console.log('Logins on PostgreSQL skipped: no server (set NEXUS_TEST_DATABASE_URL)');
        continue;
      }
      const pg = server ? await createTestDatabase(server) : null;
      const dir = tempDir('nexus-bench-logins');
      const srv = await spawnNexus({ NEXUS_DATA_DIR: dir, ...SERVER_ENV, ...(pg ? { NEXUS_DATABASE_URL: pg.url } : {}) });
      try {
        const pki = path.join(dir, 'pki');
        const ca = fs.readFileSync(path.join(pki, 'ca.crt'));
        const admin = { ca: ca.toString(), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
        const mint = await oidcFixture(idp, srv.port, admin, es.kid);
        const db = pg ? pgDb(pg.url) : sqliteDb(path.join(dir, 'nexus.db'));
        rows.push(...(await logins(db, { pid: srv.child.pid!, oidcPort: srv.oidcPort!, port: srv.port }, admin, ca, mint, n)));
      } finally {
        srv.child.kill('SIGTERM');
        await srv.exited;
        await pg?.drop();
      }
    }
    return rows;
  } finally {
    await idp.stop();
  }
}
