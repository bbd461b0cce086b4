import fs from 'node:fs';
import https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { httpsText, type TextReply } from '../lib/https-text.js';
import { DEFAULT_RETRY, isConnectionFailure, retryAfterS, withRetries, type RetryPolicy } from './retry.js';
import { trace, tracing } from './trace.js';

/**
 * A small HTTPS client for Nexus: on the OIDC port, token exchange and secret
 * reads; on the mTLS port (an X509-SVID as client certificate), secret reads.
 * No dependencies, so the action's bundle stays small and starts fast.
 */

export interface TlsSetup {
  /** PEM text of the CAs to trust (a private CA, or a SPIFFE trust bundle); omitted: the system's public CAs. */
  ca?: string;
  /** The client's X509-SVID (PEM, leaf first) and its key: the credential on the mTLS port. */
  svid?: { cert: string; key: string };
  /**
   * Replaces host-name verification: returns why the server's (already
   * chain-verified) certificate is not the one expected. Given by the caller
   * (server-trust.ts for a CA, spiffe.ts for the Workload API): this module
   * only carries the decision into TLS.
   */
  authorizeServer?: (host: string, cert: PeerCertificate) => Error | undefined;
}

/** The one place nexus-ci and the action decide how to trust the server, and how to be known by it. */
export function tlsOptions(setup: TlsSetup): https.AgentOptions {
  const authorize = setup.authorizeServer;
  return {
    ...(setup.ca ? { ca: setup.ca } : {}),
    ...(setup.svid ? { cert: setup.svid.cert, key: setup.svid.key } : {}),
    // An HttpError, so that the refusal reaches the job log as written rather than as "cannot reach".
    ...(authorize
      ? {
          checkServerIdentity: (host: string, cert: PeerCertificate) => {
            const why = authorize(host, cert);
            return why && new HttpError(why.message, 0);
          },
        }
      : {}),
  };
}

/** A CA given as PEM text or as the path of a PEM file (what CI variables hold either way). */
export function readCa(value: string | undefined): string | undefined {
  if (!value || !value.trim()) return undefined;
  if (value.includes('-----BEGIN')) return value;
  try {
    return fs.readFileSync(value.trim(), 'utf8');
  } catch (err) {
    throw new HttpError(`cannot read the CA file ${value.trim()}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 0);
  }
}

/** `GET /v1/db/creds/{role}`'s answer (ARCHITECTURE.md, "Job-scoped credentials"). */
export interface DbCreds {
  username: string;
  password: string;
  lease_id: string;
  lease_duration: number;
}

export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface NexusClient {
  exchange(jwt: string, role?: string): Promise<{ token: string; expires_in: number }>;
  /** With `token` (OIDC port) as Bearer; without, the TLS client certificate (mTLS port) is the credential. */
  read(path: string, token?: string): Promise<Record<string, string>>;
  /**
   * A fresh database user of credential role `role` (a lease), with `token`
   * (OIDC port) or the TLS client certificate (mTLS port): the contract's
   * `GET /v1/db/creds/{role}`.
   */
  dbCreds(role: string, token?: string): Promise<DbCreds>;
  /** Gives an exchanged token back (revoke-self), and the server its leases; it is refused everywhere from then on. */
  revoke(token: string): Promise<void>;
  /** A page of the secrets the token may read under `prefix`, with their data (OIDC port: `GET /v1/secrets?include=data`). */
  listData(prefix: string, token: string, cursor: string | null): Promise<{ secrets: Array<{ path: string; version: number; data: Record<string, string> }>; next_cursor: string | null }>;
  /** A page of the paths the client certificate may list under `prefix` (mTLS port, which has no list with data). */
  list(prefix: string, cursor: string | null): Promise<{ paths: string[]; next_cursor: string | null }>;
  close(): void;
}

/** Why the server refused, in words a CI log reader acts on (never a value). */
function reasonOf(status: number, body: string, headers: Record<string, unknown>, svid: boolean): string {
  let message = '';
  try {
    message = (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? '';
  } catch {
    /* not our JSON: a proxy or another server */
  }
  if (status === 401) return svid ? 'SVID refused (401): check its trust domain (NEXUS_TRUST_DOMAIN) and expiry' : 'token refused (401): check the issuer, audience and token lifetime';
  if (status === 403) return `denied (403)${message ? `: ${message}` : ''}`;
  if (status === 404) return 'not found (404)';
  if (status === 429) return `rate limited (429), retry after ${String(headers['retry-after'] ?? '?')} s`;
  return `HTTP ${status}${message ? `: ${message}` : ''}`;
}

/** What the server says went wrong, for the retry decision: its error code, if the body is ours. */
function errorCode(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** NEXUS_CI_TRACE: when each connection's TCP and TLS handshakes end (a reused connection shows none). */
function traceConnections(agent: https.Agent): void {
  const create = agent.createConnection.bind(agent) as (...a: unknown[]) => import('node:net').Socket;
  (agent as unknown as { createConnection: typeof create }).createConnection = (...a) => {
    trace('connecting');
    const s = create(...a);
    s.once('connect', () => trace('TCP connected'));
    s.once('secureConnect', () => trace('TLS handshake done'));
    return s;
  };
}

export function nexusClient(url: string, tls: TlsSetup, retry: RetryPolicy = { ...DEFAULT_RETRY, log: () => {} }): NexusClient {
  const base = new URL(url.endsWith('/') ? url : `${url}/`);
  if (base.protocol !== 'https:') throw new HttpError(`the Nexus URL must be https:// (got ${base.protocol})`, 0);
  // One keep-alive connection for the exchange and every read.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...tlsOptions(tls) });
  if (tracing) traceConnections(agent);
  const unreachable = (err: NodeJS.ErrnoException): HttpError => {
    if (err instanceof HttpError) return err;
    // Only the mTLS port asks for a client certificate: say so rather than pass on OpenSSL's alert.
    if (!tls.svid && err.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
      return new HttpError(`${base.origin} is Nexus's mTLS port (it asks for a client certificate); a CI token needs the OIDC port: set NEXUS_URL (--url, the action's url) to it, by default port 8554`, 0);
    }
    return new HttpError(`cannot reach ${base.origin}: ${err.message}`, 0);
  };
  const once = (method: string, path: string, headers: Record<string, string>, body?: string) => {
    trace(`${method} ${path.split('?')[0]} sent`);
    return httpsText(
      new URL(path.replace(/^\//, ''), base),
      { method, agent, headers: { ...headers, ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) } },
      body,
      { ms: 30_000, error: () => new Error('no answer within 30 s') },
    ).then((r) => (trace(`${method} ${path.split('?')[0]} answered ${r.status}`), r));
  };
  // Every request: a 429 or 503, a connection that failed before an answer, or (once) a token not yet valid by the server's clock is tried again.
  const call = (method: string, path: string, headers: Record<string, string>, body?: string): Promise<TextReply> =>
    withRetries<TextReply>(`${method} ${path.split('?')[0]}`, retry, async () => {
      let r: TextReply;
      try {
        r = await once(method, path, headers, body);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (!isConnectionFailure(e)) throw unreachable(e);
        return { retry: 'later', why: `cannot reach ${base.origin} (${e.code})`, last: () => { throw unreachable(e); } };
      }
      const afterS = retryAfterS(r.headers['retry-after']);
      const last = (): never => {
        throw new HttpError(reasonOf(r.status, r.text, r.headers, tls.svid !== undefined && !headers.authorization), r.status);
      };
      if (r.status === 429 || r.status === 503) return { retry: 'later', why: r.status === 429 ? 'rate limited (429)' : 'unavailable (503)', ...(afterS !== undefined ? { afterS } : {}), last };
      if (r.status === 401 && afterS !== undefined && errorCode(r.text) === 'token_not_yet_valid') return { retry: 'skew', why: "the job's token is not yet valid by the server's clock (401 token_not_yet_valid)", afterS, last };
      return { done: r };
    });
  return {
    async exchange(jwt, role) {
      const r = await call('POST', '/v1/auth/token', role ? { 'x-nexus-role': role } : {}, JSON.stringify({ jwt }));
      if (r.status !== 200) throw new HttpError(reasonOf(r.status, r.text, r.headers, false), r.status);
      return JSON.parse(r.text) as { token: string; expires_in: number };
    },
    async read(path, token) {
      // Both ports answer {"path","version","data","created_at"}.
      const r = await call('GET', `/v1/secrets/${path}`, token === undefined ? {} : { authorization: `Bearer ${token}` });
      if (r.status !== 200) throw new HttpError(reasonOf(r.status, r.text, r.headers, token === undefined), r.status);
      return (JSON.parse(r.text) as { data: Record<string, string> }).data;
    },
    async dbCreds(role, token) {
      const r = await call('GET', `/v1/db/creds/${encodeURIComponent(role)}`, token === undefined ? {} : { authorization: `Bearer ${token}` });
      if (r.status !== 200) throw new HttpError(reasonOf(r.status, r.text, r.headers, token === undefined), r.status);
      let body: Partial<Record<keyof DbCreds, unknown>> = {};
      try {
        body = JSON.parse(r.text) as typeof body;
      } catch {
        /* said below */
      }
      const { username, password, lease_id, lease_duration } = body ?? {};
      if (typeof username !== 'string' || typeof password !== 'string' || typeof lease_id !== 'string' || !username || !password || !lease_id) {
        throw new HttpError('the answer has no username, password and lease_id (is this server older than the db/creds route?)', r.status);
      }
      return { username, password, lease_id, lease_duration: typeof lease_duration === 'number' ? lease_duration : 0 };
    },
    async revoke(token) {
      const r = await call('POST', '/v1/auth/token/revoke-self', { authorization: `Bearer ${token}` });
      if (r.status !== 204) throw new HttpError(reasonOf(r.status, r.text, r.headers, false), r.status);
    },
    async listData(prefix, token, cursor) {
      const r = await call('GET', `/v1/secrets?prefix=${encodeURIComponent(prefix)}&include=data&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { authorization: `Bearer ${token}` });
      if (r.status !== 200) throw new HttpError(reasonOf(r.status, r.text, r.headers, false), r.status);
      const page = JSON.parse(r.text) as { secrets?: unknown; next_cursor?: string | null };
      if (!Array.isArray(page.secrets)) throw new HttpError('the answer has no secrets (is this server older than the subtree fetch, GET /v1/secrets?include=data?)', r.status);
      return { secrets: page.secrets as Array<{ path: string; version: number; data: Record<string, string> }>, next_cursor: page.next_cursor ?? null };
    },
    async list(prefix, cursor) {
      const r = await call('GET', `/v1/secrets?prefix=${encodeURIComponent(prefix)}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {});
      if (r.status !== 200) throw new HttpError(reasonOf(r.status, r.text, r.headers, true), r.status);
      return JSON.parse(r.text) as { paths: string[]; next_cursor: string | null };
    },
    close: () => agent.destroy(),
  };
}
