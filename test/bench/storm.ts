// The CI storm (issue 26): jobs arrive on a schedule (open loop, Poisson at a
// fixed rate for a fixed time), each a fresh TLS connection that does what the
// CI clients do: exchange the IdP's JWT for a token, read 5 secrets,
// revoke-self. Beside it, in the same run and on the same schedule, two
// requests per job to a bare Koa TLS route: the floor. SQLite, then two
// replicas on one PostgreSQL. BENCH_STORM_RATES=50,100,200 BENCH_STORM_SECONDS=10.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { tempDir } from '../helpers/env.js';
import { createTestDatabase, pgServerUrl } from '../helpers/pg.js';
import type { ServerProcess } from '../helpers/process.js';
import { call, type ClientCreds } from '../helpers/server.js';
import { jobConnection } from './job-client.js';
import { startBare } from './mtls.js';
import { spawnNexus } from './nexus-process.js';
import { oidcFixture } from './oidc.js';
import { openLoop, type OpenLoopResult } from './open-loop.js';
import { cpuMicros, type BenchRow } from './report.js';

const READS = 5;
const HEADLINE_P99_MS = 100;

export interface StormOptions {
  rates: number[];
  seconds: number;
  /** BENCH_STORM_BACKENDS: which back ends run (default both). */
  backends: Array<'sqlite' | 'postgres'>;
}

export function stormOptions(env: NodeJS.ProcessEnv = process.env, scale = 1): StormOptions {
  const rates = (env.BENCH_STORM_RATES ?? '50,100,200').split(',').map(Number);
  if (rates.some((r) => !Number.isFinite(r) || r <= 0)) throw new Error(`BENCH_STORM_RATES: comma-separated jobs/s, got ${env.BENCH_STORM_RATES}`);
  const seconds = Number(env.BENCH_STORM_SECONDS ?? String(Math.round(10 * scale)));
  if (!(seconds > 0)) throw new Error(`BENCH_STORM_SECONDS: a positive number, got ${env.BENCH_STORM_SECONDS}`);
  const backends = (env.BENCH_STORM_BACKENDS ?? 'sqlite,postgres').split(',');
  if (backends.some((b) => b !== 'sqlite' && b !== 'postgres')) throw new Error(`BENCH_STORM_BACKENDS: sqlite and/or postgres, comma-separated, got ${env.BENCH_STORM_BACKENDS}`);
  return { rates, seconds, backends: backends as StormOptions['backends'] };
}

interface Target {
  name: string;
  /** OIDC ports, jobs spread round-robin as a load balancer would. */
  ports: number[];
  pids: number[];
  ca: Buffer;
  mint(jti: string): Promise<string>;
}

interface Step extends OpenLoopResult {
  cpuUsPerJob: number;
}

/** One rate against one target, the server CPU it cost per completed job. */
async function step(rate: number, seconds: number, pids: number[], job: (i: number) => Promise<void>, seed: number): Promise<Step> {
  const cpu = () => pids.reduce((n, p) => n + cpuMicros(p), 0);
  const c0 = cpu();
  const r = await openLoop(rate, seconds, job, seed);
  return { ...r, cpuUsPerJob: (cpu() - c0) / Math.max(1, r.completed) };
}

/** A CI job: exchange, 5 reads, revoke-self, on one fresh connection. */
function ciJob(t: Target, jwts: string[]): (i: number) => Promise<void> {
  return async (i) => {
    const conn = jobConnection(t.ports[i % t.ports.length]!, t.ca);
    try {
      const { token } = JSON.parse(await conn.request('POST', '/v1/auth/token', { jwt: jwts[i] })) as { token: string };
      const auth = { authorization: `Bearer ${token}` };
      for (let k = 0; k < READS; k++) await conn.request('GET', `/v1/secrets/ci/org/repo/s${k}`, undefined, auth);
      await conn.request('POST', '/v1/auth/token/revoke-self', undefined, auth);
    } finally {
      conn.close();
    }
  };
}

function bareJob(port: number, ca: Buffer): (i: number) => Promise<void> {
  return async () => {
    const conn = jobConnection(port, ca);
    try {
      await conn.request('GET', '/');
      await conn.request('GET', '/');
    } finally {
      conn.close();
    }
  };
}

const ms = (n: number) => (Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(1) : Math.round(n).toString());
const errs = (r: OpenLoopResult) => `${r.errors.reset}/${r.errors['429']}/${r.errors['503']}/${r.errors.other}`;
const holds = (r: OpenLoopResult) => r.p99 < HEADLINE_P99_MS && r.completed === r.scheduled;

function printStorm(name: string, rows: Array<{ rate: number; ci: Step; bare: Step }>): void {
  const header = ['jobs/s', 'scheduled', 'done', 'errors reset/429/503/other', 'p50 ms', 'p99 ms', 'p99.9 ms', 'CPU µs/job', 'in flight max', 'client lag ms', '| bare: done', 'errors', 'p50', 'p99', 'p99.9', 'CPU µs/job'];
  const lines = rows.map(({ rate, ci, bare }) => [
    String(rate), String(ci.scheduled), String(ci.completed), errs(ci), ms(ci.p50), ms(ci.p99), ms(ci.p999), Math.round(ci.cpuUsPerJob).toString(), String(ci.peakInFlight), ms(ci.launchLagMs),
    `| ${bare.completed}`, errs(bare), ms(bare.p50), ms(bare.p99), ms(bare.p999), Math.round(bare.cpuUsPerJob).toString(),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  console.log(`\nCI storm, ${name}: open loop, latency from each job's scheduled start (exchange + ${READS} reads + revoke-self, one fresh TLS connection per job)`);
  for (const l of [header, ...lines]) console.log(l.map((c, i) => c.padStart(widths[i]!)).join('  '));
  for (const { rate, ci } of rows) for (const [k, m] of Object.entries(ci.examples)) console.log(`  ${rate}/s first ${k}: ${m}`);
}

/** The rates in order, each once for the CI job and once for the bare route, the same Poisson schedule for both. */
async function storm(t: Target, bare: { port: number; pid: number }, o: StormOptions): Promise<BenchRow[]> {
  const rows: Array<{ rate: number; ci: Step; bare: Step }> = [];
  let jti = 0;
  const jwtsFor = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await t.mint(`storm-${process.pid}-${jti++}`));
    return out;
  };
  // Warm-up: JIT, caches, the IdP keys fetched, at the lowest rate for a second.
  const low = Math.min(...o.rates);
  await openLoop(low, 1, ciJob(t, await jwtsFor(low * 2 + 10)));
  await openLoop(low, 1, bareJob(bare.port, t.ca));
  for (const [n, rate] of o.rates.entries()) {
    // Fresh JWTs for every job (a repeated one is answered by the verified-JWT cache), minted before the clock starts.
    const jwts = await jwtsFor(Math.ceil(rate * o.seconds * 1.5) + 50);
    const ci = await step(rate, o.seconds, t.pids, ciJob(t, jwts), n + 1);
    const b = await step(rate, o.seconds, [bare.pid], bareJob(bare.port, t.ca), n + 1);
    rows.push({ rate, ci, bare: b });
  }
  printStorm(t.name, rows);
  const best = [...rows].reverse().find((r) => holds(r.ci));
  const bareBest = [...rows].reverse().find((r) => holds(r.bare));
  const headline = best?.rate ?? 0;
  console.log(`  sustained CI jobs/s (p99 < ${HEADLINE_P99_MS} ms, no errors), ${t.name}: ${headline || `none of ${o.rates.join(', ')}`}; bare route: ${bareBest?.rate ?? 'none'}`);
  return [
    {
      scenario: `CI storm, ${t.name}: sustained jobs/s with p99 < ${HEADLINE_P99_MS} ms (of ${o.rates.join('/')}, ${o.seconds} s each)`,
      unit: 'ops/s',
      rate: headline,
      ...(best ? { p50: best.ci.p50, p99: best.ci.p99, cpuUs: best.ci.cpuUsPerJob, ...(bareBest ? { bare: { rate: bareBest.rate, cpuUs: best.bare.cpuUsPerJob } } : {}) } : {}),
      ...(bareBest ? { baseline: { name: 'bare TLS route, 2 req/job', rate: bareBest.rate } } : {}),
      aim: { text: `the bare route's own knee (${bareBest?.rate ?? 'none held'})`, met: headline > 0 && headline >= (bareBest?.rate ?? Infinity) },
    },
  ];
}

/** The role, its 5 secrets, and a JWT minter; subject rate limit out of the way (every job here is one repository). */
async function fixture(idp: TestIdp, mtlsPort: number, admin: ClientCreds, kid: string): Promise<(jti: string) => Promise<string>> {
  const mint = await oidcFixture(idp, mtlsPort, admin, kid);
  for (let k = 0; k < READS; k++) await call(mtlsPort, admin, 'PUT', `/v1/secrets/ci/org/repo/s${k}`, { data: { username: 'svc', password: 'x'.repeat(200) } });
  return mint;
}

const SERVER_ENV = { NEXUS_OIDC_ADDR: '127.0.0.1:0', NEXUS_OIDC_SUBJECT_RPS: '1000000', NEXUS_LOG_LEVEL: 'warn' };

function credsOf(pki: string): { ca: Buffer; admin: ClientCreds } {
  const ca = fs.readFileSync(path.join(pki, 'ca.crt'));
  return { ca, admin: { ca: ca.toString(), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') } };
}

export async function stormBench(scale: number, o = stormOptions(process.env, scale)): Promise<BenchRow[]> {
  const idp = await startIdp();
  const es = await idp.server.issuer.keys.generate('ES256', { kid: 'storm-es256' });
  const procs: ServerProcess[] = [];
  const stops: Array<() => unknown> = [];
  const rows: BenchRow[] = [];
  try {
    if (o.backends.includes('sqlite')) {
      const dir = tempDir('nexus-bench-storm');
      const lite = await spawnNexus({ NEXUS_DATA_DIR: dir, ...SERVER_ENV });
      procs.push(lite);
      const pki = path.join(dir, 'pki');
      const { ca, admin } = credsOf(pki);
      const bare = await startBare(pki, 'server-tls');
      stops.push(() => bare.stop());
      const mint = await fixture(idp, lite.port, admin, es.kid);
      rows.push(...(await storm({ name: 'SQLite', ports: [lite.oidcPort!], pids: [lite.child.pid!], ca, mint }, bare, o)));
      lite.child.kill('SIGTERM');
    }
    if (!o.backends.includes('postgres')) return rows;
    const server = await pgServerUrl();
    if (!server) {
      console.log('CI storm on PostgreSQL skipped: no server (set NEXUS_TEST_DATABASE_URL)');
      return rows;
    }
    const db = await createTestDatabase(server);
    stops.push(() => db.drop());
    const key = randomBytes(32).toString('base64');
    const aDir = tempDir('nexus-bench-storm-a');
    const a = await spawnNexus({ NEXUS_DATA_DIR: aDir, NEXUS_DATABASE_URL: db.url, NEXUS_ROOT_KEY: key, NEXUS_REPLICA_ID: 'storm-a', ...SERVER_ENV });
    procs.push(a);
    const pgPki = path.join(aDir, 'pki');
    const tlsFiles = { NEXUS_TLS_CA: path.join(pgPki, 'ca.crt'), NEXUS_TLS_CERT: path.join(pgPki, 'server.crt'), NEXUS_TLS_KEY: path.join(pgPki, 'server.key') };
    const b = await spawnNexus({ NEXUS_DATA_DIR: tempDir('nexus-bench-storm-b'), NEXUS_DATABASE_URL: db.url, NEXUS_ROOT_KEY: key, NEXUS_REPLICA_ID: 'storm-b', ...tlsFiles, ...SERVER_ENV });
    procs.push(b);
    const pg = credsOf(pgPki);
    const pgMint = await fixture(idp, a.port, pg.admin, es.kid);
    const pgBare = await startBare(pgPki, 'server-tls');
    stops.push(() => pgBare.stop());
    rows.push(...(await storm({ name: 'PostgreSQL, two replicas', ports: [a.oidcPort!, b.oidcPort!], pids: [a.child.pid!, b.child.pid!], ca: pg.ca, mint: pgMint }, pgBare, o)));
    return rows;
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    for (const s of stops.reverse()) await s();
    await idp.stop();
  }
}
