import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { issueCert } from '../../nexus/pki/x509.js';
import type { OidcEnv } from './oidc.js';

/** A lease the stand-in minted: never more than the contract's response carries, and the token it was minted with. */
export interface StandInLease {
  role: string;
  username: string;
  password: string;
  lease_id: string;
  token: string;
}

export interface DbCredsStandIn {
  /** The stand-in's URL: give it to the clients as Nexus's OIDC port. */
  url: string;
  /** Every Bearer token that reached it, in order (the tests' way to hold the job's token). */
  tokens: string[];
  leases: StandInLease[];
  /** Requests for role `held` that have arrived and wait for release(). */
  held(): number;
  /** Lets every waiting `held` request be answered (as an ordinary lease). */
  release(): void;
  stop(): Promise<void>;
}

/**
 * A stand-in for the OIDC port's `GET /v1/db/creds/{role}` (contract:
 * ARCHITECTURE.md "Job-scoped credentials") in front of a real Nexus, until
 * the server's routes land: it answers that route in the contract's shape,
 * minting only for a token the real server still accepts (GET /v1/whoami),
 * and passes every other request through to the real OIDC port, so exchange,
 * reads and revoke-self are Nexus's own. Its certificate is Nexus's SVID
 * shape from the same dev CA, so the clients trust it as they trust Nexus.
 * Roles: `missing` answers 404, `denied` 403, `garbled` a body outside the contract,
 * `held` waits for release() (a test's moment inside the client's fetch).
 */
export async function startDbCredsStandIn(env: OidcEnv): Promise<DbCredsStandIn> {
  const leaf = await issueCert(env.t.ca, { uris: [`spiffe://${env.t.server.core.config.trustDomain}/nexus`], ips: ['127.0.0.1'] });
  const tokens: string[] = [];
  const leases: StandInLease[] = [];
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
  let n = 0;
  let waiting: Array<() => void> = [];
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
        if (bearer && !tokens.includes(bearer)) tokens.push(bearer);
        const creds = /^\/v1\/db\/creds\/([^/?]+)(\?.*)?$/.exec(req.url ?? '');
        if (creds && req.method === 'GET') {
          const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
          const who = bearer ? await forward('GET', '/v1/whoami', { authorization: `Bearer ${bearer}` }, Buffer.alloc(0)) : { status: 401 };
          if (who.status !== 200) return json(who.status, { error: { code: 'unauthorized', message: 'authentication required' } });
          const role = decodeURIComponent(creds[1]!);
          if (role === 'missing') return json(404, { error: { code: 'not_found', message: 'no such credential role' } });
          if (role === 'denied') return json(403, { error: { code: 'forbidden', message: `no read on db/creds/${role}` } });
          if (role === 'garbled') return json(200, { user: 'x' });
          if (role === 'held') await new Promise<void>((r) => waiting.push(r));
          n++;
          const lease: StandInLease = { role, username: `v-${role}-${n}`, password: `pw-${randomBytes(12).toString('base64url')}`, lease_id: `db/creds/${role}/${randomBytes(8).toString('hex')}`, token: bearer! };
          leases.push(lease);
          return json(200, { username: lease.username, password: lease.password, lease_id: lease.lease_id, lease_duration: 900, renewable: true });
        }
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
    leases,
    held: () => waiting.length,
    release: () => {
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
