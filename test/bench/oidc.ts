import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, importJWK, jwtVerify, createLocalJWKSet, type JWK } from 'jose';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { spawnNexus } from './nexus-process.js';
import { call, type ClientCreds } from '../helpers/server.js';
import { load, startBare, type Load } from './mtls.js';
import type { BenchRow } from './report.js';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** One request on a fresh TLS connection (no keep-alive), resolving with its body. */
function freshRequest(port: number, ca: Buffer | string, method: string, p: string, body?: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path: p, ca, agent: false, headers: { ...headers, ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(t) : reject(new Error(`HTTP ${res.statusCode}: ${t}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A JWT exchanged for a token, on a fresh connection (the CI clients' first request). */
export async function exchangeToken(port: number, ca: Buffer | string, jwt: string): Promise<string> {
  return (JSON.parse(await freshRequest(port, ca, 'POST', '/v1/auth/token', JSON.stringify({ jwt }))) as { token: string }).token;
}

/**
 * The bench's issuer (the test IdP, ES256), a role reading ci/org/repo/*, a
 * secret there, and a minter of the IdP's JWTs for that repository (`jti`
 * makes each one new: a repeated JWT is answered by the verified-JWT cache).
 */
export async function oidcFixture(idp: TestIdp, mtlsPort: number, admin: ClientCreds, kid: string): Promise<(jti: string) => Promise<string>> {
  await call(mtlsPort, admin, 'PUT', '/v1/oidc/issuers/ci', { issuer: idp.url, audiences: ['nexus'], algorithms: ['ES256'], tenant_claims: ['repository'] });
  await call(mtlsPort, admin, 'PUT', '/v1/oidc/roles/bench', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/{{claims.repository}}/*'], permissions: ['read'] });
  await call(mtlsPort, admin, 'PUT', '/v1/secrets/ci/org/repo/read', { data: { username: 'svc', password: 'x'.repeat(200) } });
  const key = await importJWK(idp.server.issuer.keys.toJSON(true).find((k) => k.kid === kid) as unknown as JWK, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return (jti) =>
    new SignJWT({ repository: 'org/repo', ref: 'refs/heads/main', jti })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setIssuer(idp.url)
      .setAudience('nexus')
      .setSubject('repo:org/repo:ref:refs/heads/main')
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(key);
}

/** The OIDC port: reads with fresh and repeated JWTs and exchanged tokens, beside a bare TLS route and a bare jwtVerify loop. */
export async function oidcBench(scale: number): Promise<BenchRow[]> {
  const idp = await startIdp();
  const es = await idp.server.issuer.keys.generate('ES256', { kid: 'bench-es256' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-bench-oidc-'));
  const srv = await spawnNexus({ NEXUS_DATA_DIR: dir, NEXUS_OIDC_ADDR: '127.0.0.1:0', NEXUS_OIDC_SUBJECT_RPS: '1000000', NEXUS_LOG_LEVEL: 'warn' });
  const pki = path.join(dir, 'pki');
  const ca = fs.readFileSync(path.join(pki, 'ca.crt'));
  const admin = { ca: ca.toString(), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
  const bare = await startBare(pki, 'server-tls');
  const secs = Math.max(2, Math.round(3 * scale));
  try {
    const mint = await oidcFixture(idp, srv.port, admin, es.kid);
    const pool: string[] = [];
    for (let i = 0; i < 3000; i++) pool.push(await mint(`j${i}`));

    // Bare jwtVerify loop, in this process, same key type and checks.
    const jwks = createLocalJWKSet({ keys: idp.server.issuer.keys.toJSON(false) as unknown as JWK[] });
    const n = Math.round(3000 * scale);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await jwtVerify(pool[i % pool.length]!, jwks, { issuer: idp.url, audience: 'nexus', algorithms: ['ES256'] });
    const verifyRate = n / (Number(process.hrtime.bigint() - t0) / 1e9);

    const port = srv.oidcPort!;
    const url = `https://127.0.0.1:${port}/v1/secrets/ci/org/repo/read`;
    const tls = { ca };
    const exchanged = await exchangeToken(port, ca, pool[0]!);
    let next = 0;
    // Never-seen JWTs for the fresh row: a reused one would be answered by the verified-JWT cache.
    // Enough for two rounds at 1.5x the bare verify rate (the server cannot verify faster); a reuse is named in the table.
    const unique: string[] = [];
    for (let i = 0; i < Math.ceil(2 * secs * verifyRate * 1.5) + 2000; i++) unique.push(await mint(`j${100_000 + i}`));
    const fresh = () => ({ authorization: `Bearer ${unique[next++ % unique.length]}` });

    const bareUrl = `https://127.0.0.1:${bare.port}/`;
    const pid = srv.child.pid!;
    await load(bareUrl, tls, 1);
    await load(url, tls, 1, { headers: { authorization: `Bearer ${exchanged}` } });
    const best = (a: Load, b: Load) => (a.rate >= b.rate ? a : b);
    let bareRoute = await load(bareUrl, tls, secs, { pid: bare.pid });
    let freshJwt = await load(url, tls, secs, { nextHeaders: fresh, pid });
    let sameJwt = await load(url, tls, secs, { headers: { authorization: `Bearer ${pool[1]}` }, pid });
    let token = await load(url, tls, secs, { headers: { authorization: `Bearer ${exchanged}` }, pid });
    bareRoute = best(bareRoute, await load(bareUrl, tls, secs, { pid: bare.pid }));
    freshJwt = best(freshJwt, await load(url, tls, secs, { nextHeaders: fresh, pid }));
    sameJwt = best(sameJwt, await load(url, tls, secs, { headers: { authorization: `Bearer ${pool[1]}` }, pid }));
    token = best(token, await load(url, tls, secs, { headers: { authorization: `Bearer ${exchanged}` }, pid }));
    const vsBare = { bare: { rate: bareRoute.rate, cpuUs: bareRoute.cpuUs } };
    const combined = 1 / (1 / bareRoute.rate + 1 / verifyRate);

    // A CI job's whole fetch on fresh connections: exchange + read, versus two bare requests.
    const rounds = Math.round(200 * scale);
    const ciTimes: number[] = [];
    const bareTimes: number[] = [];
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      await freshRequest(bare.port, ca, 'GET', '/');
      await freshRequest(bare.port, ca, 'GET', '/');
      bareTimes.push(performance.now() - t);
      t = performance.now();
      const tok = JSON.parse(await freshRequest(port, ca, 'POST', '/v1/auth/token', JSON.stringify({ jwt: pool[(i + 7) % pool.length] }))).token as string;
      await freshRequest(port, ca, 'GET', '/v1/secrets/ci/org/repo/read', undefined, { authorization: `Bearer ${tok}` });
      ciTimes.push(performance.now() - t);
    }
    ciTimes.sort((a, b) => a - b);
    bareTimes.sort((a, b) => a - b);
    const ciP99 = pct(ciTimes, 0.99);
    const bareP99 = pct(bareTimes, 0.99);

    return [
      { scenario: 'jose jwtVerify ES256 loop (baseline)', unit: 'ops/s', rate: verifyRate },
      { scenario: 'OIDC: bare Koa route, server TLS (baseline)', unit: 'req/s', ...bareRoute },
      { scenario: `OIDC: read, fresh JWT per request${next > unique.length ? ' (JWTs REUSED: cached)' : ''}`, unit: 'req/s', ...freshJwt, ...vsBare, baseline: { name: 'bare route + verify', rate: combined }, aim: { minRatio: 0.9 } },
      { scenario: 'OIDC: read, one repeated JWT', unit: 'req/s', ...sameJwt, ...vsBare, baseline: { name: 'bare TLS route', rate: bareRoute.rate }, aim: { minRatio: 0.6 } },
      { scenario: 'OIDC: read, exchanged token', unit: 'req/s', ...token, ...vsBare, baseline: { name: 'bare TLS route', rate: bareRoute.rate }, aim: { minRatio: 0.6 } },
      {
        scenario: `OIDC: full CI fetch, fresh conns (exchange+read), ${rounds} runs`,
        unit: 'ops/s',
        rate: 1000 / (ciTimes.reduce((a, b) => a + b, 0) / ciTimes.length),
        p50: pct(ciTimes, 0.5),
        p99: ciP99,
        aim: { text: `p99 +${(ciP99 - bareP99).toFixed(2)} ms over 2 bare requests (p99 ${bareP99.toFixed(2)} ms); aim < +5 ms`, met: ciP99 - bareP99 < 5 },
      },
    ];
  } finally {
    bare.stop();
    srv.child.kill('SIGTERM');
    await srv.exited;
    await idp.stop();
  }
}
