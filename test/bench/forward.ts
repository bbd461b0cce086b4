import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AuditForwarder } from '../../nexus/audit/forwarder.js';
import { formatRfc5424 } from '../../nexus/audit/syslog-format.js';
import { parseSyslogTarget, type SyslogTarget } from '../../nexus/audit/syslog-target.js';
import { loadConfig } from '../../nexus/config/index.js';
import { openCore } from '../../nexus/core.js';
import { silentLogger } from '../../nexus/log.js';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { httpsText } from '../../scripts/lib/https-text.js';
import { startReceiver } from '../helpers/rsyslog.js';
import { load, type Load } from './mtls.js';
import { spawnNexus } from './nexus-process.js';
import type { BenchRow } from './report.js';

/** A receiver that accepts connections and never reads from them: the kernel's buffers fill, then the sender must wait. */
async function deafReceiver(): Promise<{ port: number; close(): void }> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer({ pauseOnConnect: true }, (s) => sockets.push(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

/** A Nexus (compiled, its own process) with a secret to read; `round()` measures mTLS reads of it. */
async function readServer(env: Record<string, string>, secs: number, untilPaused = false): Promise<{ round(): Promise<Load>; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-forward-'));
  const srv = await spawnNexus({ NEXUS_DATA_DIR: dir, ...env });
  const pki = path.join(dir, 'pki');
  const tls = { ca: fs.readFileSync(path.join(pki, 'ca.crt')), cert: fs.readFileSync(path.join(pki, 'pilot.crt')), key: fs.readFileSync(path.join(pki, 'pilot.key')) };
  const url = `https://127.0.0.1:${srv.port}/v1/secrets/bench/read`;
  await load(url, tls, 1, { method: 'PUT', body: JSON.stringify({ data: { username: 'svc', password: 'x'.repeat(200) } }) });
  await load(url, tls, secs);
  if (untilPaused) {
    // With a receiver that never reads, the rounds are measured once its buffers are full and the forwarder waits:
    // more load until the backlog stays put while the server is idle.
    const lag = async () => {
      const { text } = await httpsText(new URL(`https://127.0.0.1:${srv.port}/metrics`), { ...tls, method: 'GET' });
      return Number(/^nexus_audit_forward_lag_records (\d+)/m.exec(text)?.[1] ?? 'NaN');
    };
    for (let i = 0; i < 10; i++) {
      const before = await lag();
      await new Promise((r) => setTimeout(r, 1000));
      // Still draining (the backlog shrank) or nothing waiting yet: more load.
      if (before > 0 && (await lag()) >= before) break;
      await load(url, tls, secs);
    }
  }
  return {
    round: () => load(url, tls, secs, { pid: srv.child.pid! }),
    stop: async () => {
      srv.child.kill('SIGTERM');
      await srv.exited;
    },
  };
}

/** A closed trail of `n` records (what a busy server leaves behind), to forward from the start. */
async function trailOf(n: number): Promise<{ file: string; bytes: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-forward-trail-'));
  const core = await openCore(loadConfig({ NEXUS_DATA_DIR: dir }), silentLogger());
  const entry = { port: 'mtls' as const, principal: { spiffe_id: 'spiffe://nexus.local/bench' }, action: 'secret.read', route: '/v1/secrets/{path}', method: 'GET', path: 'bench/read', decision: 'allow' as const, status: 200 };
  for (let done = 0; done < n; done += 100) await Promise.all(Array.from({ length: 100 }, () => core.audit.record(entry)));
  await core.close();
  const file = path.join(dir, 'audit.jsonl');
  // What rsyslog writes for it: each whole message and a newline.
  const bytes = fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .reduce((sum, line) => sum + Buffer.byteLength(formatRfc5424(line, 'server')!) + 1, 0);
  return { file, bytes };
}

/** Records/s from a trail on disk into a local rsyslogd's file: sent, received, written. */
async function forwardRate(protocol: 'tcp' | 'tls', trail: { file: string; bytes: number }, n: number): Promise<number> {
  let ca: string | null = null;
  let rx;
  if (protocol === 'tls') {
    const issuer = await createCA('bench syslog CA');
    const leaf = await issueCert(issuer, { uris: [], ips: ['127.0.0.1'], eku: ['serverAuth'] });
    ca = issuer.cert.toString('pem');
    rx = await startReceiver('tls', { caPem: ca, certPem: leaf.certPem, keyPem: leaf.keyPem });
  } else {
    rx = await startReceiver('tcp');
  }
  const target = parseSyslogTarget(`${protocol}://127.0.0.1:${rx.port}`) as SyslogTarget;
  const fwd = new AuditForwarder({ target, ca, chains: [{ name: 'server', file: trail.file }], stateFile: path.join(rx.dir, 'state.json'), log: silentLogger(), onError: () => {} });
  const t0 = process.hrtime.bigint();
  fwd.start();
  try {
    for (;;) {
      if (fs.existsSync(rx.out) && fs.statSync(rx.out).size >= trail.bytes) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return n / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await fwd.stop();
    await rx.stop();
  }
}

/**
 * What forwarding costs requests when the receiver accepts and never reads
 * (the forwarder paused on a full socket), against forwarding off in the same
 * run; and how fast the forwarder drains a trail into a local rsyslogd,
 * against the mTLS read rate it has to keep up with.
 */
export async function forwardBench(scale: number): Promise<BenchRow[]> {
  const secs = Math.max(2, Math.round(3 * scale));
  const deaf = await deafReceiver();
  const rows: BenchRow[] = [];
  let off: Load;
  const live = await startReceiver('tcp');
  const plain = await readServer({}, secs);
  const forwarding = await readServer({ NEXUS_AUDIT_SYSLOG: `tcp://127.0.0.1:${deaf.port}` }, secs, true);
  const toRsyslog = await readServer({ NEXUS_AUDIT_SYSLOG: `tcp://127.0.0.1:${live.port}` }, secs);
  try {
    // Alternating rounds, the lower p99 of each kept: on a shared 2-core box single runs swing.
    const lower = (a: Load, b: Load) => (a.p99 <= b.p99 ? a : b);
    off = await plain.round();
    let deafRead = await forwarding.round();
    let liveRead = await toRsyslog.round();
    for (let i = 0; i < 2; i++) {
      off = lower(off, await plain.round());
      deafRead = lower(deafRead, await forwarding.round());
      liveRead = lower(liveRead, await toRsyslog.round());
    }
    rows.push({ scenario: 'audit forward: mTLS read, forwarding off', unit: 'req/s', rate: off.rate, p50: off.p50, p99: off.p99, cpuUs: off.cpuUs });
    const limit = Math.max(off.p99 * 1.25, off.p99 + 1);
    rows.push({
      scenario: `audit forward: mTLS read, receiver never reads (p99 off: ${off.p99.toFixed(2)} ms)`,
      unit: 'req/s',
      rate: deafRead.rate,
      p50: deafRead.p50,
      p99: deafRead.p99,
      cpuUs: deafRead.cpuUs,
      baseline: { name: 'forwarding off', rate: off.rate },
      aim: { text: `p99 <= ${limit.toFixed(2)} ms`, met: deafRead.p99 <= limit },
    });
    rows.push({
      scenario: 'audit forward: mTLS read, forwarding to a local rsyslogd (tcp)',
      unit: 'req/s',
      rate: liveRead.rate,
      p50: liveRead.p50,
      p99: liveRead.p99,
      cpuUs: liveRead.cpuUs,
      baseline: { name: 'forwarding off', rate: off.rate },
      aim: { text: 'measured', met: true },
    });
  } finally {
    await plain.stop();
    await forwarding.stop();
    await toRsyslog.stop();
    await live.stop();
    deaf.close();
  }
  const n = Math.round(50_000 * scale);
  const trail = await trailOf(n);
  for (const protocol of ['tcp', 'tls'] as const) {
    const rate = await forwardRate(protocol, trail, n);
    rows.push({ scenario: `audit forward: ${n} records to a local rsyslogd over ${protocol}`, unit: 'ops/s', rate, baseline: { name: 'mTLS read rate (forwarding off)', rate: off.rate }, aim: { minRatio: 1 } });
  }
  return rows;
}
