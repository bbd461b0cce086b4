import net from 'node:net';
import type { Logger } from '../log.js';

/**
 * The key a client's connections are counted under: its IPv4 address, or the
 * /64 of an IPv6 one (a single host usually holds a whole /64, so counting
 * per address would be no cap at all).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  if (!net.isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * At most `perIp` concurrent connections per client (see clientKey), counted
 * from the TCP accept, before any TLS, once the port is under pressure: half
 * its global cap (server.maxConnections) in use. Below that the port has room
 * and a busy fleet behind one NAT address is served rather than reset (each
 * reset makes its retries, and so the queue, worse); above it no address takes
 * more than its share, so the idle sockets of one address can never fill the
 * global cap on their own: it holds at most half of it, or `perIp` if more.
 */
export function capConnectionsPerClient(server: net.Server, perIp: number, log: Logger): void {
  const open = new Map<string, number>();
  let total = 0;
  let refused = 0;
  let lastLog = 0;
  // Prepended, so a refused socket is destroyed before TLS even starts on it.
  server.prependListener('connection', (socket: net.Socket) => {
    const key = clientKey(socket.remoteAddress);
    const n = open.get(key) ?? 0;
    if (n >= perIp && total >= server.maxConnections / 2) {
      socket.destroy();
      refused++;
      // One line a minute at most: a flood must not become a log flood.
      if (Date.now() - lastLog > 60_000) {
        lastLog = Date.now();
        log.warn({ client: key, cap: perIp, open: total, refused }, 'refused connections over the per-client cap (port under pressure)');
      }
      return;
    }
    open.set(key, n + 1);
    total++;
    socket.once('close', () => {
      total--;
      const left = (open.get(key) ?? 1) - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    });
  });
}
