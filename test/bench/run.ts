// npm run bench: every benchmark, one table. BENCH_SCALE=5 for a longer run.
import { initSodium } from '../../nexus/crypto/sodium.js';
import { printTable, type BenchRow } from './report.js';
import { mtlsBench } from './mtls.js';
import { oidcBench } from './oidc.js';
import { pgBench } from './postgres.js';
import { startupBench } from './startup.js';
import { storageBench } from './storage.js';
import { auditBench } from './audit.js';
import { forwardBench } from './forward.js';
import { ciBench } from './ci.js';
import { rssBench } from './rss.js';
import { signalsBench } from './signals.js';
import { stormBench } from './storm.js';
import { loginsBench } from './logins.js';
import { leasesBench } from './leases.js';
import { scaleBench } from './scale.js';
import { ablationBench } from './ablation.js';

const scale = Number(process.env.BENCH_SCALE ?? '1');
await initSodium();
const rows: BenchRow[] = [];
console.log(`Nexus bench (scale ${scale}; BENCH_SCALE=5 npm run bench for a longer run) on ${process.version}`);
// BENCH_ONLY=postgres,storage (comma-separated) runs a subset.
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const want = (name: string) => !only || only.has(name);
if (want('storage')) rows.push(...(await storageBench(scale)));
if (want('audit')) rows.push(...(await auditBench(scale)));
if (want('mtls')) rows.push(...(await mtlsBench(scale)));
if (want('forward')) rows.push(...(await forwardBench(scale)));
if (want('oidc')) rows.push(...(await oidcBench(scale)));
if (want('signals')) rows.push(...(await signalsBench(scale)));
if (want('postgres')) rows.push(...(await pgBench(scale)));
if (want('startup')) rows.push(...(await startupBench(scale)));
if (want('ci')) rows.push(...(await ciBench(scale)));
if (want('rss')) rows.push(...(await rssBench(scale)));
// Opt-in rows (minutes at full size): BENCH_ONLY=storm (npm run bench:storm), BENCH_ONLY=logins, BENCH_ONLY=scale, BENCH_ONLY=ablation (npm run bench:ablation).
if (only?.has('storm')) rows.push(...(await stormBench(scale)));
if (only?.has('logins')) rows.push(...(await loginsBench()));
if (only?.has('scale')) rows.push(...(await scaleBench(scale)));
if (only?.has('ablation')) rows.push(...(await ablationBench(scale)));
if (want('leases')) rows.push(...(await leasesBench(scale)));
printTable(rows);
