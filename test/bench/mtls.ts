import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/env.js';
import { spawnNexus } from './nexus-process.js';
import { cpuMicros, type BenchRow } from './report.js';

/** Keep-alive connections of every load (the aims are stated for 16). */
export const CONNECTIONS = 16;

export interface Load {
  rate: number;
  p50: number;
  p99: number;
  /** CPU of the server process per request, µs (when its pid was given). */
  cpuUs?: number;
}

export async function load(
  url: string,
  tls: object,
  seconds: number,
  opts: { method?: 'GET' | 'PUT'; body?: string; headers?: Record<string, string>; nextHeaders?: () => Record<string, string>; connections?: number; pid?: number } = {},
): Promise<Load> {
  const cpu0 = opts.pid === undefined ? 0 : cpuMicros(opts.pid);
  const r = await autocannon({
    url,
    connections: opts.connections ?? CONNECTIONS,
    duration: seconds,
    method: opts.method ?? 'GET',
    body: opts.body,
    headers: { ...(opts.body ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    tlsOptions: tls,
    ...(opts.nextHeaders ? { requests: [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, headers: { ...(req.headers as object), ...opts.nextHeaders!() } }) }] } : {}),
  } as autocannon.Options);
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`bench load to ${url} had ${r.non2xx} non-2xx and ${r.errors} errors`);
  const cpuUs = opts.pid === undefined ? undefined : (cpuMicros(opts.pid) - cpu0) / Math.max(1, r.requests.total);
  return { rate: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, ...(cpuUs === undefined ? {} : { cpuUs }) };
}

export function startBare(pki: string, mode: 'mtls' | 'server-tls' = 'mtls'): Promise<{ port: number; pid: number; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/bench/bare-tls-server.ts'), pki, mode], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      const m = /port (\d+)/.exec(d.toString());
      if (m) resolve({ port: Number(m[1]), pid: child.pid!, stop: () => child.kill('SIGTERM') });
    });
  });
}

/** Server and baseline each in their own process; the load generator in this one. */
export async function mtlsBench(scale: number): Promise<BenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-mtls-'));
  const srv = await spawnNexus({ NEXUS_DATA_DIR: dir });
  const pki = path.join(dir, 'pki');
  const tls = {
    ca: fs.readFileSync(path.join(pki, 'ca.crt')),
    cert: fs.readFileSync(path.join(pki, 'pilot.crt')),
    key: fs.readFileSync(path.join(pki, 'pilot.key')),
  };
  const bare = await startBare(pki);
  const secs = Math.max(2, Math.round(3 * scale));
  const base = `https://127.0.0.1:${srv.port}`;
  try {
    const value = JSON.stringify({ data: { username: 'svc', password: 'x'.repeat(200) } });
    await load(`${base}/v1/secrets/bench/read`, tls, 1, { method: 'PUT', body: value });
    // warm-up, then baseline and subject back to back
    await load(`https://127.0.0.1:${bare.port}/`, tls, 1);
    await load(`${base}/v1/secrets/bench/read`, tls, 1);
    // Alternate baseline and subject and keep each one's best round: on a
    // 2-core box sharing the CPU with the load generator, single runs swing.
    const best = (a: Load, b: Load) => (a.rate >= b.rate ? a : b);
    const server = { pid: srv.child.pid! };
    const bareUrl = `https://127.0.0.1:${bare.port}/`;
    let bareGet = await load(bareUrl, tls, secs, { pid: bare.pid });
    let read = await load(`${base}/v1/secrets/bench/read`, tls, secs, server);
    bareGet = best(bareGet, await load(bareUrl, tls, secs, { pid: bare.pid }));
    read = best(read, await load(`${base}/v1/secrets/bench/read`, tls, secs, server));
    const write = await load(`${base}/v1/secrets/bench/write`, tls, secs, { method: 'PUT', body: value, ...server });
    const vsBare = { bare: { rate: bareGet.rate, cpuUs: bareGet.cpuUs }, baseline: { name: 'bare TLS route', rate: bareGet.rate } };
    return [
      { scenario: 'mTLS: bare Koa route, same-size body (baseline)', unit: 'req/s', ...bareGet },
      { scenario: `mTLS: secret read (keep-alive, ${CONNECTIONS} conns)`, unit: 'req/s', ...read, ...vsBare, aim: { minRatio: 0.7 } },
      { scenario: `mTLS: secret write (keep-alive, ${CONNECTIONS} conns)`, unit: 'req/s', ...write, ...vsBare },
    ];
  } finally {
    bare.stop();
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
}
