// BENCH_ONLY=ablation (npm run bench:ablation): the audit stage of a read, ablated. The
// same build runs as production, with no record written (the floor), and with
// the record written another way (ablate-audit.mjs), each in its own process,
// beside the bare Koa TLS route, in interleaved rounds; BENCH_ABLATION_BEFORE
// (another build's dist/bin/nexus.js) adds that build's production and floor,
// so "before and after" share one run and one baseline.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startIdp } from '../helpers/idp.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';
import { call } from '../helpers/server.js';
import { ROOT } from '../helpers/env.js';
import { load, startBare, type Load } from './mtls.js';
import { ensureBuilt, NEXUS_BIN } from './nexus-process.js';
import { exchangeToken, oidcFixture } from './oidc.js';
import type { BenchRow } from './report.js';

const VARIANTS = ['production', 'off', 'off-inturn', 'inturn-each', 'inturn-turn'] as const;
type Variant = (typeof VARIANTS)[number];
const DESCRIBED: Record<Variant, string> = {
  production: 'production',
  off: 'no audit record, answer a turn later (floor)',
  'off-inturn': 'no audit record, answer in the request turn',
  'inturn-each': 'record + anchor in the request turn',
  'inturn-turn': 'record in the request turn, anchor once a turn',
};

interface Target {
  name: string;
  /** The server's dev PKI (the bare routes use the first one's). */
  pki: string;
  /** Its admin's client certificate (each server makes its own dev PKI). */
  creds: { ca: string; cert: string; key: string };
  variant: Variant;
  pid: number;
  url: { mtls: string; token: string };
  headers?: Record<string, string>;
  samples: { mtls: Load[]; token: Load[] };
  stop(): void;
}

// Each target's best round: on a shared box the noise only ever adds CPU and takes away throughput.
const least = (xs: number[]) => Math.min(...xs);
const most = (xs: number[]) => Math.max(...xs);

async function startVariant(build: string, bin: string, variant: Variant, idp: Awaited<ReturnType<typeof startIdp>>, kid: string): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nexus-bench-ablation-${variant}-`));
  const trail = path.join(path.dirname(bin), '../nexus/audit/trail.js');
  const env = {
    NEXUS_DATA_DIR: dir,
    NEXUS_OIDC_ADDR: '127.0.0.1:0',
    NEXUS_OIDC_SUBJECT_RPS: '1000000',
    ...(variant === 'production' ? {} : { NODE_OPTIONS: `--import ${path.join(ROOT, 'test/bench/ablate-audit.mjs')}`, BENCH_ABLATE: variant, BENCH_ABLATE_TRAIL: trail }),
  };
  const srv: ServerProcess = await spawnServer(env, bin);
  const pki = path.join(dir, 'pki');
  const admin = { ca: fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
  await call(srv.port, admin, 'PUT', '/v1/secrets/bench/read', { data: { username: 'svc', password: 'x'.repeat(200) } });
  const mint = await oidcFixture(idp, srv.port, admin, kid);
  const token = await exchangeToken(srv.oidcPort!, admin.ca, await mint('ablation'));
  return {
    pki,
    creds: admin,
    name: `${build}: ${DESCRIBED[variant]}`,
    variant,
    pid: srv.child.pid!,
    url: { mtls: `https://127.0.0.1:${srv.port}/v1/secrets/bench/read`, token: `https://127.0.0.1:${srv.oidcPort}/v1/secrets/ci/org/repo/read` },
    headers: { authorization: `Bearer ${token}` },
    samples: { mtls: [], token: [] },
    stop: () => srv.child.kill('SIGTERM'),
  };
}

export async function ablationBench(scale: number): Promise<BenchRow[]> {
  ensureBuilt();
  const idp = await startIdp();
  const es = await idp.server.issuer.keys.generate('ES256', { kid: 'ablation-es256' });
  const builds: [string, string][] = [['now', NEXUS_BIN]];
  if (process.env.BENCH_ABLATION_BEFORE) builds.push(['before', path.resolve(process.env.BENCH_ABLATION_BEFORE)]);
  // BENCH_ABLATION_VARIANTS=production,off narrows the run (more rounds in the same time: BENCH_ABLATION_ROUNDS).
  const variants = (process.env.BENCH_ABLATION_VARIANTS?.split(',') ?? [...VARIANTS]) as Variant[];
  if (variants.some((v) => !VARIANTS.includes(v))) throw new Error(`BENCH_ABLATION_VARIANTS: any of ${VARIANTS.join(', ')}`);
  const targets: Target[] = [];
  const bares: Record<'mtls' | 'token', Awaited<ReturnType<typeof startBare>> | null> = { mtls: null, token: null };
  try {
    for (const [build, bin] of builds) {
      for (const v of variants) {
        if (build !== 'now' && v !== 'production' && v !== 'off') continue;
        targets.push(await startVariant(build, bin, v, idp, es.kid));
      }
    }
    // Both bare routes use the first server's PKI (the same shapes of certificate as every server's).
    const { pki, creds: admin } = targets[0]!;
    bares.mtls = await startBare(pki, 'mtls');
    bares.token = await startBare(pki, 'server-tls');
    const bare: Record<'mtls' | 'token', Load[]> = { mtls: [], token: [] };
    const secs = Math.max(2, Math.round(3 * scale));
    const rounds = Number(process.env.BENCH_ABLATION_ROUNDS ?? Math.max(3, Math.round(3 * scale)));
    for (const s of ['mtls', 'token'] as const) {
      const bareUrl = `https://127.0.0.1:${bares[s]!.port}/`;
      const tls = s === 'mtls' ? admin : { ca: admin.ca };
      await load(bareUrl, tls, 1);
      const tlsOf = (t: Target) => (s === 'mtls' ? t.creds : { ca: t.creds.ca });
      for (const t of targets) await load(t.url[s], tlsOf(t), 1, { headers: s === 'token' ? t.headers : {} });
      for (let r = 0; r < rounds; r++) {
        // Interleaved, the order turned each round: a slow second for the box falls on every target alike.
        const order = [null, ...targets];
        for (let i = 0; i < order.length; i++) {
          const t = order[(i + r) % order.length]!;
          if (t === null) bare[s].push(await load(bareUrl, tls, secs, { pid: bares[s]!.pid }));
          else t.samples[s].push(await load(t.url[s], tlsOf(t), secs, { headers: s === 'token' ? t.headers : {}, pid: t.pid }));
        }
      }
    }
    const rows: BenchRow[] = [];
    for (const s of ['mtls', 'token'] as const) {
      const label = s === 'mtls' ? 'mTLS read' : 'OIDC read, exchanged token';
      const b = { rate: most(bare[s].map((x) => x.rate)), cpuUs: least(bare[s].map((x) => x.cpuUs!)) };
      rows.push({ scenario: `ablation, ${label}: bare Koa route (baseline)`, unit: 'req/s', rate: b.rate, cpuUs: b.cpuUs });
      for (const t of targets) {
        rows.push({
          scenario: `ablation, ${label}: ${t.name}`,
          unit: 'req/s',
          rate: most(t.samples[s].map((x) => x.rate)),
          cpuUs: least(t.samples[s].map((x) => x.cpuUs!)),
          bare: b,
          baseline: { name: 'bare TLS route', rate: b.rate },
          ...(t.variant === 'production' ? { aim: { minRatio: s === 'mtls' ? 0.5 : 0.45 } } : {}),
        });
      }
      for (const [build] of builds) {
        const cpu = (v: Variant) => rows.find((r) => r.scenario === `ablation, ${label}: ${build}: ${DESCRIBED[v]}`)?.cpuUs;
        if (cpu('production') === undefined || cpu('off') === undefined) continue;
        const stage = cpu('production')! - cpu('off')!;
        rows.push({ scenario: `ablation, ${label}: ${build}: audit stage (server CPU, production - floor)`, unit: 'µs/req', rate: stage });
      }
    }
    return rows;
  } finally {
    for (const t of targets) t.stop();
    bares.mtls?.stop();
    bares.token?.stop();
    await idp.stop();
  }
}
