// npm run bench:profile -- [mtls|token|jwt|fresh] [seconds] (or --summarize FILE): a V8 CPU profile
// of the server under the bench's load, summarized as self-time shares by
// component, so the note's "where the time goes" can be re-measured.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ROOT } from '../helpers/env.js';
import { startIdp } from '../helpers/idp.js';
import { call } from '../helpers/server.js';
import { load } from './mtls.js';
import { exchangeToken, oidcFixture } from './oidc.js';
import { ensureBuilt, NEXUS_BIN } from './nexus-process.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Which component a frame's code belongs to; the order matters (first match wins). */
const COMPONENTS: [string, RegExp][] = [
  // Start-up, not the request path: left out of the shares like idle time.
  ['module loading', /node:internal\/(modules|deps\/cjs-module-lexer)|node_modules\/tsx/],
  ['sqlite (better-sqlite3)', /better-sqlite3/],
  ['libsodium', /libsodium/],
  ['jose', /node_modules\/jose/],
  ['koa-router', /@koa\/router|path-to-regexp/],
  ['koa', /node_modules\/(koa|koa-compose|on-finished|statuses|http-errors|delegates|cookies|accepts|type-is|mime|content-type|vary|encodeurl|escape-html|fresh|parseurl|only|destroy|ee-first|depd|negotiator|media-typer|content-disposition)\//],
  ['zod', /node_modules\/zod/],
  ['nexus audit', /\/nexus\/audit\/|\/nexus\/http\/audit|\/nexus\/storage\/audit-repo/],
  ['nexus storage', /\/nexus\/storage\//],
  ['nexus oidc plugin', /\/plugins\/oidc\//],
  ['nexus metrics', /\/nexus\/(http\/)?metrics/],
  ['nexus other', /\/(nexus|plugins)\//],
  ['node crypto (hash, HMAC)', /node:(crypto|internal\/crypto)/],
  ['node tls/net', /node:(_tls|tls|net|internal\/stream_base|internal\/streams|stream|internal\/net)/],
  ['node http', /node:(_http|http|internal\/http)/],
  ['node other', /^node:/],
  ['other modules', /node_modules/],
];

/**
 * A native frame (a syscall, a binding) and Node's own helpers (fs, crypto,
 * buffers, events) are charged to the nearest caller of ours or of a module:
 * an audit file write or HMAC to the audit, a SQLite step to its repository.
 * Node's HTTP and TLS stacks keep their own share.
 */
function component(node: ProfileNode, parent: Map<number, ProfileNode>): string {
  const { functionName } = node.callFrame;
  let firstNode: string | null = null;
  for (let at: ProfileNode | undefined = node; at; at = parent.get(at.id)) {
    const url = at.callFrame.url;
    if (!url) continue;
    const name = COMPONENTS.find(([, re]) => re.test(url))?.[0] ?? 'other';
    if (name === 'node tls/net' || name === 'node http' || name === 'module loading') return name;
    if (name.startsWith('node ')) {
      firstNode ??= name;
      continue;
    }
    return name;
  }
  if (firstNode) return firstNode;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'native/program';
  return `native: ${functionName || '(anonymous)'}`;
}

/** Self time per component (ms), idle excluded from the total; and the top self-time functions. */
export function summarize(profile: Profile, top = 15): { total: number; components: [string, number][]; functions: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const comp = new Map<string, number>();
  const fn = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const c = component(node, parent);
    comp.set(c, (comp.get(c) ?? 0) + ms);
    const where = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${node.callFrame.lineNumber + 1}`;
    fn.set(where, (fn.get(where) ?? 0) + ms);
  }
  comp.delete('idle');
  comp.delete('module loading');
  const total = [...comp.values()].reduce((a, b) => a + b, 0);
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { total, components: sorted(comp), functions: sorted(fn).filter(([k]) => !k.startsWith('(idle)')).slice(0, top) };
}

async function main(): Promise<void> {
  const scenario = process.argv[2] ?? 'mtls';
  const seconds = Number(process.argv[3] ?? '5');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-profile-'));
  const profDir = path.join(dir, 'prof');
  const oidc = scenario === 'token' || scenario === 'jwt' || scenario === 'fresh';
  // PROFILE=off: the same load and CPU figure without the profiler's own cost (for comparing variants).
  const profiling = process.env.PROFILE !== 'off';
  const args = profiling ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  ensureBuilt();
  const child = spawn(process.execPath, [...args, NEXUS_BIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NEXUS_DATA_DIR: dir, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: oidc ? '127.0.0.1:0' : 'off', NEXUS_OIDC_SUBJECT_RPS: '1000000', NEXUS_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ports = await new Promise<{ mtls: number; oidc: number | null }>((resolve) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"port":"mtls","addr":"[^"]*:(\d+)"/.exec(out);
      const o = /"port":"oidc","addr":"[^"]*:(\d+)"/.exec(out);
      if (m && (!oidc || o)) resolve({ mtls: Number(m[1]), oidc: o ? Number(o[1]) : null });
    });
  });
  const pki = path.join(dir, 'pki');
  const admin = { ca: fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
  const idp = oidc ? await startIdp() : null;
  try {
    let url: string;
    let opts: Parameters<typeof load>[3] = {};
    const tls = oidc ? { ca: admin.ca } : admin;
    if (!idp) {
      await call(ports.mtls, admin, 'PUT', '/v1/secrets/bench/read', { data: { username: 'svc', password: 'x'.repeat(200) } });
      url = `https://127.0.0.1:${ports.mtls}/v1/secrets/bench/read`;
    } else {
      const es = await idp.server.issuer.keys.generate('ES256', { kid: 'prof-es256' });
      const mint = await oidcFixture(idp, ports.mtls, admin, es.kid);
      const jwt = await mint('one');
      let bearer = jwt;
      if (scenario === 'token') {
        const r = await exchangeToken(ports.oidc!, admin.ca, jwt);
        bearer = r;
      }
      url = `https://127.0.0.1:${ports.oidc}/v1/secrets/ci/org/repo/read`;
      opts = { headers: { authorization: `Bearer ${bearer}` } };
      if (scenario === 'fresh') {
        // Never-seen JWTs (a repeated one is answered by the verified-JWT cache): enough for the load at 5,000 req/s.
        const pool: string[] = [];
        for (let i = 0; i < (seconds + 1) * 5000; i++) pool.push(await mint(`j${i}`));
        let next = 0;
        opts = { nextHeaders: () => ({ authorization: `Bearer ${pool[next++ % pool.length]}` }) };
      }
    }
    await load(url, tls, 1, opts);
    const r = await load(url, tls, seconds, { ...opts, pid: child.pid! });
    console.log(`${scenario}: ${Math.round(r.rate)} req/s, server CPU ${Math.round(r.cpuUs!)} µs/req`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('close', resolve));
    await idp?.stop();
  }
  // The main thread's profile (tsx's loader thread writes one too).
  if (!profiling) return;
  const file = fs.readdirSync(profDir).find((f) => f.endsWith('.0.001.cpuprofile'))!;
  report(path.join(profDir, file));
}

function report(file: string): void {
  const s = summarize(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile, Number(process.env.PROFILE_TOP ?? '15'));
  console.log(`profile ${file} (busy ${Math.round(s.total)} ms; idle and module loading left out)`);
  for (const [c, ms] of s.components) if (ms / s.total >= 0.005) console.log(`  ${((100 * ms) / s.total).toFixed(1).padStart(5)}%  ${c}`);
  console.log('top functions (self):');
  for (const [f, ms] of s.functions) console.log(`  ${((100 * ms) / s.total).toFixed(1).padStart(5)}%  ${f}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(ROOT, 'test/bench/profile.ts')) {
  // `--summarize FILE`: the same summary of a profile taken before.
  if (process.argv[2] === '--summarize') report(process.argv[3]!);
  else await main();
}
