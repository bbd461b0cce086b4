// How Pilot reaches Nexus: its own SVID (files, or the SPIFFE Workload API),
// the server authorized by SPIFFE ID rather than host name, and one request.
import type { Command } from 'commander';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseSpiffeId } from '../../nexus/auth/spiffe-id.js';
import { httpsText, type TextReply } from './https-text.js';
import { authorizeServer, expectedServerId as serverIdFor, ServerIdConfigError, ServerIdentityError, svidId } from '../../nexus/spiffe/server-id.js';

/** The server or the network refused or failed: exit 1. */
export class PilotError extends Error {}

/** The command line or the environment is wrong: exit 2. */
export class UsageError extends Error {}

export function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** Pilot's own SVID and the trust bundle it checks the server against. */
export interface Credentials {
  cert: string;
  key: string;
  ca: string;
  /** The SPIFFE ID in `cert`. */
  spiffeId: string;
  /** Where the SVID came from: file paths, or the Workload API socket. */
  source: string;
  notAfter: Date;
}

function readPem(file: string, what: string, envName: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new PilotError(`${what} not found at ${file} (set ${envName}, or start Nexus once to create the dev PKI)`);
  }
}

function credentials(cert: string, key: string, ca: string, source: string): Credentials {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new PilotError(`the client certificate from ${source} is not a PEM certificate`);
  }
  const id = svidId(leaf.subjectAltName);
  if (typeof id !== 'string') throw new PilotError(`the client certificate from ${source} is not an X509-SVID: ${id.invalid}`);
  return { cert, key, ca, spiffeId: id, source, notAfter: new Date(leaf.validTo) };
}

/** The Workload API client: beside the standalone pilot.cjs it is workload-api.mjs, which may not have been copied. */
async function workloadApi(socket: string): Promise<typeof import('../../nexus/spiffe/workload-api.js')> {
  try {
    return await import('../../nexus/spiffe/workload-api.js');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /workload-api/.test((err as Error).message)) {
      // A single executable (npm run build:sea) runs its one script and imports nothing beside itself.
      const sea = await import('node:sea').then((m) => m.isSea(), () => false);
      const where = sea ? 'the standalone pilot executable cannot load it: use pilot.cjs with' : 'put';
      throw new PilotError(
        `cannot use the SPIFFE Workload API at ${socket}: ${where} workload-api.mjs and workload.proto beside pilot.cjs (GET /v1/tools/workload-api.mjs and /v1/tools/workload.proto on Nexus's OIDC port, or scripts/ci/dist)`,
      );
    }
    throw err;
  }
}

/**
 * SPIFFE_ENDPOINT_SOCKET (or --spiffe-socket): the SVID and bundle from the
 * Workload API; otherwise NEXUS_CERT, NEXUS_KEY, NEXUS_CA, defaulting to the
 * dev PKI. gRPC is loaded only when a socket is used.
 */
export async function loadCredentials(spiffeSocket: string | undefined): Promise<Credentials> {
  const socket = spiffeSocket ?? env('SPIFFE_ENDPOINT_SOCKET');
  if (socket) {
    const { fetchX509Svid, WorkloadApiError } = await workloadApi(socket);
    try {
      const svid = await fetchX509Svid(socket);
      return credentials(svid.certPem, svid.keyPem, svid.bundlePem, `the SPIFFE Workload API at ${socket}`);
    } catch (err) {
      if (err instanceof WorkloadApiError) throw new PilotError(err.message);
      throw err;
    }
  }
  const pki = path.resolve(env('NEXUS_DATA_DIR') ?? '.nexus', 'pki');
  const certFile = env('NEXUS_CERT') ?? path.join(pki, 'pilot.crt');
  const keyFile = env('NEXUS_KEY') ?? path.join(pki, 'pilot.key');
  const caFile = env('NEXUS_CA') ?? path.join(pki, 'ca.crt');
  return credentials(readPem(certFile, 'client certificate', 'NEXUS_CERT'), readPem(keyFile, 'client key', 'NEXUS_KEY'), readPem(caFile, 'CA bundle', 'NEXUS_CA'), certFile);
}

/** NEXUS_SERVER_SPIFFE_ID, by default spiffe://<the client's trust domain>/nexus. */
export function expectedServerId(client: Credentials): string {
  // The client's ID was checked when its SVID was loaded.
  const td = (parseSpiffeId(client.spiffeId) as { trustDomain: string }).trustDomain;
  try {
    return serverIdFor(td, env('NEXUS_SERVER_SPIFFE_ID'));
  } catch (err) {
    if (err instanceof ServerIdConfigError) throw new UsageError(err.message);
    throw err;
  }
}

export interface Conn {
  base: URL;
  agent: https.Agent;
  client: Credentials;
  serverId: string;
}

export function serverUrl(): URL {
  let base: URL;
  try {
    base = new URL(env('NEXUS_ADDR') ?? 'https://127.0.0.1:8553');
  } catch {
    throw new UsageError(`NEXUS_ADDR is not a URL: ${env('NEXUS_ADDR')}`);
  }
  if (base.protocol !== 'https:') throw new UsageError('NEXUS_ADDR must be an https:// URL');
  return base;
}

export async function connect(spiffeSocket: string | undefined): Promise<Conn> {
  const base = serverUrl();
  const client = await loadCredentials(spiffeSocket);
  const serverId = expectedServerId(client);
  return {
    base,
    client,
    serverId,
    agent: new https.Agent({ cert: client.cert, key: client.key, ca: client.ca, keepAlive: false, checkServerIdentity: authorizeServer(serverId, base.origin) }),
  };
}

export interface Reply {
  status: number;
  body: unknown;
}

export async function request(conn: Conn, method: string, urlPath: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const where = conn.base.origin;
  let reply: TextReply;
  try {
    // The path goes out exactly as written: a URL object would resolve `..`
    // and quietly ask for another secret than the one the user named.
    reply = await httpsText(
      null,
      {
        host: conn.base.hostname.replace(/^\[|\]$/g, ''),
        port: conn.base.port || 443,
        path: urlPath,
        method,
        agent: conn.agent,
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {},
      },
      payload,
      { ms: 15_000, error: () => new PilotError(`no answer from Nexus at ${where} within 15 s`) },
    );
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // Our own timeout, or the server refused by SPIFFE ID (authorizeServer): the message says it all.
    if (err instanceof PilotError || err instanceof ServerIdentityError) throw err;
    if (err.code === 'ECONNREFUSED') throw new PilotError(`cannot reach Nexus at ${where}: connection refused (is it running? set NEXUS_ADDR)`);
    if (err.code === 'ENOTFOUND') throw new PilotError(`cannot reach Nexus at ${where}: unknown host`);
    if (err.code === 'ECONNRESET' || /alert|certificate|handshake|SSL/i.test(err.message)) {
      throw new PilotError(`TLS handshake with ${where} failed: ${err.message} (check NEXUS_CERT, NEXUS_KEY, NEXUS_CA or the Workload API's bundle)`);
    }
    throw new PilotError(`request to ${where} failed: ${err.message}`);
  }
  let parsed: unknown = null;
  try {
    parsed = reply.text ? JSON.parse(reply.text) : null;
  } catch {
    parsed = reply.text;
  }
  // The OIDC port asks for no client certificate and answers every SVID
  // with "token not accepted": say which port this is rather than that.
  if (reply.status === 401 && urlPath !== '/openapi.json' && (await portTitle(conn)) === OIDC_PORT_TITLE) {
    throw new PilotError(`${where} is Nexus's OIDC port (CI tokens only); Pilot needs the mTLS port (NEXUS_ADDR, by default https://127.0.0.1:8553)`);
  }
  return { status: reply.status, body: parsed };
}

const OIDC_PORT_TITLE = 'Nexus OIDC port';

/** The title of the OpenAPI document the port serves (public on the OIDC port), or null. */
async function portTitle(conn: Conn): Promise<string | null> {
  try {
    const r = await request(conn, 'GET', '/openapi.json');
    const title = (r.body as { info?: { title?: unknown } } | null)?.info?.title;
    return typeof title === 'string' ? title : null;
  } catch {
    return null;
  }
}

/** What a command module outside pilot-commands.ts gets from it: a request that throws on refusal, and --json-aware output. */
export interface PilotIo {
  get<T>(cmd: Command, method: string, urlPath: string, body?: unknown): Promise<T>;
  out(cmd: Command, value: unknown, human: () => string): void;
}
