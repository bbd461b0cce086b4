import { constants, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { TrustBundle } from '../auth/trust-bundle.js';
import type { ListenAddr, TlsFiles } from '../config/index.js';
import { clientErrorResponse } from '../http/errors.js';
import type { Logger } from '../log.js';
import type { LogBudget } from '../log-budget.js';
import type { LoadedTls } from './cert-expiry.js';
import { capConnectionsPerClient } from './conn-limits.js';

export interface Listener {
  readonly server: https.Server;
  address(): { host: string; port: number };
  /** Stop accepting, let in-flight requests finish (up to `graceMs`), then close. */
  close(graceMs: number): Promise<void>;
}

export interface ListenerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  /** Concurrent connections per client IP (IPv6: per /64). */
  maxConnectionsPerIp: number;
  /** A connection that has not finished its TLS handshake by then is destroyed. */
  handshakeTimeoutMs: number;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  maxHeaderSize: number;
}

export const DEFAULT_LIMITS: ListenerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
  maxConnectionsPerIp: 256,
  handshakeTimeoutMs: 5_000,
  minVersion: 'TLSv1.2',
  maxHeaderSize: 16 * 1024,
};

/**
 * TLS 1.3 suites (all AEAD), then TLS 1.2 with forward secrecy and AEAD only:
 * no CBC (Lucky13-style padding oracles), no static RSA key exchange.
 */
export const AEAD_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

/**
 * The bundle split into its certificates, each parsed: a bundle written
 * without a newline between two PEM blocks, or with a broken block, would
 * otherwise load silently as fewer CAs than it holds.
 */
export function readBundle(file: string): string[] {
  const pems = fs.readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new Error(`${file} holds no PEM certificate`);
  for (const pem of pems) new X509Certificate(pem);
  return pems;
}

function readTls(files: TlsFiles): { ca: string[]; cert: Buffer; key: Buffer } {
  return { ca: readBundle(files.ca), cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key) };
}

export async function listen(server: https.Server, addr: ListenAddr): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export function closeServer(server: https.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const hard = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(hard);
      resolve();
    });
    // Keep-alive connections with no request in flight would hold close() open.
    server.closeIdleConnections();
  });
}

/** Why a handshake failed, in OpenSSL's words, without anything the peer sent. */
function handshakeReason(err: Error, socket: tls.TLSSocket): string {
  // A certificate that fails verification is dropped by Node itself, which
  // then reports only "socket hang up"; the verdict is kept on the socket.
  if (socket.authorizationError) return `certificate not trusted: ${String(socket.authorizationError)}`;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake timeout';
  const reason = (err as Error & { reason?: string }).reason;
  return [code, reason ?? err.message.split('\n')[0]].filter(Boolean).join(': ');
}

/**
 * HTTPS that requires a client certificate chaining to the trust bundle at
 * the handshake. The bundle and the server SVID are re-read when their files
 * change (SVIDs rotate hourly) and swapped in with setSecureContext: open
 * connections keep their session, new handshakes use the new files.
 */
export async function startMtlsListener(opts: {
  /** For a listener without client certificates, `ca` may be the same bundle (it is not used to verify anyone). */
  files: TlsFiles;
  addr: ListenAddr;
  handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
  log: Logger;
  reloadIntervalMs?: number;
  limits?: Partial<ListenerLimits>;
  /** false: server-authenticated TLS only (the OIDC port, where a bearer token identifies the caller). */
  requireClientCert?: boolean;
  /** Kept equal to the bundle in use, for checks of connections opened under an older one. */
  trust?: TrustBundle;
  /** Where refused handshakes are logged (rate-limited); without it, at debug. */
  refusals?: LogBudget;
  /** Told what was put into service, at start and after each successful reload (certificate expiry gauges). */
  onLoad?: (tls: LoadedTls) => void;
}): Promise<Listener> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const clientAuth = opts.requireClientCert ?? true;
  const initial = readTls(opts.files);
  opts.trust?.replace(initial.ca);
  // Client identities: no session resumption, so every connection presents a
  // certificate that is verified now (an expired one is never readmitted).
  const contextOptions = { minVersion: limits.minVersion, ciphers: AEAD_CIPHERS, ...(clientAuth ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}) };
  const server = https.createServer(
    {
      ...initial,
      ...contextOptions,
      requestCert: clientAuth,
      rejectUnauthorized: clientAuth,
      // Node's default (120 s) lets a few thousand silent sockets hold a port.
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often those timeouts are enforced (Node's default, 30 s, lets a slowloris linger).
      connectionsCheckingInterval: 1000,
    },
    opts.handler,
  );
  // After createServer, which is what refuses a broken certificate or key (with its own words).
  opts.onLoad?.(initial);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Requests the HTTP parser refuses (oversized headers, timeouts, garbage) still get the error JSON.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable) socket.end(clientErrorResponse(err));
    else socket.destroy();
  });
  server.maxConnections = limits.maxConnections;
  capConnectionsPerClient(server, limits.maxConnectionsPerIp, opts.log);
  server.on('tlsClientError', (err, socket) => {
    const fields = { remote: socket.remoteAddress, reason: handshakeReason(err, socket), stage: 'handshake' };
    // A failed or timed-out handshake never keeps its socket (listening to this event must not change that).
    socket.destroy();
    if (opts.refusals) opts.refusals.info(fields);
    else opts.log.debug(fields, 'TLS handshake refused');
  });

  let pending: NodeJS.Timeout | null = null;
  const reload = () => {
    if (pending) clearTimeout(pending);
    // Files are often rewritten one by one: wait for the set to settle.
    pending = setTimeout(() => {
      pending = null;
      try {
        const material = readTls(opts.files);
        tls.createSecureContext(material); // throws on a key that does not match its cert
        server.setSecureContext({ ...material, ...contextOptions });
        opts.trust?.replace(material.ca);
        opts.onLoad?.(material);
        opts.log.info({ files: opts.files }, 'reloaded TLS trust bundle and server certificate');
      } catch (err) {
        opts.log.error({ err: { message: (err as Error).message } }, 'TLS files changed but could not be loaded; keeping the previous ones');
      }
    }, 100);
  };
  const interval = opts.reloadIntervalMs ?? 1000;
  const watched = [opts.files.ca, opts.files.cert, opts.files.key];
  for (const f of watched) fs.watchFile(f, { interval, persistent: false }, reload);

  await listen(server, opts.addr);
  return {
    server,
    address: () => {
      const a = server.address() as AddressInfo;
      return { host: a.address, port: a.port };
    },
    close: async (graceMs) => {
      for (const f of watched) fs.unwatchFile(f, reload);
      if (pending) clearTimeout(pending);
      await closeServer(server, graceMs);
    },
  };
}
