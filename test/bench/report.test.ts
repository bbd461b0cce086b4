import { expect } from 'chai';
import { cpuMicros, printTable } from './report.js';

describe('bench table', () => {
  it('prints each row beside the bare route of the same run: ratio, server CPU per request and the aim', () => {
    const out: string[] = [];
    const log = console.log;
    console.log = (s: string) => out.push(s);
    try {
      printTable([
        { scenario: 'bare', unit: 'req/s', rate: 4000, cpuUs: 40 },
        { scenario: 'jwt', unit: 'req/s', rate: 2000, cpuUs: 90, bare: { rate: 4000, cpuUs: 40 }, baseline: { name: 'bare TLS route', rate: 4000 }, aim: { minRatio: 0.6 } },
      ]);
    } finally {
      console.log = log;
    }
    const row = out.find((l) => l.startsWith('| jwt'))!;
    expect(row).to.contain('0.50x of 4,000').and.contain('90 (bare 40)').and.contain('>= 0.6x').and.contain('NO');
    expect(out[0]).to.contain('server CPU µs/req');
  });

  it('reads a process CPU time from /proc', () => {
    // Spins until the kernel's 10 ms ticks move (a loaded box may give this process little CPU), at most 10 s.
    const t0 = cpuMicros(process.pid);
    const end = Date.now() + 10_000;
    while (cpuMicros(process.pid) === t0 && Date.now() < end);
    expect(cpuMicros(process.pid)).to.be.greaterThan(t0);
  });
});
