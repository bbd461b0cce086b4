import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { parseSeed } from '../../plugins/oidc/seed.js';
import { TENANT_CLAIM_PRESETS } from '../../plugins/oidc/schema.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { github, startIdp, type TestIdp } from '../helpers/idp.js';
import { GITHUB_TENANT_CLAIMS, startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { createTestDatabase, requirePg, type TestDatabase } from '../helpers/pg.js';
import { call, startTestServer, type Res } from '../helpers/server.js';

// Issue 24 item 5: an issuer's `rate_limit` overrides NEXUS_OIDC_SUBJECT_RPS
// (per tenant) and NEXUS_OIDC_FAILED_AUTH_RPS (per client IP) for its traffic.

/** The same JWT with its signature spoilt: its unverified `iss` still names the issuer. */
function spoilt(jwt: string): string {
  const [h, p, s] = jwt.split('.');
  const sig = Buffer.from(s!, 'base64url');
  sig[0]! ^= 0xff;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

const ciIssuer = (e: OidcEnv, extra: Record<string, unknown> = {}) => ({
  issuer: e.idp.url,
  audiences: ['nexus'],
  algorithms: ['RS256', 'ES256'],
  tenant_claims: [...GITHUB_TENANT_CLAIMS, ...TENANT_CLAIM_PRESETS.gitlab],
  ...extra,
});

const role = (issuer: string, repository: string) => ({ issuer, bound_claims: { repository }, paths: ['ci/**'], permissions: ['read'] });

describe('OIDC issuer rate_limit: per-issuer rates over the global ones', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  let idp2: TestIdp;
  before(async () => {
    // Global: 100 req/s per tenant (default), 0.4 failures/s per IP (burst 2).
    // Low per-issuer rates too (a token every 2.5 s): a loaded machine's slow requests cannot refill a budget mid-test.
    e = await startOidcEnv({ NEXUS_OIDC_FAILED_AUTH_RPS: '0.4' });
    idp2 = await startIdp();
    const put = await e.admin('PUT', '/v1/oidc/issuers/other', { issuer: idp2.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: GITHUB_TENANT_CLAIMS });
    expect(put.status, put.text).to.equal(201);
    for (const [name, body] of [
      ['ci-a', role('ci', 'org/a')],
      ['ci-b', role('ci', 'org/b')],
      ['other-a', role('other', 'org/a')],
    ] as const) {
      const r = await e.admin('PUT', `/v1/oidc/roles/${name}`, body);
      expect(r.status, r.text).to.equal(201);
    }
  });
  after(async () => {
    await e?.stop();
    await idp2?.stop();
  });

  const whoami = (token: string) => e.oidc(token, 'GET', '/v1/whoami');

  it('per_tenant_rps: one repository of the issuer gets 429 with Retry-After; another repository, and another issuer\'s same-named repository, are unaffected', async () => {
    const put = await e.admin('PUT', '/v1/oidc/issuers/ci', ciIssuer(e, { rate_limit: { per_tenant_rps: 0.4 } }));
    expect(put.status, put.text).to.equal(200);
    const jwt = await e.idp.token(github('org/a', 'refs/heads/busy'));
    const statuses: number[] = [];
    let last: Res | undefined;
    for (let i = 0; i < 8; i++) {
      last = await whoami(jwt);
      statuses.push(last.status);
    }
    // Burst 2 (5 x 0.4/s); the global 100/s would allow all 8.
    expect(statuses.filter((s) => s === 200).length, statuses.join(',')).to.be.within(2, 3);
    expect(last!.status).to.equal(429);
    expect(Number(last!.headers['retry-after'])).to.be.within(1, 30);
    expect(last!.body.error.code).to.equal('rate_limited');
    // Another repository of the same issuer keeps its own budget ...
    const b = await e.idp.token(github('org/b', 'refs/heads/busy'));
    expect((await whoami(b)).status).to.equal(200);
    // ... and another issuer (no rate_limit: the global rate) is not touched, even for a repository of the same name.
    const other = await idp2.token(github('org/a', 'refs/heads/busy'));
    for (let i = 0; i < 10; i++) expect((await whoami(other)).status, `request ${i}`).to.equal(200);
    // An exchanged token of the issuer spends the same per-issuer rate.
    const ex = await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt: b });
    expect(ex.status, ex.text).to.equal(200);
    const viaToken: number[] = [];
    for (let i = 0; i < 6; i++) viaToken.push((await whoami(ex.body.token)).status);
    expect(viaToken.at(-1), viaToken.join(',')).to.equal(429);
  });

  it('per_ip_failed_rps: failures with a JWT whose iss names the issuer spend its rate; other failures the global one', async () => {
    // A strict issuer (0.4/s, burst 2) and a lenient one (100/s), the global at 0.4/s.
    expect((await e.admin('PUT', '/v1/oidc/issuers/other', { issuer: idp2.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: GITHUB_TENANT_CLAIMS, rate_limit: { per_ip_failed_rps: 0.4 } })).status).to.equal(200);
    expect((await e.admin('PUT', '/v1/oidc/issuers/ci', ciIssuer(e, { rate_limit: { per_ip_failed_rps: 100 } }))).status).to.equal(200);
    const strict = spoilt(await idp2.token(github('org/a')));
    const statuses: number[] = [];
    let refused: Res | undefined;
    for (let i = 0; i < 4; i++) {
      const r = await whoami(strict);
      statuses.push(r.status);
      if (r.status === 429) refused = r;
    }
    expect(statuses).to.deep.equal([401, 401, 429, 429]);
    expect(Number(refused!.headers['retry-after'])).to.be.within(1, 30);
    // A refusal says nothing of the issuer: the same body as any other 429.
    expect(refused!.body.error.code).to.equal('rate_limited');
    expect(refused!.text).to.not.match(/other|idp|iss/i);
    // The lenient issuer's failures outlast the global burst of 2 ...
    const lenient = spoilt(await e.idp.token(github('org/a')));
    for (let i = 0; i < 10; i++) expect((await whoami(lenient)).status, `lenient failure ${i}`).to.equal(401);
    // ... while a token naming no known issuer spends the global budget (0.4/s, burst 2).
    const global: number[] = [];
    for (let i = 0; i < 4; i++) global.push((await whoami('bad.token.here')).status);
    expect(global.at(-1), global.join(',')).to.equal(429);
    expect((await whoami(lenient)).status).to.equal(401);
    // Valid tokens never spend a failure budget.
    expect((await whoami(await idp2.token(github('org/a', 'refs/heads/fresh')))).status).to.equal(200);
  });
});

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`OIDC issuer rate_limit: stored, shown, validated (${backend})`, function () {
    this.timeout(60_000);
    let e: OidcEnv;
    let db: TestDatabase | undefined;
    before(async function () {
      const env: Record<string, string> = {};
      if (backend === 'postgres') {
        db = await createTestDatabase(await requirePg(this));
        env.NEXUS_DATABASE_URL = db.url;
      }
      e = await startOidcEnv(env);
    });
    after(async () => {
      await e?.stop();
      await db?.drop();
    });

    it('round-trips through PUT and GET; absent is null; both fields optional', async () => {
      const put = await e.admin('PUT', '/v1/oidc/issuers/ci', ciIssuer(e, { rate_limit: { per_tenant_rps: 2.5, per_ip_failed_rps: 0.5 } }));
      expect(put.status, put.text).to.equal(200);
      expect(put.body.rate_limit).to.deep.equal({ per_tenant_rps: 2.5, per_ip_failed_rps: 0.5 });
      expect((await e.admin('GET', '/v1/oidc/issuers/ci')).body.rate_limit).to.deep.equal({ per_tenant_rps: 2.5, per_ip_failed_rps: 0.5 });
      expect((await e.admin('GET', '/v1/oidc/issuers')).body.issuers[0].rate_limit).to.deep.equal({ per_tenant_rps: 2.5, per_ip_failed_rps: 0.5 });
      expect((await e.admin('PUT', '/v1/oidc/issuers/ci', ciIssuer(e, { rate_limit: { per_ip_failed_rps: 3 } }))).body.rate_limit).to.deep.equal({ per_ip_failed_rps: 3 });
      expect((await e.admin('GET', '/v1/oidc/issuers/ci')).body.rate_limit).to.deep.equal({ per_ip_failed_rps: 3 });
      expect((await e.admin('PUT', '/v1/oidc/issuers/ci', ciIssuer(e))).body.rate_limit).to.equal(null);
      expect((await e.admin('GET', '/v1/oidc/issuers/ci')).body.rate_limit).to.equal(null);
    });

    it('bad values are a 400 naming the field', async () => {
      const bad: Array<[unknown, RegExp]> = [
        [{ per_tenant_rps: 0 }, /rate_limit\.per_tenant_rps/],
        [{ per_tenant_rps: -1 }, /rate_limit\.per_tenant_rps/],
        [{ per_ip_failed_rps: '5' }, /rate_limit\.per_ip_failed_rps/],
        [{ per_ip_failed_rps: 1e9 }, /rate_limit\.per_ip_failed_rps/],
        [{ per_tenant_rps: 1, burst: 3 }, /unknown field "burst"/],
        ['fast', /rate_limit/],
      ];
      for (const [value, field] of bad) {
        const r = await e.admin('PUT', '/v1/oidc/issuers/ci', ciIssuer(e, { rate_limit: value }));
        expect(r.status, JSON.stringify(value)).to.equal(400);
        expect(r.body.error.message, JSON.stringify(value)).to.match(field);
      }
      expect((await e.admin('GET', '/v1/oidc/issuers/ci')).body.rate_limit).to.equal(null);
    });

    if (backend === 'sqlite') {
      it('pilot oidc issuer put --per-tenant-rps N --per-ip-failed-rps N; a non-positive rate is a usage error', async () => {
        const env = { NEXUS_DATA_DIR: e.t.dir, NEXUS_ADDR: `https://127.0.0.1:${e.t.port}` };
        const args = ['oidc', 'issuer', 'put', 'pilot-ci', '--issuer', `${e.idp.url}/pilot`, '--audience', 'nexus', '--preset', 'github', '--no-verify'];
        const r = await runBin('pilot', [...args, '--per-tenant-rps', '3', '--per-ip-failed-rps', '0.5'], env);
        expect(r.code, r.stderr).to.equal(0);
        expect((await e.admin('GET', '/v1/oidc/issuers/pilot-ci')).body.rate_limit).to.deep.equal({ per_tenant_rps: 3, per_ip_failed_rps: 0.5 });
        const shown = await runBin('pilot', ['oidc', 'issuer', 'get', 'pilot-ci'], env);
        expect(shown.stdout).to.match(/rate limit +3\/s per tenant, 0\.5 failures\/s per IP/);
        const zero = await runBin('pilot', [...args, '--per-tenant-rps', '0'], env);
        expect(zero.code).to.equal(2);
        expect(zero.stderr).to.match(/--per-tenant-rps/);
      });
    }
  });
}

describe('declarative config: an issuer\'s rate_limit', function () {
  this.timeout(60_000);
  let idp: TestIdp;
  before(async () => {
    idp = await startIdp();
  });
  after(() => idp.stop());

  const seedFile = (rateLimit: unknown): string => {
    const dir = tempDir('seed-rate');
    const file = path.join(dir, 'nexus.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        oidc: {
          issuers: { gh: { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: GITHUB_TENANT_CLAIMS, rate_limit: rateLimit } },
          roles: { api: role('gh', 'org/api') },
        },
      }),
    );
    return file;
  };

  it('is stored as declared and limits the issuer\'s tenants', async () => {
    const plugin = new OidcPlugin();
    const t = await startTestServer({ NEXUS_CONFIG: seedFile({ per_tenant_rps: 0.4 }), NEXUS_OIDC_ADDR: '127.0.0.1:0' }, { plugins: [plugin] });
    try {
      expect((await call(t.port, t.admin, 'GET', '/v1/oidc/issuers/gh')).body.rate_limit).to.deep.equal({ per_tenant_rps: 0.4 });
      const jwt = await idp.token(github('org/api'));
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await call(plugin.addresses().oidc!.port, { ca: t.caPem }, 'GET', '/v1/whoami', undefined, { headers: { Authorization: `Bearer ${jwt}` } })).status);
      expect(statuses.at(-1), statuses.join(',')).to.equal(429);
    } finally {
      await t.stop();
    }
  });

  it('a bad value fails the start naming the key', () => {
    const env = testEnv(tempDir('seed-rate-bad'), { NEXUS_CONFIG: seedFile({ per_tenant_rps: 0 }), NEXUS_OIDC_ADDR: '127.0.0.1:0' });
    expect(() => parseSeed(loadConfig(env))).to.throw(/oidc\.issuers\.gh\.rate_limit: rate_limit\.per_tenant_rps must be a number/);
  });
});

