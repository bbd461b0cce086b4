import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { issueCert } from '../../nexus/pki/x509.js';
import type { OidcEnv } from './oidc.js';

export interface TokenTap {
  /** The tap's URL: give it to the clients as Nexus's OIDC port. */
  url: string;
  /** Every Bearer token that went through, in order (the tests' way to hold the job's token; the clients never print it). */
  tokens: string[];
  /** Requests whose path starts with `prefix` from now on wait for release() before they go on to Nexus. */
  hold(prefix: string): void;
  /** Requests whose path starts with `prefix` get this answer instead of Nexus's (a server outside the contract). */
  answer(prefix: string, status: number, body: unknown): void;
  /** Held requests waiting. */
  held(): number;
  /** Sends every waiting request on to Nexus and stops holding. */
  release(): void;
  stop(): Promise<void>;
}

/**
 * A pass-through in front of the real OIDC port: every request goes to Nexus
 * and every answer is Nexus's own. It only notes the Bearer tokens (the job's
 * exchanged token, which the clients keep to themselves) and can hold
 * requests for a path (a test's moment inside the client's fetch), or answer
 * one path itself (what Nexus never sends, for the clients' refusals). Its
 * certificate is Nexus's SVID shape from the same dev CA, so the clients
 * trust it as they trust Nexus.
 */
export async function startTokenTap(env: OidcEnv): Promise<TokenTap> {
  const leaf = await issueCert(env.t.ca, { uris: [`spiffe://${env.t.server.core.config.trustDomain}/nexus`], ips: ['127.0.0.1'] });
  const tokens: string[] = [];
  const upstream = new https.Agent({ ca: env.t.caPem, checkServerIdentity: () => undefined });
  const forward = (method: string, url: string, headers: Record<string, string | string[] | undefined>, body: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: env.port, method, path: url, headers: { ...headers, host: `127.0.0.1:${env.port}` }, agent: upstream }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  let holding: string | undefined;
  let waiting: Array<() => void> = [];
  const answers = new Map<string, { status: number; body: unknown }>();
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
        if (bearer && !tokens.includes(bearer)) tokens.push(bearer);
        if (holding !== undefined && req.url!.startsWith(holding)) await new Promise<void>((r) => waiting.push(r));
        const own = [...answers].find(([prefix]) => req.url!.startsWith(prefix))?.[1];
        if (own) return void res.writeHead(own.status, { 'content-type': 'application/json' }).end(JSON.stringify(own.body));
        const r = await forward(req.method!, req.url!, req.headers, Buffer.concat(chunks));
        const headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => !['connection', 'keep-alive', 'transfer-encoding'].includes(k))) as Record<string, string>;
        res.writeHead(r.status, headers).end(r.body);
      })().catch((err: Error) => res.writeHead(502).end(err.message));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tokens,
    hold: (prefix) => (holding = prefix),
    answer: (prefix, status, body) => void answers.set(prefix, { status, body }),
    held: () => waiting.length,
    release: () => {
      holding = undefined;
      for (const r of waiting) r();
      waiting = [];
    },
    stop: () =>
      new Promise((r) => {
        upstream.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
