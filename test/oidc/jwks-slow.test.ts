import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { github, startIdp, type TestIdp } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

/** A JWKS endpoint in front of the IdP's that can be made to hang: held requests stay open until released. */
async function slowJwks(idp: TestIdp) {
  let hang = false;
  let fetches = 0;
  const held = new Set<http.ServerResponse>();
  const server = http.createServer(async (_req, res) => {
    fetches++;
    if (hang) {
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    const body = await (await fetch(`${idp.url}/jwks`)).text();
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
    hang: (on: boolean) => (hang = on),
    /** Fetches still waiting for an answer (the client has not given up on them). */
    held: () => held.size,
    fetches: () => fetches,
    release: () => {
      for (const res of held) res.destroy();
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('JWKS refresh never stalls known keys', function () {
  this.timeout(40_000);
  let e: OidcEnv;
  let idp: TestIdp;
  let jwks: Awaited<ReturnType<typeof slowJwks>>;

  before(async () => {
    // Keys go stale fast; a fetch may hang for 5 s before it is given up.
    e = await startOidcEnv({}, { maxAgeMs: 300, cooldownMs: 300, timeoutMs: 5_000 });
    idp = await startIdp();
    jwks = await slowJwks(idp);
    expect((await e.admin('PUT', '/v1/oidc/issuers/slow', { issuer: idp.url, audiences: ['nexus'], jwks_uri: jwks.url, tenant_claims: ['repository'] })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/oidc/roles/slow', { issuer: 'slow', bound_claims: { repository: 'org/slow' }, paths: ['slow/**'], permissions: ['read'] })).status).to.equal(201);
    expect((await e.admin('PUT', '/v1/secrets/slow/db', { data: { v: 'x' } })).status).to.equal(201);
  });
  after(async () => {
    jwks.release();
    await jwks.stop();
    await e.stop();
    await idp.stop();
  });

  // A distinct JWT each time (jti), so its signature is checked against the keys, not found in the verified-JWT cache.
  let minted = 0;
  const read = async (opts: { kid?: string } = {}) => e.oidc(await idp.token(github('org/slow', 'refs/heads/main', { jti: `slow-${++minted}` }), opts), 'GET', '/v1/secrets/slow/db');

  it('a token with a known kid is verified from cached keys while a refresh hangs', async () => {
    expect((await read()).status).to.equal(200);
    jwks.hang(true);
    try {
      const before = jwks.fetches();
      // Keys are stale now: the next request starts a refresh, which hangs.
      await new Promise((r) => setTimeout(r, 400));
      for (let i = 0; i < 3; i++) {
        const r = await read();
        expect(r.status, r.text).to.equal(200);
        // Answered while the refresh it started is still waiting on the IdP.
        expect(jwks.held(), 'the JWKS fetch is still in flight').to.be.greaterThan(0);
      }
      expect(jwks.fetches()).to.equal(before + 1);
    } finally {
      jwks.hang(false);
      jwks.release();
    }
  });

  it('an unknown kid waits for the fetch (bounded), then is refused if the key is not there', async () => {
    await idp.server.issuer.keys.generate('RS256', { kid: 'key-2' });
    jwks.hang(true);
    try {
      await new Promise((r) => setTimeout(r, 400));
      const r = await read({ kid: 'key-2' });
      expect(r.status).to.equal(401);
    } finally {
      jwks.hang(false);
      jwks.release();
    }
    // Once the IdP answers again, the new key is found.
    await new Promise((r) => setTimeout(r, 400));
    expect((await read({ kid: 'key-2' })).status).to.equal(200);
  });
});
