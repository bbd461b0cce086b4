import { expect } from 'chai';
import net from 'node:net';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { clientKey } from '../../nexus/listeners/conn-limits.js';
import { call, type Res } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

// Linux routes all of 127/8 to loopback: other source addresses stand in for other clients.
const ATTACKER = '127.0.0.2';

interface Idle {
  sockets: net.Socket[];
  /** Sockets the server has closed so far. */
  closed(): number;
  destroy(): void;
}

/** `n` TCP connections that never send a ClientHello, opened in batches (the listen backlog is finite). */
async function idleSockets(port: number, n: number, localAddress = ATTACKER): Promise<Idle> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, () => {
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
  }
  return { sockets, closed: () => closed, destroy: () => sockets.forEach((s) => s.destroy()) };
}

async function attempt(fn: () => Promise<Res>): Promise<Res | Error> {
  try {
    return await fn();
  } catch (err) {
    return err as Error;
  }
}

describe('connection limits on both ports', function () {
  this.timeout(60_000);

  describe('defaults: handshake timeout and per-client-IP caps', () => {
    let e: OidcEnv;
    before(async () => {
      e = await startOidcEnv();
    });
    after(() => e.stop());

    const ports = () => [
      { name: 'mtls', port: e.t.port, healthz: (localAddress?: string) => call(e.t.port, e.t.admin, 'GET', '/healthz', undefined, { localAddress }) },
      { name: 'oidc', port: e.port, healthz: (localAddress?: string) => call(e.port, { ca: e.t.caPem }, 'GET', '/healthz', undefined, { localAddress }) },
    ];

    it('1,100 idle sockets per port that never say hello: other clients are served at once, and the server drops the idle ones itself', async () => {
      const idle = await Promise.all(ports().map((p) => idleSockets(p.port, 1100)));
      try {
        for (const p of ports()) {
          const r = await attempt(() => p.healthz());
          expect(r, `${p.name}: ${r instanceof Error ? r.message : ''}`).to.not.be.instanceOf(Error);
          expect((r as Res).status).to.equal(200);
        }
        // The handshake timeout (5 s by default) closes every idle socket from the server side...
        await until(() => idle.every((i) => i.closed() === 1100), 'the server to close every idle socket');
        // ...so the attacker's own address is served again too.
        for (const p of ports()) expect((await p.healthz(ATTACKER)).status).to.equal(200);
      } finally {
        idle.forEach((i) => i.destroy());
      }
    });

    it('a client that sends garbage instead of a ClientHello is disconnected', async () => {
      for (const p of ports()) {
        const s = net.connect({ host: '127.0.0.1', port: p.port });
        s.on('error', () => {});
        await new Promise((r) => s.once('connect', r));
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await new Promise((r) => s.once('close', r));
      }
    });
  });

  describe('configured caps', () => {
    let e: OidcEnv;
    before(async () => {
      e = await startOidcEnv({
        NEXUS_MTLS_MAX_CONNECTIONS: '6',
        NEXUS_OIDC_MAX_CONNECTIONS: '6',
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
    // Closed sockets leave the server's count a moment after the client lets go.
    const servedAgain = (fn: () => Promise<Res>) => until(async () => !((await attempt(fn)) instanceof Error), 'a connection to be accepted again');

    it('per client IP: one address cannot take more than its share', async () => {
      for (const p of ports()) {
        const idle = await idleSockets(p.port, 4);
        try {
          const r = await attempt(() => p.healthz(ATTACKER));
          expect(r, p.name).to.be.instanceOf(Error);
          expect((await p.healthz()).status, p.name).to.equal(200);
        } finally {
          idle.destroy();
        }
        await servedAgain(() => p.healthz(ATTACKER));
      }
    });

    it('globally: past the cap new connections are refused, and served again once others close', async () => {
      for (const p of ports()) {
        const idle = await Promise.all(['127.0.0.3', '127.0.0.4'].map((a) => idleSockets(p.port, 3, a)));
        try {
          const r = await attempt(() => p.healthz());
          expect(r, p.name).to.be.instanceOf(Error);
        } finally {
          idle.forEach((i) => i.destroy());
        }
        await servedAgain(() => p.healthz());
      }
    });
  });
});

describe('per-client connection key', () => {
  it('counts IPv4 (also IPv4-mapped) by address and IPv6 by /64', () => {
    expect(clientKey('10.0.0.7')).to.equal('10.0.0.7');
    expect(clientKey('::ffff:10.0.0.7')).to.equal('10.0.0.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).to.equal(clientKey('2001:0db8:0001:0002:ffff:1:2:3'));
    expect(clientKey('2001:db8:1:2::1')).to.not.equal(clientKey('2001:db8:1:3::1'));
    expect(clientKey('::1')).to.equal('0:0:0:0::/64');
  });
});
