import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import type { SyslogTarget } from './syslog-target.js';

/** One connection to the receiver, as the forwarder uses it. */
export interface SyslogConnection {
  /** Queues a framed message; false when the caller should wait for drained() before writing more. */
  write(buf: Buffer): boolean;
  /** Resolves when queued data has gone to the kernel; rejects when the connection is lost. */
  drained(): Promise<void>;
  /** Resolves (with why) when the connection is lost. */
  readonly lost: Promise<Error>;
  destroy(): void;
}

/** Why a connection attempt failed, as counted in nexus_audit_forward_errors_total{reason}. */
export class ConnectError extends Error {
  constructor(
    readonly reason: 'connect' | 'tls',
    override readonly cause: Error,
  ) {
    super(`${reason === 'tls' ? 'TLS handshake with the syslog receiver failed' : 'could not connect to the syslog receiver'}: ${cause.message}`);
  }
}

/** UDP datagrams sent but not yet handed to the kernel before write() asks the caller to wait. */
const UDP_IN_FLIGHT = 64;

/**
 * Connects to the receiver. TLS verifies the receiver's certificate against
 * `ca` (or the system's CAs) and its name or address: a certificate that does
 * not chain fails the handshake, and nothing is sent.
 */
export function connectSyslog(target: SyslogTarget, ca: string | null, timeoutMs = 10_000): Promise<SyslogConnection> {
  if (target.protocol === 'udp') return connectUdp(target);
  return new Promise((resolve, reject) => {
    let tcpUp = false;
    const socket =
      target.protocol === 'tls'
        ? tls.connect({ host: target.host, port: target.port, ca: ca ?? undefined, servername: net.isIP(target.host) ? undefined : target.host, minVersion: 'TLSv1.2' })
        : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs).unref();
    socket.once('connect', () => (tcpUp = true));
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ConnectError(target.protocol === 'tls' && tcpUp ? 'tls' : 'connect', err));
    };
    socket.once('error', fail);
    socket.once(target.protocol === 'tls' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(streamConnection(socket));
    });
  });
}

function streamConnection(socket: net.Socket): SyslogConnection {
  socket.setKeepAlive(true, 30_000);
  socket.setNoDelay(true);
  // The receiver sends nothing we need; read and drop, so TLS alerts and a close are seen.
  socket.on('data', () => {});
  let lostWith: Error | null = null;
  const lost = new Promise<Error>((resolve) => {
    const done = (err?: Error) => {
      lostWith ??= err ?? new Error('the receiver closed the connection');
      resolve(lostWith);
    };
    socket.on('error', done);
    socket.on('close', () => done());
    socket.on('end', () => {
      done();
      socket.destroy();
    });
  });
  return {
    write: (buf) => socket.write(buf),
    drained: () =>
      new Promise<void>((resolve, reject) => {
        if (lostWith) return reject(lostWith);
        if (!socket.writableNeedDrain) return resolve();
        const onDrain = () => {
          socket.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          socket.off('drain', onDrain);
          reject(lostWith ?? new Error('the connection closed'));
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      }),
    lost,
    destroy: () => socket.destroy(),
  };
}

function connectUdp(target: SyslogTarget): Promise<SyslogConnection> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(target.host) ? 'udp6' : 'udp4');
    const fail = (err: Error) => {
      socket.close();
      reject(new ConnectError('connect', err));
    };
    socket.once('error', fail);
    socket.connect(target.port, target.host, () => {
      socket.off('error', fail);
      let pending = 0;
      let waiter: (() => void) | null = null;
      let lostWith: Error | null = null;
      const lost = new Promise<Error>((res) =>
        socket.on('error', (err) => {
          lostWith ??= err;
          res(err);
        }),
      );
      resolve({
        // Datagrams carry one message each (RFC 5426): no framing.
        write: (buf) => {
          pending++;
          socket.send(buf, (err) => {
            pending--;
            if (err) socket.emit('error', err);
            if (pending === 0) waiter?.();
          });
          return pending < UDP_IN_FLIGHT;
        },
        drained: () =>
          lostWith
            ? Promise.reject(lostWith)
            : pending === 0
              ? Promise.resolve()
              : new Promise<void>((res, rej) => {
                  waiter = res;
                  void lost.then(rej);
                }),
        lost,
        destroy: () => {
          try {
            socket.close();
          } catch {
            // already closed
          }
        },
      });
    });
  });
}
