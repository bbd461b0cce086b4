import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, runNode, type RunResult } from '../helpers/env.js';
import { github, startIdp } from '../helpers/idp.js';
import { spawnNexus } from './nexus-process.js';
import { runAction, runActionFile, startRunner } from '../helpers/runner.js';
import { call } from '../helpers/server.js';
import type { BenchRow } from './report.js';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function timed(fn: () => Promise<{ code: number | null; stderr: string; stdout: string }>): Promise<number> {
  const t = performance.now();
  const r = await fn();
  if (r.code !== 0) throw new Error(`bench run failed (${r.code}): ${r.stdout}${r.stderr}`);
  return performance.now() - t;
}

/** The subtree run against the 25 single reads: whole process, and what is left after process start (node -e 0). */
function subtreeRow(r: BenchRow, tree: number[], single: number[], node: number[]): BenchRow {
  const mean = (t: number[]) => t.reduce((a, b) => a + b, 0) / t.length;
  const whole = mean(single) / mean(tree);
  const beyondStart = (mean(single) - mean(node)) / Math.max(1e-3, mean(tree) - mean(node));
  return { ...r, aim: { text: `${whole.toFixed(2)}x faster than 25 one-key lines, whole process (${beyondStart.toFixed(2)}x beyond node start); aim >= 3x`, met: whole >= 3 } };
}

/**
 * The CI clients, each a whole process run: the GitHub Action (ID-token
 * request, exchange, three secrets, export) and `nexus-ci exec -- true`,
 * beside `node -e 0` (process start) in the same rounds, interleaved.
 */
export async function ciBench(scale: number): Promise<BenchRow[]> {
  const idp = await startIdp();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-ci-'));
  const srv = await spawnNexus({ NEXUS_DATA_DIR: dir, NEXUS_OIDC_ADDR: '127.0.0.1:0', NEXUS_OIDC_SUBJECT_RPS: '1000000', NEXUS_LOG_LEVEL: 'warn' });
  const pki = path.join(dir, 'pki');
  const ca = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
  const admin = { ca, cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
  const runner = await startRunner(idp, { ...github('org/repo'), aud: undefined });
  try {
    await call(srv.port, admin, 'PUT', '/v1/oidc/issuers/ci', { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: ['repository'] });
    await call(srv.port, admin, 'PUT', '/v1/oidc/roles/bench', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/{{claims.repository}}/*', 'ci/{{claims.repository}}/many/*'], permissions: ['read'] });
    for (const s of ['db', 'api', 'tls']) await call(srv.port, admin, 'PUT', `/v1/secrets/ci/org/repo/${s}`, { data: { value: `${s}-${'x'.repeat(40)}` } });
    // A job reading 25 secrets: one subtree line (a round trip per page of 100) against 25 one-key lines (a read each).
    const many = Array.from({ length: 25 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    for (const s of many) await call(srv.port, admin, 'PUT', `/v1/secrets/ci/org/repo/many/${s}`, { data: { value: `${s}-${'x'.repeat(40)}` } });
    const url = `https://127.0.0.1:${srv.oidcPort}`;
    const specs = ['ci/org/repo/db value | DB', 'ci/org/repo/api value | API', 'ci/org/repo/tls value | TLS'];
    const caFile = path.join(runner.dir, 'ca.crt');
    fs.writeFileSync(caFile, ca);
    const jwt = await idp.token({ ...github('org/repo'), aud: 'nexus', exp: Math.floor(Date.now() / 1000) + 3600 }, { expiresIn: 3600 });
    const nexusCiWith = (lines: string[]) => [path.join(ROOT, 'scripts/ci/dist/nexus-ci.mjs'), '--jwt-env', 'JWT', '--url', url, '--ca', caFile, ...lines.flatMap((s) => ['--secret', s]), 'exec', '--', 'true'];
    const nexusCi = nexusCiWith(specs);
    const single25 = nexusCiWith(many.map((s) => `ci/org/repo/many/${s} value | M_${s.toUpperCase()}`));
    const subtree25 = nexusCiWith(['ci/org/repo/many/* | M_']);
    // BENCH_CI_TRACE=1: one run of each client with NEXUS_CI_TRACE=1 first, its step-by-step trace on stderr (scripts/ci/trace.ts).
    const trace: Record<string, string> = {};
    // BENCH_CI_BEFORE=DIR: also run the action.mjs and nexus-ci.mjs in DIR (an older scripts/ci/dist), interleaved: before and after in the same run.
    const before = process.env.BENCH_CI_BEFORE ? path.resolve(process.env.BENCH_CI_BEFORE) : undefined;
    const runs: Record<string, () => Promise<RunResult>> = {
      node: () => runNode(['-e', '0'], {}),
      action: () => {
        fs.writeFileSync(runner.env.GITHUB_ENV!, '');
        fs.writeFileSync(runner.env.GITHUB_OUTPUT!, '');
        return runAction(runner, { url, ca, audience: 'nexus', secrets: specs.join('\n') }, trace);
      },
      nexusCi: () => runNode(nexusCi, { JWT: jwt, ...trace }),
      ...(before
        ? {
            actionBefore: () => {
              fs.writeFileSync(runner.env.GITHUB_ENV!, '');
              fs.writeFileSync(runner.env.GITHUB_OUTPUT!, '');
              fs.writeFileSync(runner.env.GITHUB_STATE!, '');
              return runActionFile(path.relative(ROOT, path.join(before, 'action.mjs')), runner, { url, ca, audience: 'nexus', secrets: specs.join('\n') }, {});
            },
            nexusCiBefore: () => runNode([path.join(before, 'nexus-ci.mjs'), ...nexusCi.slice(1)], { JWT: jwt }),
          }
        : {}),
      single25: () => runNode(single25, { JWT: jwt }),
      subtree25: () => runNode(subtree25, { JWT: jwt }),
    };
    for (const f of Object.values(runs)) await timed(f); // warm the file cache
    if (process.env.BENCH_CI_TRACE === '1') {
      trace.NEXUS_CI_TRACE = '1';
      for (const k of ['action', 'nexusCi'] as const) {
        const r = await runs[k]!();
        process.stderr.write(`-- ${k}\n${`${r.stdout}${r.stderr}`.split('\n').filter((l) => l.startsWith('nexus-ci trace:')).join('\n')}\n`);
      }
      delete trace.NEXUS_CI_TRACE;
    }
    const rounds = Math.max(Number(process.env.BENCH_CI_ROUNDS ?? 10), Math.round(30 * scale));
    const times = Object.fromEntries(Object.keys(runs).map((k) => [k, [] as number[]])) as Record<string, number[]>;
    for (let i = 0; i < rounds; i++) for (const k of Object.keys(runs)) times[k]!.push(await timed(runs[k]!));
    for (const t of Object.values(times)) t.sort((a, b) => a - b);
    const row = (scenario: string, t: number[], base?: number[]): BenchRow => ({
      scenario: `${scenario}, ${rounds} runs`,
      unit: 'ops/s',
      rate: 1000 / (t.reduce((a, b) => a + b, 0) / t.length),
      p50: pct(t, 0.5),
      p99: pct(t, 0.99),
      ...(base ? { aim: { text: `p99 +${(pct(t, 0.99) - pct(base, 0.99)).toFixed(0)} ms over node -e 0 (p99 ${pct(base, 0.99).toFixed(0)} ms); aim < +100 ms`, met: pct(t, 0.99) - pct(base, 0.99) < 100 } } : {}),
    });
    return [
      row('CI: node -e 0 (process start baseline)', times.node!),
      row('CI: GitHub Action whole run (ID token, exchange, 3 secrets, export)', times.action!, times.node!),
      row('CI: nexus-ci exec -- true (exchange, 3 secrets)', times.nexusCi!, times.node!),
      ...(before
        ? [row(`CI: GitHub Action whole run, before (${path.basename(before)})`, times.actionBefore!, times.node!), row(`CI: nexus-ci exec -- true, before (${path.basename(before)})`, times.nexusCiBefore!, times.node!)]
        : []),
      row('CI: nexus-ci exec -- true, 25 secrets as 25 one-key lines (a read each)', times.single25!),
      subtreeRow(row('CI: nexus-ci exec -- true, 25 secrets as one subtree line (PATH/* | M_, one page)', times.subtree25!), times.subtree25!, times.single25!, times.node!),
    ];
  } finally {
    await runner.stop();
    srv.child.kill('SIGTERM');
    await srv.exited;
    await idp.stop();
  }
}
