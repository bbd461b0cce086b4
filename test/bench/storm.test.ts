import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openLoop, poissonSchedule } from './open-loop.js';

/** A server that answers at once, except that it stalls every answer due between `from` and `from + ms` until the stall ends. */
async function stallingServer(from: number, ms: number): Promise<{ port: number; close(): Promise<void> }> {
  const t0 = performance.now();
  const server = http.createServer((_req, res) => {
    const now = performance.now() - t0;
    const wait = now >= from && now < from + ms ? from + ms - now : 0;
    setTimeout(() => res.end('ok'), wait);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

function get(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
}

describe('open-loop storm harness', function () {
  this.timeout(30_000);

  it('Poisson arrivals: the count over the run is near rate x seconds, the gaps vary, and a seed repeats the schedule', () => {
    const s = poissonSchedule(200, 10, 7);
    expect(s.length).to.be.within(1800, 2200);
    expect(poissonSchedule(200, 10, 7)).to.deep.equal(s);
    const gaps = s.slice(1).map((t, i) => t - s[i]!);
    expect(Math.max(...gaps)).to.be.greaterThan(3 * Math.min(...gaps) + 1);
  });

  it('a server that stalls for 2 s shows the stall in the p99 (every job scheduled during it waits), which a closed loop hides', async () => {
    const srv = await stallingServer(1000, 2000);
    try {
      // Open loop, 50 jobs/s for 4 s: about 100 of the ~200 jobs are due during the stall.
      const open = await openLoop(50, 4, () => get(srv.port));
      expect(open.completed).to.equal(open.scheduled);
      expect(open.p99, `open-loop p99 ${open.p99} ms`).to.be.at.least(1000);
      expect(open.peakInFlight, 'jobs kept arriving during the stall').to.be.at.least(10);
    } finally {
      await srv.close();
    }

    // The same stall under a closed loop (one client, next request after the answer): one slow sample among many.
    const again = await stallingServer(1000, 2000);
    try {
      const times: number[] = [];
      const end = performance.now() + 4000;
      while (performance.now() < end) {
        const t = performance.now();
        await get(again.port);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      expect(times[times.length - 1], 'the closed loop did meet the stall').to.be.at.least(1000);
      expect(times[Math.floor(times.length * 0.99)], `closed-loop p99 over ${times.length} samples`).to.be.below(1000);
    } finally {
      await again.close();
    }
  });
});
