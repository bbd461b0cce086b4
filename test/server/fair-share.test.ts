import { expect } from 'chai';
import net from 'node:net';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { call, type Res } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

// Linux routes all of 127/8 to loopback: other source addresses stand in for other clients.
const FLEET = '127.0.0.2';
const OTHERS = ['127.0.0.3', '127.0.0.4'];

/** `n` TCP connections from `localAddress` that never say hello; resolves once each is open (or closed by the server). */
async function idle(port: number, n: number, localAddress: string): Promise<{ open(): number; destroy(): void }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  await Promise.all(
    Array.from({ length: n }, () => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress });
      sockets.push(s);
      s.on('error', () => {});
      s.on('close', () => closed++);
      return new Promise<void>((resolve) => {
        s.once('connect', () => resolve());
        s.once('close', () => resolve());
      });
    }),
  );
  return { open: () => n - closed, destroy: () => sockets.forEach((s) => s.destroy()) };
}

async function attempt(fn: () => Promise<Res>): Promise<Res | Error> {
  try {
    return await fn();
  } catch (err) {
    return err as Error;
  }
}

// A CI fleet behind one NAT address is served while the port has room; the
// per-IP cap bites only once the port is under pressure (half its global cap).
describe('per-IP connection cap: fair share, not resets', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  before(async () => {
    e = await startOidcEnv({
      NEXUS_MTLS_MAX_CONNECTIONS: '20',
      NEXUS_OIDC_MAX_CONNECTIONS: '20',
      NEXUS_MTLS_MAX_CONNECTIONS_PER_IP: '4',
      NEXUS_OIDC_MAX_CONNECTIONS_PER_IP: '4',
      NEXUS_TLS_HANDSHAKE_TIMEOUT_MS: '60000',
    });
  });
  after(() => e.stop());

  const ports = () => [
    { name: 'mtls', port: e.t.port, healthz: (localAddress?: string) => call(e.t.port, e.t.admin, 'GET', '/healthz', undefined, { localAddress }) },
    { name: 'oidc', port: e.port, healthz: (localAddress?: string) => call(e.port, { ca: e.t.caPem }, 'GET', '/healthz', undefined, { localAddress }) },
  ];
  const servedAgain = (fn: () => Promise<Res>) => until(async () => !((await attempt(fn)) instanceof Error), 'a connection to be accepted again');

  it('more connections than the per-IP cap from one address, the port otherwise idle: every one is served', async () => {
    for (const p of ports()) {
      // 8 open (twice the per-IP cap), the port's use 8 of 20: below half, no pressure.
      const fleet = await idle(p.port, 8, FLEET);
      try {
        expect(fleet.open(), p.name).to.equal(8);
        const r = await attempt(() => p.healthz(FLEET));
        expect(r instanceof Error ? r.message : r.status, p.name).to.equal(200);
      } finally {
        fleet.destroy();
      }
      await servedAgain(() => p.healthz(FLEET));
    }
  });

  it('under pressure (half the global cap in use) the per-IP cap bites, and other addresses are still served', async () => {
    for (const p of ports()) {
      const fleet = await idle(p.port, 8, FLEET);
      const other = await idle(p.port, 3, OTHERS[0]!);
      try {
        // 11 of 20 in use: the fleet, over its cap of 4, is refused...
        expect(fleet.open() + other.open(), p.name).to.equal(11);
        const r = await attempt(() => p.healthz(FLEET));
        expect(r, p.name).to.be.instanceOf(Error);
        // ...while an address under its cap is served.
        expect((await p.healthz(OTHERS[1])).status, p.name).to.equal(200);
      } finally {
        fleet.destroy();
        other.destroy();
      }
      await servedAgain(() => p.healthz(FLEET));
    }
  });
});
