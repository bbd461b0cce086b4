// The job's OIDC token from the GitHub runner (what core.getIDToken does),
// over Node's own http/https: @actions/core's OidcClient brings
// @actions/http-client and undici, about 90% of the action's bundle and most
// of its start-up, for one GET. Same endpoint, same errors, and the token
// masked before anything else can print it.
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import tls from 'node:tls';
import * as core from '@actions/core';
import { proxyFor, tunnel } from './runner-proxy.js';
import { isConnectionFailure, withRetries, type RetryPolicy } from './retry.js';

async function get(url: URL, bearer: string): Promise<{ status: number; text: string }> {
  // A self-hosted runner's proxy, as @actions/http-client chose it.
  const proxy = proxyFor(url);
  const via = proxy && (await tunnel(proxy, url));
  const createConnection = via && (() => (url.protocol === 'http:' ? via : tls.connect({ socket: via, host: url.hostname, ...(isIP(url.hostname) ? {} : { servername: url.hostname }) })));
  return new Promise((resolve, reject) => {
    // A connection of its own (agent false, or the tunnel), closed with the answer: the runner is not Nexus.
    const req = (url.protocol === 'http:' ? http : https).get(url, { ...(createConnection ? { createConnection } : { agent: false }), timeout: 30_000, headers: { authorization: `Bearer ${bearer}`, accept: 'application/json', 'user-agent': 'actions/oidc-client' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
  });
}

/** The job's ID token for `audience` from ACTIONS_ID_TOKEN_REQUEST_URL (the `id-token: write` permission); a 5xx or a failed connection is tried again by `retry`. */
export async function getIDToken(audience: string, retry: RetryPolicy): Promise<string> {
  try {
    const base = process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
    if (!base) throw new Error('Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable');
    const bearer = process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
    if (!bearer) throw new Error('Unable to get ACTIONS_ID_TOKEN_REQUEST_TOKEN env variable');
    const url = new URL(`${base}${audience ? `&audience=${encodeURIComponent(audience)}` : ''}`);
    const r = await withRetries<{ status: number; text: string }>('ID token request', retry, async () => {
      try {
        const a = await get(url, bearer);
        if (a.status === 502 || a.status === 503 || a.status === 504) return { retry: 'later', why: `the runner answered ${a.status}`, last: () => { throw new Error(`Failed to get ID Token: HTTP ${a.status}`); } };
        return { done: a };
      } catch (err) {
        if (!isConnectionFailure(err)) throw new Error(`Failed to get ID Token: ${(err as Error).message}`);
        return { retry: 'later', why: `cannot reach the runner (${(err as NodeJS.ErrnoException).code})`, last: () => { throw new Error(`Failed to get ID Token: ${(err as Error).message}`); } };
      }
    });
    if (r.status !== 200) throw new Error(`Failed to get ID Token: HTTP ${r.status}`);
    let token: unknown;
    try {
      token = (JSON.parse(r.text) as { value?: unknown }).value;
    } catch {
      /* said below */
    }
    if (typeof token !== 'string' || !token) throw new Error('Response json body do not have ID Token field');
    core.setSecret(token);
    return token;
  } catch (err) {
    throw new Error(`Error message: ${(err as Error).message}`);
  }
}
