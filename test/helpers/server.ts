import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { AuthPlugin } from '../../nexus/auth/plugin.js';
import type { Env } from '../../nexus/config/index.js';
import { silentLogger, type Logger } from '../../nexus/log.js';
import { createCA, issueCert, loadIssuer, type Issuer, type LeafSpec } from '../../nexus/pki/x509.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { httpsText } from '../../scripts/lib/https-text.js';
import { tempDir, testConfig } from './env.js';

export interface ClientCreds {
  cert: string;
  key: string;
  ca: string;
}

export interface TestServer {
  dir: string;
  server: RunningServer;
  port: number;
  ca: Issuer;
  caPem: string;
  /** The dev PKI's pilot SVID (built-in admin). */
  admin: ClientCreds;
  /** Issue a client certificate from the dev CA (or `issuer`). */
  issue(spec: LeafSpec, issuer?: Issuer): Promise<ClientCreds>;
  svid(spiffeId: string): Promise<ClientCreds>;
  stop(): Promise<void>;
}

export async function startTestServer(extra: Env = {}, opts: { log?: Logger; tlsReloadIntervalMs?: number; plugins?: AuthPlugin[]; dir?: string } = {}): Promise<TestServer> {
  const dir = opts.dir ?? tempDir('nexus-srv');
  const config = testConfig(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', ...extra });
  const server = await startServer(config, opts.log ?? silentLogger(), { tlsReloadIntervalMs: opts.tlsReloadIntervalMs ?? 100, plugins: opts.plugins ?? [] });
  const pki = path.join(dir, 'pki');
  const caPem = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
  const ca = await loadIssuer(caPem, fs.readFileSync(path.join(pki, 'ca.key'), 'utf8'));
  const issue = async (spec: LeafSpec, issuer: Issuer = ca): Promise<ClientCreds> => {
    const leaf = await issueCert(issuer, spec);
    return { cert: leaf.certPem, key: leaf.keyPem, ca: caPem };
  };
  return {
    dir,
    server,
    port: server.mtls.address().port,
    ca,
    caPem,
    admin: { cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8'), ca: caPem },
    issue,
    svid: (id) => issue({ uris: [id] }),
    stop: () => server.stop(2000),
  };
}

export { createCA };

export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

/**
 * One HTTPS request with the raw path as given (no URL normalisation, so
 * `..` and `%2e` reach the server as written).
 */
export function call(port: number, creds: Partial<ClientCreds>, method: string, rawPath: string, body?: unknown, opts: { agent?: https.Agent; headers?: Record<string, string>; localAddress?: string } = {}): Promise<Res> {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return httpsText(
    null,
    {
      host: '127.0.0.1',
      port,
      method,
      path: rawPath,
      ca: creds.ca,
      cert: creds.cert,
      key: creds.key,
      agent: opts.agent ?? false,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      headers: { ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}), ...opts.headers },
    },
    payload,
  ).then(({ status, headers, text }) => {
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status, headers, body: parsed, text };
  });
}

/** Resolves with the TLS/connection error if the request is refused at the handshake, or the response. */
export async function callOrRefused(port: number, creds: Partial<ClientCreds>, method: string, rawPath: string): Promise<Res | Error> {
  try {
    return await call(port, creds, method, rawPath);
  } catch (err) {
    return err as Error;
  }
}
