import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startIdp } from '../helpers/idp.js';
import type { ServerProcess } from '../helpers/process.js';
import { call } from '../helpers/server.js';
import { load, type Load } from './mtls.js';
import { spawnNexus } from './nexus-process.js';
import { oidcFixture } from './oidc.js';
import type { BenchRow } from './report.js';

/**
 * The cost of access signals on the hot path: the same reads against two
 * servers of the same build, one with signals on (learning window over, so
 * every read is judged) and one with NEXUS_SIGNALS=off, alternated.
 */
export async function signalsBench(scale: number): Promise<BenchRow[]> {
  const idp = await startIdp();
  const es = await idp.server.issuer.keys.generate('ES256', { kid: 'bench-es256' });
  const secs = Math.max(2, Math.round(3 * scale));
  const servers: Array<{ srv: ServerProcess; tls: { ca: Buffer; cert: Buffer; key: Buffer }; token: string }> = [];
  try {
    for (const signals of ['on', 'off']) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nexus-bench-signals-${signals}-`));
      const srv = await spawnNexus({ NEXUS_DATA_DIR: dir, NEXUS_OIDC_ADDR: '127.0.0.1:0', NEXUS_OIDC_SUBJECT_RPS: '1000000', NEXUS_LOG_LEVEL: 'warn', NEXUS_SIGNALS: signals, NEXUS_SIGNAL_LEARN_S: '1' });
      const pki = path.join(dir, 'pki');
      const tls = { ca: fs.readFileSync(path.join(pki, 'ca.crt')), cert: fs.readFileSync(path.join(pki, 'pilot.crt')), key: fs.readFileSync(path.join(pki, 'pilot.key')) };
      const admin = { ca: tls.ca.toString(), cert: tls.cert.toString(), key: tls.key.toString() };
      const mint = await oidcFixture(idp, srv.port, admin, es.kid);
      await call(srv.port, admin, 'PUT', '/v1/secrets/bench/read', { data: { username: 'svc', password: 'x'.repeat(200) } });
      const ex = await call(srv.oidcPort!, { ca: admin.ca }, 'POST', '/v1/auth/token', { jwt: await mint('bench-signals') });
      servers.push({ srv, tls, token: ex.body.token as string });
    }
    const [on, off] = servers as [(typeof servers)[0], (typeof servers)[0]];
    const mtlsRead = (s: typeof on, seconds: number) => load(`https://127.0.0.1:${s.srv.port}/v1/secrets/bench/read`, s.tls, seconds, { pid: s.srv.child.pid! });
    const oidcRead = (s: typeof on, seconds: number) =>
      load(`https://127.0.0.1:${s.srv.oidcPort!}/v1/secrets/ci/org/repo/read`, { ca: s.tls.ca }, seconds, { headers: { authorization: `Bearer ${s.token}` }, pid: s.srv.child.pid! });
    // Warm-up, past the 1 s learning window: from here on every read on `on` is judged.
    for (const s of servers) {
      await mtlsRead(s, 1);
      await oidcRead(s, 1);
    }
    const best = (a: Load, b: Load) => (a.rate >= b.rate ? a : b);
    let mOn = await mtlsRead(on, secs);
    let mOff = await mtlsRead(off, secs);
    let oOn = await oidcRead(on, secs);
    let oOff = await oidcRead(off, secs);
    mOff = best(mOff, await mtlsRead(off, secs));
    mOn = best(mOn, await mtlsRead(on, secs));
    oOff = best(oOff, await oidcRead(off, secs));
    oOn = best(oOn, await oidcRead(on, secs));
    return [
      { scenario: 'signals off (NEXUS_SIGNALS=off): mTLS read (baseline)', unit: 'req/s', ...mOff },
      { scenario: 'signals on: mTLS read', unit: 'req/s', ...mOn, baseline: { name: 'signals off', rate: mOff.rate }, aim: { minRatio: 0.95 } },
      { scenario: 'signals off (NEXUS_SIGNALS=off): OIDC read, exchanged token (baseline)', unit: 'req/s', ...oOff },
      { scenario: 'signals on: OIDC read, exchanged token', unit: 'req/s', ...oOn, baseline: { name: 'signals off', rate: oOff.rate }, aim: { minRatio: 0.95 } },
    ];
  } finally {
    for (const { srv } of servers) {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
    await idp.stop();
  }
}
