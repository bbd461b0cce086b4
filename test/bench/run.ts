// npm run bench: every benchmark, one table. BENCH_SCALE=5 for a longer run.
import { initSodium } from '../../nexus/crypto/sodium.js';
import { printTable, type BenchRow } from './report.js';
import { mtlsBench } from './mtls.js';
import { oidcBench } from './oidc.js';
import { storageBench } from './storage.js';
import { auditBench } from './audit.js';

const scale = Number(process.env.BENCH_SCALE ?? '1');
await initSodium();
const rows: BenchRow[] = [];
console.log(`Nexus bench (scale ${scale}; BENCH_SCALE=5 npm run bench for a longer run) on ${process.version}`);
rows.push(...(await storageBench(scale)));
rows.push(...(await auditBench(scale)));
rows.push(...(await mtlsBench(scale)));
rows.push(...(await oidcBench(scale)));
printTable(rows);
