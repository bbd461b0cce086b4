import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../nexus/log.js';
import { callOrRefused, createCA, type ClientCreds, type TestServer, startTestServer } from '../helpers/server.js';

interface Line {
  level: number;
  msg: string;
  reason?: string;
  remote?: string;
  suppressed?: number;
}

describe('mTLS port: refused client certificates are logged, at info, with the reason, rate-limited', function () {
  this.timeout(30_000);
  let t: TestServer;
  let logs = '';
  const lines = (): Line[] =>
    logs
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => /client certificate refused/.test(l.msg));

  before(async () => {
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => (logs += d.toString()));
    t = await startTestServer({}, { log: createLogger({ level: 'info', stream: sink }) });
  });
  after(() => t.stop());

  it('a certificate from another CA, a missing certificate and a non-SVID each log one info line naming why', async () => {
    const other = await createCA('other');
    const foreign: ClientCreds = await t.issue({ uris: ['spiffe://nexus.local/pilot'] }, other);
    expect(await callOrRefused(t.port, foreign, 'GET', '/healthz')).to.be.instanceOf(Error);
    expect(await callOrRefused(t.port, { ca: t.caPem }, 'GET', '/healthz')).to.be.instanceOf(Error);
    // Chains to the bundle but is no SVID (no URI SAN): refused after the handshake, with 401.
    const noSvid = await t.issue({ uris: [], dns: ['client.example'] });
    const r = await callOrRefused(t.port, noSvid, 'GET', '/healthz');
    expect(r).to.not.be.instanceOf(Error);
    await new Promise((res) => setTimeout(res, 200));
    const got = lines();
    expect(got.map((l) => l.level)).to.deep.equal([30, 30, 30]);
    for (const l of got) {
      expect(l.reason, JSON.stringify(l)).to.be.a('string').and.not.equal('');
    }
    // Node drops an untrusted certificate's socket before the event, address and all.
    for (const l of got.slice(1)) expect(l.remote).to.equal('127.0.0.1');
    expect(got[0]!.reason).to.match(/^certificate not trusted: [A-Z_]+/);
    expect(got[1]!.reason).to.match(/certificate/i);
    expect(got[2]!.reason).to.match(/svid|uri/i);
    // The log never carries the certificate itself.
    expect(logs).to.not.include('BEGIN CERTIFICATE');
  });

  it('a flood of refusals logs a bounded number of lines and then says how many it left out', async () => {
    const before = lines().length;
    for (let i = 0; i < 60; i++) await callOrRefused(t.port, { ca: t.caPem }, 'GET', '/healthz');
    const during = lines().length - before;
    expect(during).to.be.at.least(1).and.at.most(20);
    // The next window reports what the budget dropped.
    await new Promise((res) => setTimeout(res, 1200));
    await callOrRefused(t.port, { ca: t.caPem }, 'GET', '/healthz');
    await new Promise((res) => setTimeout(res, 200));
    const since = lines().slice(before);
    expect(since.some((l) => typeof l.suppressed === 'number'), 'a line that counts the suppressed refusals').to.equal(true);
    // Every refusal is either a line or counted in one: 60 and the probe.
    expect(since.length + since.reduce((n, l) => n + (l.suppressed ?? 0), 0)).to.equal(61);
  });
});
