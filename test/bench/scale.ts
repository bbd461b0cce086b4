// A million secrets (issue 26): BENCH_ONLY=scale seeds N secrets
// (BENCH_SCALE_SECRETS, 1,000,000 by default) straight through the secrets
// service in large transactions, and a second store of 1,000 beside it. Then,
// at N against 1k in the same run: an mTLS read of a random secret (p99) and
// a prefix list of 1,000 paths; then, on the big store, nexus-backup,
// nexus-rotate-key --reencrypt (throughput, RSS over the run) and
// nexus-migrate up of a no-op migration.
import autocannon from 'autocannon';
import cliProgress from 'cli-progress';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { openCore } from '../../nexus/core.js';
import { silentLogger } from '../../nexus/log.js';
import { ROOT } from '../helpers/env.js';
import { CONNECTIONS } from './mtls.js';
import { ensureBuilt, spawnNexus } from './nexus-process.js';
import type { BenchRow } from './report.js';
import { rssKiB } from './rss.js';

const VALUE = { username: 'service-account', password: 'x'.repeat(200), url: 'postgres://db.internal:5432/app' };
/** Secrets per seeding transaction: one commit (one fsync) per batch. */
const SEED_BATCH = 10_000;
/** The paths listed: 1,000 under one prefix, in both stores. */
const LISTED = 1000;
const BASELINE = 1000;

/** The i-th bulk secret: half sort before the listed prefix, half after, spread over 1,000 folders. */
const bulkPath = (i: number) => `${i % 2 ? 'app' : 'svc'}/f${String(i % 1000).padStart(3, '0')}/s${i}`;
const listedPath = (i: number) => `list/p${String(i).padStart(4, '0')}`;

function bar(label: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    { format: `  ${label.padEnd(10)} [{bar}] {percentage}% {value}/{total} {rate}/s`, noTTYOutput: true, notTTYSchedule: 5000, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
}

/** Seeds `bulk` secrets plus the 1,000 listed ones; returns secrets per second. */
export async function seed(dir: string, bulk: number, label: string): Promise<number> {
  const core = await openCore(loadConfig({ NEXUS_DATA_DIR: dir, NEXUS_LOG_LEVEL: 'warn' }), silentLogger());
  const total = bulk + LISTED;
  const b = bar(label);
  b.start(total, 0, { rate: 0 });
  const t0 = performance.now();
  try {
    for (let from = 0; from < total; from += SEED_BATCH) {
      const to = Math.min(total, from + SEED_BATCH);
      // One transaction per batch: the puts inside join it (SQLite).
      await core.storage.tx(async () => {
        for (let i = from; i < to; i++) await core.secrets.put(i < bulk ? bulkPath(i) : listedPath(i - bulk), VALUE);
      });
      b.update(to, { rate: Math.round(to / ((performance.now() - t0) / 1000)) });
      // A transaction on SQLite never leaves the microtask queue: give the bar's redraw timer a turn.
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    b.stop();
    await core.close();
  }
  return total / ((performance.now() - t0) / 1000);
}

interface Lat {
  rate: number;
  p50: number;
  p99: number;
}

async function load(url: string, tls: object, seconds: number, nextPath: () => string): Promise<Lat> {
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    tlsOptions: tls,
    requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, path: nextPath() }) }],
  } as autocannon.Options);
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`scale load to ${url} had ${r.non2xx} non-2xx and ${r.errors} errors`);
  return { rate: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

const lower = (a: Lat, b: Lat) => (a.p99 <= b.p99 ? a : b);

/** Runs a compiled bin (dist/bin) against a data dir; stdout lines to `onLine`; RSS sampled every 100 ms. */
export function runBin(bin: string, args: string[], env: Record<string, string>, onLine: (line: string) => void = () => undefined): Promise<{ secs: number; rss: Array<{ t: number; kib: number }> }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const rss: Array<{ t: number; kib: number }> = [];
  const sample = () => {
    try {
      rss.push({ t: performance.now() - t0, kib: rssKiB(child.pid!) });
    } catch {
      // exited between the timer and the read
    }
  };
  const timer = setInterval(sample, 100);
  let out = '';
  let err = '';
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      clearInterval(timer);
      if (code !== 0) reject(new Error(`${path.basename(bin)} ${args.join(' ')} exited ${code}: ${err}${out}`));
      else resolve({ secs: (performance.now() - t0) / 1000, rss });
    });
  });
}

/** A copy of dist/ whose migrations end in a no-op one, for nexus-migrate up to apply. */
function distWithNoopMigration(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-noop-'));
  fs.cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  fs.writeFileSync(path.join(root, 'dist/migrations/999_bench_noop.sql'), '-- A no-op: what nexus-migrate up costs by itself on a large store.\nSELECT 1;\n');
  return root;
}

const mb = (kib: number) => `${(kib / 1024).toFixed(0)} MB`;

export async function scaleBench(scale: number): Promise<BenchRow[]> {
  const n = Number(process.env.BENCH_SCALE_SECRETS ?? '1000000');
  if (!Number.isInteger(n) || n < 10 * BASELINE) throw new Error(`BENCH_SCALE_SECRETS: an integer of at least ${10 * BASELINE}, got ${process.env.BENCH_SCALE_SECRETS}`);
  ensureBuilt();
  const fmtN = n.toLocaleString('en-US');
  const bigDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-scale-big-'));
  const smallDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-scale-1k-'));
  const rows: BenchRow[] = [];
  console.log(`\nScale: seeding ${fmtN} secrets, ${LISTED} of them under list/ (and a store of just those ${BASELINE} beside it), ${SEED_BATCH.toLocaleString('en-US')} per transaction`);
  const seedRate = await seed(bigDir, n - LISTED, fmtN);
  await seed(smallDir, BASELINE - LISTED, '1k');
  const dbBytes = fs.statSync(path.join(bigDir, 'nexus.db')).size;
  console.log(`  seeded ${fmtN} secrets at ${Math.round(seedRate).toLocaleString('en-US')}/s; database ${(dbBytes / 1048576).toFixed(0)} MB`);
  rows.push({ scenario: `scale: seeding ${fmtN} secrets (secrets service, ${SEED_BATCH.toLocaleString('en-US')} per transaction)`, unit: 'ops/s', rate: seedRate, aim: { text: 'measured', met: true } });

  // Both servers up at once, measured alternately: drift on a shared box hits both.
  const env = { NEXUS_LOG_LEVEL: 'warn' };
  // Start-up (to listening) at N and at 1k: nothing at start may walk the secrets.
  let t = performance.now();
  const small = await spawnNexus({ NEXUS_DATA_DIR: smallDir, ...env });
  const startSmall = (performance.now() - t) / 1000;
  t = performance.now();
  const big = await spawnNexus({ NEXUS_DATA_DIR: bigDir, ...env });
  const startBig = (performance.now() - t) / 1000;
  console.log(`  server start to listening: ${startBig.toFixed(2)} s at ${fmtN}, ${startSmall.toFixed(2)} s at 1k`);
  rows.push({ scenario: `scale: server start to listening with ${fmtN} secrets (vs 1k: ${startSmall.toFixed(2)} s)`, unit: 's', rate: startBig, aim: { text: `${(startBig / startSmall).toFixed(2)}x of 1k`, met: true } });
  const tlsOf = (dir: string) => ({
    ca: fs.readFileSync(path.join(dir, 'pki/ca.crt')),
    cert: fs.readFileSync(path.join(dir, 'pki/pilot.crt')),
    key: fs.readFileSync(path.join(dir, 'pki/pilot.key')),
  });
  const secs = Math.max(3, Math.round(5 * scale));
  try {
    const bigUrl = `https://127.0.0.1:${big.port}`;
    const smallUrl = `https://127.0.0.1:${small.port}`;
    // A uniformly random secret each request: at N most miss the row cache (10,000 paths), at 1k none do.
    const readBig = () => `/v1/secrets/${bulkPath(Math.floor(Math.random() * (n - LISTED)))}`;
    const readSmall = () => `/v1/secrets/${listedPath(Math.floor(Math.random() * LISTED))}`;
    const list = () => `/v1/secrets?prefix=list/&limit=${LISTED}`;
    await load(bigUrl, tlsOf(bigDir), 1, readBig);
    await load(smallUrl, tlsOf(smallDir), 1, readSmall);
    // Three alternating rounds each, the lowest p99 of each side: a tail on a shared 2-core box is mostly its neighbours'.
    let rs = await load(smallUrl, tlsOf(smallDir), secs, readSmall);
    let rb = await load(bigUrl, tlsOf(bigDir), secs, readBig);
    let ls = await load(smallUrl, tlsOf(smallDir), secs, list);
    let lb = await load(bigUrl, tlsOf(bigDir), secs, list);
    for (let round = 1; round < 3; round++) {
      rs = lower(rs, await load(smallUrl, tlsOf(smallDir), secs, readSmall));
      rb = lower(rb, await load(bigUrl, tlsOf(bigDir), secs, readBig));
      ls = lower(ls, await load(smallUrl, tlsOf(smallDir), secs, list));
      lb = lower(lb, await load(bigUrl, tlsOf(bigDir), secs, list));
    }
    const readRatio = rb.p99 / rs.p99;
    const listRatio = lb.p99 / ls.p99;
    console.log(`  mTLS read of a random secret: p99 ${rb.p99} ms at ${fmtN}, ${rs.p99} ms at 1k: ${readRatio.toFixed(2)}x (aim <= 1.5x); ${Math.round(rb.rate)} vs ${Math.round(rs.rate)} req/s`);
    console.log(`  list of ${LISTED} paths under a prefix: p99 ${lb.p99} ms at ${fmtN}, ${ls.p99} ms at 1k: ${listRatio.toFixed(2)}x (aim <= 2x); ${Math.round(lb.rate)} vs ${Math.round(ls.rate)} req/s`);
    rows.push({
      scenario: `scale: mTLS read of a random secret among ${fmtN} (${CONNECTIONS} conns), p99 vs among 1k`,
      unit: 'req/s',
      ...rb,
      baseline: { name: `among 1k, p99 ${rs.p99} ms`, rate: rs.rate },
      aim: { text: `p99 ${readRatio.toFixed(2)}x; aim <= 1.5x`, met: readRatio <= 1.5 },
    });
    rows.push({
      scenario: `scale: list of ${LISTED} paths under a prefix among ${fmtN}, p99 vs among 1k`,
      unit: 'req/s',
      ...lb,
      baseline: { name: `among 1k, p99 ${ls.p99} ms`, rate: ls.rate },
      aim: { text: `p99 ${listRatio.toFixed(2)}x; aim <= 2x`, met: listRatio <= 2 },
    });
  } finally {
    small.child.kill('SIGTERM');
    big.child.kill('SIGTERM');
    await Promise.all([small.exited, big.exited]);
  }

  const binEnv = { NEXUS_DATA_DIR: bigDir, NEXUS_LOG_LEVEL: 'warn' };
  const backupFile = path.join(os.tmpdir(), `nexus-bench-scale-backup-${process.pid}.db`);
  try {
    const b = await runBin(path.join(ROOT, 'dist/bin/nexus-backup.js'), [backupFile, '--force'], binEnv);
    const mbps = dbBytes / 1048576 / b.secs;
    console.log(`  nexus-backup: ${b.secs.toFixed(1)} s, ${Math.round(n / b.secs).toLocaleString('en-US')} secrets/s, ${mbps.toFixed(0)} MB/s (copy, integrity_check, count); peak RSS ${mb(Math.max(0, ...b.rss.map((s) => s.kib)))}`);
    rows.push({ scenario: `scale: nexus-backup of ${fmtN} secrets (${(dbBytes / 1048576).toFixed(0)} MB)`, unit: 'ops/s', rate: n / b.secs, aim: { text: `${b.secs.toFixed(1)} s, ${mbps.toFixed(0)} MB/s`, met: true } });
  } finally {
    fs.rmSync(backupFile, { force: true });
  }

  const rot = bar('reencrypt');
  let started = false;
  const r = await runBin(path.join(ROOT, 'dist/bin/nexus-rotate-key.js'), ['--reencrypt', '--batch-size', '1000'], binEnv, (line) => {
    const m = /^reencrypt (\d+)\/(\d+)$/.exec(line);
    if (!m) return;
    if (!started) rot.start(Number(m[2]), 0, { rate: 0 });
    started = true;
    rot.update(Number(m[1]), { rate: '-' });
  });
  rot.stop();
  // RSS flat: the peak against the RSS half-way through (V8's heap grows to its working size in the first part of any run,
  // whatever N: a probe put the plateau at ~135 MB from 30,000 to 120,000 secrets); growing with N would show as a later peak.
  const peak = Math.max(...r.rss.map((s) => s.kib));
  const at = (f: number) => r.rss.find((s) => s.t >= r.secs * 1000 * f)?.kib ?? peak;
  const half = at(0.5);
  const rssRatio = peak / half;
  console.log(
    `  nexus-rotate-key --reencrypt: ${r.secs.toFixed(1)} s, ${Math.round(n / r.secs).toLocaleString('en-US')} versions/s; RSS ${mb(at(0.1))} at 10% of the run, ${mb(half)} at 50%, ${mb(at(0.9))} at 90%, peak ${mb(peak)} (${rssRatio.toFixed(2)}x of 50%)`,
  );
  rows.push({
    scenario: `scale: nexus-rotate-key --reencrypt of ${fmtN} secrets (1,000 per transaction)`,
    unit: 'ops/s',
    rate: n / r.secs,
    aim: { text: `peak RSS ${mb(peak)}, ${rssRatio.toFixed(2)}x of 50%; aim <= 1.1x`, met: rssRatio <= 1.1 },
  });

  const noop = distWithNoopMigration();
  try {
    const m = await runBin(path.join(noop, 'dist/bin/nexus-migrate.js'), ['up'], binEnv);
    console.log(`  nexus-migrate up of a no-op migration on ${fmtN} secrets: ${m.secs.toFixed(2)} s (process start included)`);
    rows.push({ scenario: `scale: nexus-migrate up, a no-op migration on ${fmtN} secrets (whole process)`, unit: 's', rate: m.secs, aim: { text: 'measured', met: true } });
  } finally {
    fs.rmSync(noop, { recursive: true, force: true });
  }
  fs.rmSync(bigDir, { recursive: true, force: true });
  fs.rmSync(smallDir, { recursive: true, force: true });
  return rows;
}
