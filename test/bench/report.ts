import fs from 'node:fs';

/** One line of the bench table. Rates are per second; latencies in milliseconds. */
export interface BenchRow {
  scenario: string;
  rate: number;
  unit: 'ops/s' | 'req/s' | 's' | 'µs/req';
  p50?: number;
  p99?: number;
  /** Server CPU (user + system) per request, µs: steadier than throughput on a shared box. */
  cpuUs?: number;
  /** The bare Koa TLS route measured in the same run, that every HTTP row is compared with. */
  bare?: { rate: number; cpuUs?: number };
  baseline?: { name: string; rate: number };
  /** Minimum ratio rate / baseline.rate that meets the aim (or a free-text aim). */
  aim?: { minRatio: number } | { text: string; met: boolean };
}

export interface Sample {
  rate: number;
  p50: number;
  p99: number;
}

/** Times `n` calls of `fn` one by one (each awaited): rate and per-call percentiles. */
export async function measure(n: number, fn: (i: number) => unknown): Promise<Sample> {
  const times = new Float64Array(n);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const total = Number(process.hrtime.bigint() - start) / 1e9;
  times.sort();
  return { rate: n / total, p50: times[Math.floor(n * 0.5)]!, p99: times[Math.floor(n * 0.99)]! };
}

/** CPU time (user + system) a process has used so far, µs, from /proc (Linux exports it in USER_HZ = 100 ticks/s). */
export function cpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined) return '-';
  return n >= 100 || digits === 0 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

export function ratioOf(row: BenchRow): number | undefined {
  return row.baseline ? row.rate / row.baseline.rate : undefined;
}

export function printTable(rows: BenchRow[]): void {
  const header = ['scenario', 'rate', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'vs bare TLS route (same run)', 'baseline (same run)', 'ratio', 'aim', 'met'];
  const lines = rows.map((r) => {
    const ratio = ratioOf(r);
    let aim = '-';
    let met = '-';
    if (r.aim && 'minRatio' in r.aim) {
      aim = `>= ${r.aim.minRatio}x`;
      met = ratio !== undefined && ratio >= r.aim.minRatio ? 'yes' : 'NO';
    } else if (r.aim) {
      aim = r.aim.text;
      met = r.aim.met ? 'yes' : 'NO';
    }
    return [
      r.scenario,
      `${fmt(r.rate, r.unit === 's' ? 2 : 0)} ${r.unit}`,
      r.p50 === undefined ? '-' : r.p50.toFixed(3),
      r.p99 === undefined ? '-' : r.p99.toFixed(3),
      r.cpuUs === undefined ? '-' : `${fmt(r.cpuUs)}${r.bare?.cpuUs === undefined ? '' : ` (bare ${fmt(r.bare.cpuUs)})`}`,
      r.bare ? `${(r.rate / r.bare.rate).toFixed(2)}x of ${fmt(r.bare.rate)}` : '-',
      r.baseline ? `${r.baseline.name}: ${fmt(r.baseline.rate)}` : '-',
      ratio === undefined ? '-' : `${ratio.toFixed(2)}x`,
      aim,
      met,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(line(l));
}
