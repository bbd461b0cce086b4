import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { readForwardedCopy } from '../../nexus/audit/forwarded-copy.js';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { silentLogger } from '../../nexus/log.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { AuditForwarder } from '../../nexus/audit/forwarder.js';
import { parseForwarded } from '../../nexus/audit/syslog-format.js';
import { parseSyslogTarget, type SyslogTarget } from '../../nexus/audit/syslog-target.js';
import { openTestCore, runBin, tempDir, testConfig, testEnv } from '../helpers/env.js';
import { startReceiver, type Receiver } from '../helpers/rsyslog.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

/** A receiver certificate for 127.0.0.1, from a CA of its own. */
async function receiverPki() {
  const ca = await createCA('syslog test CA');
  const leaf = await issueCert(ca, { uris: [], ips: ['127.0.0.1'], dns: ['localhost'], commonName: 'rsyslog', eku: ['serverAuth'] });
  return { caPem: ca.cert.toString('pem'), certPem: leaf.certPem, keyPem: leaf.keyPem };
}

async function metric(t: TestServer, name: string): Promise<number> {
  const text = (await call(t.port, t.admin, 'GET', '/metrics')).text;
  const rows = text.split('\n').filter((l) => l.startsWith(name));
  return rows.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** Requests, `concurrency` at a time; each writes one audit record. */
async function requests(t: TestServer, n: number, concurrency = 20): Promise<void> {
  for (let i = 0; i < n; i += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, n - i) }, (_, j) => call(t.port, t.admin, 'GET', `/v1/secrets/app/missing-${i + j}`));
    for (const r of await Promise.all(batch)) expect(r.status).to.equal(404);
  }
}

const head = (t: TestServer) => t.server.core.audit.head();

/** Waits until the receiver holds every record of the trail's head (repeats allowed). */
async function allArrived(t: TestServer, rx: Receiver, ms = 60_000): Promise<void> {
  await until(() => {
    if (!fs.existsSync(rx.out)) return false;
    const h = head(t);
    return readForwardedCopy(rx.out, 'server').records.some((r) => r.gen === h.generation && r.seq === h.count);
  }, 'every record at the receiver', ms);
}

describe('audit forwarding to syslog (real rsyslogd)', function () {
  this.timeout(180_000);
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('TLS: a receiver down while 1,000 requests are served gets every record, in order, once back; the rebuilt copy verifies', async () => {
    const pki = await receiverPki();
    const rx = await startReceiver('tls', pki);
    cleanup.push(() => rx.stop());
    const caFile = path.join(rx.dir, 'nexus-trusts.pem');
    fs.writeFileSync(caFile, pki.caPem);
    const t = await startTestServer({ NEXUS_AUDIT_SYSLOG: `tls://127.0.0.1:${rx.port}`, NEXUS_AUDIT_SYSLOG_CA: caFile });
    let stopped = false;
    cleanup.push(async () => {
      if (!stopped) await t.stop();
    });
    await requests(t, 10);
    await allArrived(t, rx);

    await rx.stop();
    await requests(t, 1000);
    expect(await metric(t, 'nexus_audit_forward_lag_records')).to.be.at.least(1000);
    await until(async () => (await metric(t, 'nexus_audit_forward_errors_total{reason="connect"}')) > 0, 'a refused connection counted');
    await rx.start();
    await allArrived(t, rx);
    await until(async () => (await metric(t, 'nexus_audit_forward_lag_records')) === 0, 'no lag');
    // The last scrape wrote a record of its own.
    await allArrived(t, rx);
    const last = head(t);
    await t.stop();
    stopped = true;

    // Whole RFC 5424 messages, the chain fields in structured data.
    const raw = rx.lines();
    expect(raw[0]).to.match(/^<\d+>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ nexus - \S+ \[nexus@32473 chain="server" gen="1" seq="1" mac="[0-9a-f]{64}"\] \uFEFF\{/);
    const copy = readForwardedCopy(rx.out, 'server');
    expect(copy.records.map((r) => r.seq)).to.deep.equal(Array.from({ length: last.count }, (_, i) => i + 1));
    expect(copy.records.every((r) => r.gen === 1)).to.equal(true);
    // The receiver's copy is the local trail, line for line.
    const local = fs.readFileSync(path.join(t.dir, 'audit.jsonl'), 'utf8').trim().split('\n');
    expect(copy.records.map((r) => r.line)).to.deep.equal(local);

    const v = await runBin('nexus-audit', ['verify', '--file', rx.out], testEnv(t.dir));
    expect(v.code, v.stderr).to.equal(0);
    expect(v.stdout).to.match(new RegExp(`audit trail intact: ${last.count} record\\(s\\) in ${rx.out.replace(/[.]/g, '\\.')}`));
    // A record missing from the copy is caught in it.
    const cut = raw.filter((l) => !l.includes(`seq="${Math.floor(last.count / 2)}" `));
    fs.writeFileSync(rx.out, `${cut.join('\n')}\n`);
    const broken = await runBin('nexus-audit', ['verify', '--file', rx.out], testEnv(t.dir));
    expect(broken.code).to.equal(1);
    expect(broken.stderr).to.match(new RegExp(`records? ${Math.floor(last.count / 2)} of generation 1 (are|is) missing`));
  });

  it('TLS: a receiver whose certificate does not chain to NEXUS_AUDIT_SYSLOG_CA is refused and counted; nothing is sent', async () => {
    const trusted = await receiverPki();
    const other = await receiverPki();
    const rx = await startReceiver('tls', other);
    cleanup.push(() => rx.stop());
    const caFile = path.join(rx.dir, 'nexus-trusts.pem');
    fs.writeFileSync(caFile, trusted.caPem);
    const t = await startTestServer({ NEXUS_AUDIT_SYSLOG: `tls://127.0.0.1:${rx.port}`, NEXUS_AUDIT_SYSLOG_CA: caFile });
    cleanup.push(() => t.stop());
    await requests(t, 5);
    await until(async () => (await metric(t, 'nexus_audit_forward_errors_total{reason="tls"}')) >= 2, 'refusals counted');
    expect(await metric(t, 'nexus_audit_forward_lag_records')).to.be.at.least(5);
    expect(rx.lines()).to.deep.equal([]);
  });

  it('records written while the receiver is down reach it after Nexus restarts (at-least-once across a restart)', async () => {
    const rx = await startReceiver('tcp');
    cleanup.push(() => rx.stop());
    const dir = tempDir('nexus-srv');
    const env = { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_AUDIT_SYSLOG: `tcp://127.0.0.1:${rx.port}` };
    const admin = () => ({ ca: fs.readFileSync(path.join(dir, 'pki/ca.crt'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'pki/pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(dir, 'pki/pilot.key'), 'utf8') });
    const reads = async (s: RunningServer, n: number) => {
      for (let i = 0; i < n; i++) expect((await call(s.mtls.address().port, admin(), 'GET', `/v1/secrets/app/missing-${i}`)).status).to.equal(404);
    };
    const arrived = (s: RunningServer) => {
      const h = s.core.audit.head();
      return fs.existsSync(rx.out) && readForwardedCopy(rx.out, 'server').records.some((r) => r.seq === h.count);
    };
    const first = await startServer(testConfig(dir, env), silentLogger(), { plugins: [] });
    await reads(first, 20);
    await until(() => arrived(first), 'the first records at the receiver');
    await rx.stop();
    await reads(first, 50);
    await first.stop(2000);

    await rx.start();
    const second = await startServer(testConfig(dir, env), silentLogger(), { plugins: [] });
    try {
      await reads(second, 5);
      await until(() => arrived(second), 'every record at the receiver');
      const seqs = readForwardedCopy(rx.out, 'server').records.map((r) => r.seq);
      expect(seqs).to.deep.equal(Array.from({ length: second.core.audit.head().count }, (_, i) => i + 1));
    } finally {
      await second.stop(2000);
    }
  });

  it('the kept position: what was confirmed sent is not sent again by the next forwarder; another receiver URL starts from the beginning', async () => {
    const rx = await startReceiver('tcp');
    cleanup.push(() => rx.stop());
    const core = await openTestCore(tempDir());
    cleanup.push(() => core.close());
    const record = async (n: number) => {
      for (let i = 0; i < n; i++) expect(await core.audit.record({ port: 'script', action: 'bench', decision: 'allow' })).to.equal(true);
    };
    const stateFile = path.join(rx.dir, 'state.json');
    // resendBytes 0: every record written to the socket counts as confirmed (so the position moves on every batch).
    const forwarder = (url = `tcp://127.0.0.1:${rx.port}`) =>
      new AuditForwarder({ target: parseSyslogTarget(url) as SyslogTarget, ca: null, chains: [{ name: 'server', file: core.audit.file, head: () => core.audit.head() }], stateFile, log: silentLogger(), onError: () => {}, resendBytes: 0 });
    const seqs = () => rx.lines().map((l) => parseForwarded(l)!.seq);
    await record(10);
    const a = forwarder();
    a.start();
    await until(() => seqs().length === 10, '10 records');
    await a.stop();
    expect(JSON.parse(fs.readFileSync(stateFile, 'utf8'))).to.deep.include({ receiver: `tcp://127.0.0.1:${rx.port}` }).and.have.nested.property('chains.server.seq', 10);
    await record(5);
    const b = forwarder();
    b.start();
    await until(() => seqs().length >= 15, '15 records');
    await b.stop();
    expect(seqs()).to.deep.equal(Array.from({ length: 15 }, (_, i) => i + 1));
    // The same receiver named another way is another receiver: it gets everything.
    const c = forwarder(`tcp://localhost:${rx.port}`);
    c.start();
    await until(() => seqs().length >= 30, 'everything again');
    await c.stop();
    expect(seqs().slice(15)).to.deep.equal(Array.from({ length: 15 }, (_, i) => i + 1));
  });

  for (const protocol of ['tcp', 'udp'] as const) {
    it(`${protocol}://: records arrive whole and in order`, async () => {
      const rx = await startReceiver(protocol);
      cleanup.push(() => rx.stop());
      const t = await startTestServer({ NEXUS_AUDIT_SYSLOG: `${protocol}://127.0.0.1:${rx.port}` });
      cleanup.push(() => t.stop());
      await requests(t, 50, 5);
      await allArrived(t, rx);
      const copy = readForwardedCopy(rx.out, 'server');
      expect(copy.records.map((r) => r.seq)).to.deep.equal(Array.from({ length: head(t).count }, (_, i) => i + 1));
    });
  }

  it('the chain head is exported as gauges', async () => {
    const t = await startTestServer();
    cleanup.push(() => t.stop());
    await requests(t, 3);
    const h = head(t);
    expect(await metric(t, 'nexus_audit_chain_head_seq')).to.equal(h.count).and.to.be.at.least(3);
    expect(await metric(t, 'nexus_audit_chain_head_generation')).to.equal(1);
    expect(await metric(t, 'nexus_audit_forward_lag_records')).to.equal(0);
  });
});
