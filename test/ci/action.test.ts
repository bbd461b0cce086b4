import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { github } from '../helpers/idp.js';
import { ROOT } from '../helpers/env.js';
import { node24 } from '../helpers/node24.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { bash } from '../helpers/bash.js';
import type pg from 'pg';
import { createTarget, putCredentialRoles, type Target } from '../helpers/dbcreds.js';
import { requirePg } from '../helpers/pg.js';
import { startTokenTap, type TokenTap } from '../helpers/token-tap.js';
import { maskProblems, runAction, runActionPost, startRunner, type Runner } from '../helpers/runner.js';

const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----';
const TRICKY = 'p%40ss::word "quoted" $HOME `x`';
/** The step's outputs without the ids it adds to every run (token-id; lease-ids with db-creds). */
const withoutIds = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'token-id' && k !== 'lease-ids'));
/** The token id the clients show: a prefix of the SHA-256 of the token (the key of its row in Nexus's store), never the token. */
const tokenId = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 16);

describe('GitHub Action (action.yml, committed bundle) in a simulated runner', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let runner: Runner;
  let base: Record<string, string>;

  before(async () => {
    env = await startOidcEnv();
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'gh-db-pw', user: 'svc' } });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/tls', { data: { 'key.pem': PEM, 'tricky': TRICKY } });
    await env.admin('PUT', '/v1/secrets/ci/acme/other/db', { data: { password: 'not-yours' } });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/hooks', { data: { BASH_ENV: '$(touch pwned)', ld_preload: '/tmp/evil.so', ok: 'fine' } });
    const r = await env.admin('PUT', '/v1/oidc/roles/api-main', { issuer: 'ci', bound_claims: { repository: 'acme/api', ref: 'refs/heads/main' }, paths: ['ci/{{claims.repository}}/*'], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
    await env.admin('PUT', '/v1/oidc/roles/api-nothing', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['ci/acme/nothing/*'], permissions: ['read'] });
    // The IdP's tokens carry no aud of their own: the endpoint adds the one asked for.
    runner = await startRunner(env.idp, { ...github('acme/api'), aud: undefined });
    base = { url: `https://127.0.0.1:${env.port}`, ca: env.t.caPem, audience: 'nexus' };
  });
  after(async () => {
    await runner?.stop();
    await env?.stop();
  });
  beforeEach(() => {
    fs.writeFileSync(runner.env.GITHUB_ENV!, '');
    fs.writeFileSync(runner.env.GITHUB_OUTPUT!, '');
  });

  it('action.yml: node24, the committed bundle, the documented inputs', () => {
    const a = YAML.parse(fs.readFileSync(path.join(ROOT, 'action.yml'), 'utf8'));
    expect(a.runs.using).to.equal('node24');
    expect(fs.existsSync(path.join(ROOT, a.runs.main))).to.equal(true);
    // The job's end gives the token back, whatever the outcome of the steps before.
    expect(a.runs.post).to.equal('scripts/ci/dist/action-post.mjs');
    expect(fs.existsSync(path.join(ROOT, a.runs.post))).to.equal(true);
    expect(a.runs['post-if']).to.equal('always()');
    expect(Object.keys(a.inputs)).to.have.members(['url', 'ca', 'server-spiffe-id', 'audience', 'role', 'secrets', 'db-creds', 'export-env', 'revoke', 'max-tries', 'max-retry-s']);
    expect(a.inputs.secrets.required, 'db-creds alone is a request too').to.equal(false);
    expect(a.inputs['db-creds'].default).to.equal('');
    expect(Object.keys(a.outputs)).to.have.members(['token-id', 'lease-ids']);
    expect(a.inputs['export-env'].default).to.equal('true');
    expect(a.inputs.revoke.default).to.equal('true');
    expect(a.inputs.ca.required).to.equal(false);
  });

  it('gives the exchanged token back right after the read, unless revoke: false', async () => {
    const live = () => (env.t.server.core.db.prepare('SELECT count(*) AS n FROM oidc_tokens').get() as { n: number }).n;
    const before = live();
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD' });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(live()).to.equal(before);
    const kept = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD', revoke: 'false' });
    expect(kept.code, kept.stdout + kept.stderr).to.equal(0);
    expect(live()).to.equal(before + 1);
  });

  it('without db-creds the token is given back right after the read: nothing is saved for the post step, which has nothing to do', async () => {
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD' });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(runner.githubState()).to.deep.equal({});
    expect(runner.githubOutput()['token-id']).to.match(/^[0-9a-f]{16}$/);
    expect(r.stdout).to.include(`nexus: revoked the job's token ${runner.githubOutput()['token-id']}`);
    const post = await runActionPost(runner, base);
    expect(post.code, post.stdout + post.stderr).to.equal(0);
    expect(post.stdout).to.not.match(/::(warning|error)::/);
  });

  it('a subtree line (PATH/** | PREFIX_): every secret the job may read under PATH/, named PREFIX_<RELATIVE_PATH>_<KEY>, masked; others left out', async () => {
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/** | T_' });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const want = { T_API_DB_PASSWORD: 'gh-db-pw', T_API_DB_USER: 'svc', T_API_TLS_KEY_PEM: PEM, T_API_TLS_TRICKY: TRICKY, T_API_HOOKS_BASH_ENV: '$(touch pwned)', T_API_HOOKS_LD_PRELOAD: '/tmp/evil.so', T_API_HOOKS_OK: 'fine' };
    expect(runner.githubEnv()).to.deep.equal(want);
    expect(withoutIds(runner.githubOutput())).to.deep.equal(want);
    expect(JSON.stringify(runner.githubEnv())).to.not.include('not-yours');
    expect(maskProblems(r.stdout + r.stderr, Object.values(want))).to.deep.equal([]);
    expect(r.stdout).to.include('nexus: 7 value(s) from 3 secret(s)');
  });

  it('max-tries and max-retry-s: integers in range, or the step fails naming the input', async () => {
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD', 'max-tries': '0' });
    expect(r.code).to.not.equal(0);
    expect(r.stdout).to.include('::error::nexus: input max-tries must be an integer from 1 to 10');
    expect(runner.githubEnv()).to.deep.equal({});
    const ok = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD', 'max-tries': '1', 'max-retry-s': '0' });
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
  });

  describe('db-creds: the token and its leases live until the post step, which gives them back whatever the job\'s outcome', () => {
    // The real db/creds route on a real PostgreSQL; a pass-through tap notes the job's token (the action keeps it to itself).
    let tap: TokenTap;
    let target: Target;
    let deploy: string;
    let report: string;
    let via: Record<string, string>;
    before(async function () {
      target = await createTarget(await requirePg(this));
      deploy = `dep${target.tag}`;
      report = `rep${target.tag}`;
      await putCredentialRoles(env.admin, target, [deploy, report]);
      tap = await startTokenTap(env);
      via = { ...base, url: tap.url };
      tap.answer('/v1/db/creds/garbled', 200, { user: 'x' });
      // `missing` is granted but no credential role has that name; `denied` is not granted.
      const r = await env.admin('PUT', '/v1/oidc/roles/api-db', { issuer: 'ci', bound_claims: { repository: 'acme/api' }, paths: ['ci/acme/api/*', `db/creds/${deploy}`, `db/creds/${report}`, 'db/creds/missing'], permissions: ['read'] });
      expect(r.status, r.text).to.equal(201);
    });
    after(async () => {
      await tap?.stop();
      await target?.drop();
    });
    const whoami = async (token: string) => (await env.oidc(token, 'GET', '/v1/whoami')).status;
    const alive = async (username: string) => (await target.users(username)).includes(username);
    const ended = async (c: pg.Client) => c.query('SELECT 1').then(() => false, () => true);
    /** The role's active leases, by user name. */
    const activeLeases = async (role: string) =>
      Object.fromEntries(((await env.admin('GET', `/v1/leases?prefix=db/creds/${role}`)).body as { leases: { lease_id: string; username: string; state: string }[] }).leases.filter((l) => l.state === 'active').map((l) => [l.username, l.lease_id]));

    it('main (db-creds masked, exported, lease ids and the token id as outputs), a later step logs in with pg, a failing step, then post: the token gets 401, the users are gone, the open session ended', async () => {
      const main = await runAction(runner, { ...via, role: 'api-db', secrets: 'ci/acme/api/db password | DB_PASSWORD', 'db-creds': `${deploy} | PG_\n${report} | RO_` });
      expect(main.code, main.stdout + main.stderr).to.equal(0);
      const token = tap.tokens.at(-1)!;
      const exported = runner.githubEnv();
      expect(Object.keys(exported)).to.have.members(['DB_PASSWORD', 'PG_USERNAME', 'PG_PASSWORD', 'RO_USERNAME', 'RO_PASSWORD']);
      expect(exported.DB_PASSWORD).to.equal('gh-db-pw');
      expect(exported.PG_USERNAME).to.match(new RegExp(`^v_${deploy}_acme_api_`));
      expect(exported.RO_USERNAME).to.match(new RegExp(`^v_${report}_acme_api_`));
      const out = runner.githubOutput();
      // The lease ids are the server's own, one per line, in order.
      const pgLease = (await activeLeases(deploy))[exported.PG_USERNAME!];
      const roLease = (await activeLeases(report))[exported.RO_USERNAME!];
      expect(pgLease).to.be.a('string');
      expect(out['lease-ids']).to.equal(`${pgLease}\n${roLease}`);
      expect(out['token-id']).to.equal(tokenId(token));
      expect(maskProblems(main.stdout + main.stderr, [exported.PG_USERNAME!, exported.PG_PASSWORD!, exported.RO_USERNAME!, exported.RO_PASSWORD!, 'gh-db-pw'])).to.deep.equal([]);
      // The token: masked, never printed, never an output or a variable; kept only for the post step.
      expect(maskProblems(main.stdout + main.stderr, [token])).to.deep.equal([]);
      for (const text of [JSON.stringify(out), JSON.stringify(runner.githubEnv())]) expect(text).to.not.include(token);
      expect(await whoami(token), 'alive for the later steps').to.equal(200);

      // A later step: a real PostgreSQL login with the exported user (psql, as a job would run it).
      const db = new URL(target.url);
      const later = await bash(`PGPASSWORD="$PG_PASSWORD" psql -h 127.0.0.1 -p ${db.port || 5432} -d ${db.pathname.slice(1)} -U "$PG_USERNAME" -tAc 'SELECT v FROM ${target.table}'`, runner.dir, { ...runner.env, ...runner.githubEnv() });
      expect(later.code, later.log).to.equal(0);
      expect(later.log.trim()).to.equal('hello');
      // And a session of the job's still open when the job ends.
      const session = await target.login(exported.PG_USERNAME!, exported.PG_PASSWORD!);
      expect((await session.query(`SELECT v FROM ${target.table}`)).rows).to.deep.equal([{ v: 'hello' }]);

      const failing = await bash('exit 3', runner.dir, { ...runner.env, ...runner.githubEnv() });
      expect(failing.code).to.equal(3);
      expect(await alive(exported.PG_USERNAME!), 'a failed step ends nothing by itself').to.equal(true);

      const post = await runActionPost(runner, via);
      expect(post.code, post.stdout + post.stderr).to.equal(0);
      expect(post.stdout).to.include(`nexus: revoked the job's token ${tokenId(token)} and its leases`);
      expect((post.stdout + post.stderr).split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n')).to.not.include(token);
      expect(await whoami(token)).to.equal(401);
      expect(await alive(exported.PG_USERNAME!), 'the database users are gone').to.equal(false);
      expect(await alive(exported.RO_USERNAME!)).to.equal(false);
      expect(await ended(session), 'the open session was ended').to.equal(true);
      // Run again (a re-run of the post step): the token is already gone, which is no failure.
      const again = await runActionPost(runner, via);
      expect(again.code).to.equal(0);
      expect(again.stdout).to.match(/already revoked or expired/);
      expect(again.stdout).to.not.match(/::(warning|error)::/);
    });

    it('revoke: false keeps the token to its TTL: nothing saved, the post step leaves it alone', async () => {
      const main = await runAction(runner, { ...via, role: 'api-db', secrets: '', 'db-creds': `${deploy} | PG_`, revoke: 'false' });
      expect(main.code, main.stdout + main.stderr).to.equal(0);
      const token = tap.tokens.at(-1)!;
      const user = runner.githubEnv().PG_USERNAME!;
      expect(runner.githubState()).to.deep.equal({});
      expect((await runActionPost(runner, via)).code).to.equal(0);
      expect(await whoami(token)).to.equal(200);
      expect(await alive(user)).to.equal(true);
      expect((await env.oidc(token, 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
      expect(await alive(user)).to.equal(false);
    });

    const refusals: Array<[string, string, RegExp]> = [
      ['a role the server does not know', 'missing | PG_', /db-creds "missing \| PG_": not found \(404\)/],
      ['a role the token may not read', 'denied | PG_', /db-creds "denied \| PG_": denied \(403\)/],
      // Not Nexus's answer: the tap answers this one path itself.
      ['an answer outside the contract', 'garbled | PG_', /db-creds "garbled \| PG_": .*no username, password and lease_id/],
    ];
    for (const [name, line, message] of refusals) {
      it(`${name}: the step fails naming the line, exports nothing, and the token (with any lease minted before) is given back at once`, async () => {
        const r = await runAction(runner, { ...via, role: 'api-db', secrets: 'ci/acme/api/db password | DB_PASSWORD', 'db-creds': `${deploy} | OK_\n${line}` });
        expect(r.code).to.equal(1);
        expect(r.stdout).to.match(message);
        expect(runner.githubEnv()).to.deep.equal({});
        expect(runner.githubState()).to.deep.equal({});
        expect(await whoami(tap.tokens.at(-1)!)).to.equal(401);
        // The lease minted before the refusal went with the token.
        expect(await activeLeases(deploy)).to.deep.equal({});
        expect(await target.users(`v_${deploy}_`)).to.deep.equal([]);
      });
    }

    it('a bad db-creds line fails before any token is asked for', async () => {
      const asked = runner.audiences.length;
      const r = await runAction(runner, { ...via, 'db-creds': 'db/creds/deploy | PG_' });
      expect(r.code).to.equal(1);
      expect(r.stdout).to.match(/::error::.*db-creds "db\/creds\/deploy \| PG_": "db\/creds\/deploy" is not a role name/);
      expect(runner.audiences.length).to.equal(asked);
    });
  });

  it('exchanges once, masks every value first (multi-line line by line), exports multi-line-safe and sets outputs', async () => {
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD\nci/acme/api/db user | DB_USER\n\nci/acme/api/tls | TLS_\n', 'export-env': 'true' });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(runner.audiences.at(-1)).to.equal('nexus');
    const expected = { DB_PASSWORD: 'gh-db-pw', DB_USER: 'svc', TLS_KEY_PEM: PEM, TLS_TRICKY: TRICKY };
    expect(runner.githubEnv()).to.deep.equal(expected);
    expect(withoutIds(runner.githubOutput())).to.deep.equal(expected);
    expect(maskProblems(r.stdout + r.stderr, Object.values(expected))).to.deep.equal([]);
    // Every mask comes before the step says anything of its own (a summary naming variables, not values).
    const lines = r.stdout.split('\n');
    const summary = lines.findIndex((l) => l.startsWith('nexus: 4 value(s)'));
    expect(summary, r.stdout).to.be.greaterThan(0);
    expect(lines.slice(summary).some((l) => l.startsWith('::add-mask::'))).to.equal(false);
    expect(lines[summary]).to.include('DB_PASSWORD');
  });

  it('the bundle runs on Node 24, as the runner runs it (runs.using: node24), as well as on Node 20', async function () {
    const node = node24(this);
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD\nci/acme/api/tls | TLS_' }, {}, node);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stderr, 'no deprecation or experimental warning on Node 24').to.equal('');
    const expected = { DB_PASSWORD: 'gh-db-pw', TLS_KEY_PEM: PEM, TLS_TRICKY: TRICKY };
    expect(runner.githubEnv()).to.deep.equal(expected);
    expect(maskProblems(r.stdout, Object.values(expected))).to.deep.equal([]);
  });

  it('export-env: false sets step outputs only', async () => {
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD', 'export-env': 'false' });
    expect(r.code, r.stdout).to.equal(0);
    expect(runner.githubEnv()).to.deep.equal({});
    expect(withoutIds(runner.githubOutput())).to.deep.equal({ DB_PASSWORD: 'gh-db-pw' });
  });

  it('the CA may be given as a file path; role restricts the exchange', async () => {
    const caFile = path.join(runner.dir, 'nexus-ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    const r = await runAction(runner, { ...base, ca: caFile, role: 'api-main', secrets: 'ci/acme/api/db password | DB_PASSWORD' });
    expect(r.code, r.stdout).to.equal(0);
    const denied = await runAction(runner, { ...base, role: 'api-nothing', secrets: 'ci/acme/api/db password | DB_PASSWORD' });
    expect(denied.code).to.equal(1);
    expect(denied.stdout).to.match(/::error::.*secret ci\/acme\/api\/db.*denied \(403\)/);
  });

  const failures: Array<[string, Record<string, string>, RegExp]> = [
    ['a missing key is an error naming the secret and the key, never "null"', { secrets: 'ci/acme/api/db passwd | DB_PASSWORD' }, /secret ci\/acme\/api\/db .*no key "passwd"/],
    ['a path the role does not grant: denied', { secrets: 'ci/acme/other/db password | X' }, /secret ci\/acme\/other\/db .*denied \(403\)/],
    ['a path that does not exist: not found', { secrets: 'ci/acme/api/absent password | X' }, /secret ci\/acme\/api\/absent .*not found \(404\)/],
    ['a token for the wrong audience: token refused', { audience: 'someone-else', secrets: 'ci/acme/api/db password | X' }, /refused the job's token: .*token refused \(401\)/],
    ['an all-keys line whose keys would set loader or shell hooks names them and the secret', { secrets: 'ci/acme/api/hooks |' }, /secret ci\/acme\/api\/hooks \("ci\/acme\/api\/hooks \|"\): .*BASH_ENV, LD_PRELOAD/],
    ['a malformed spec line names the line', { secrets: 'ci/acme/api/db password DB_PASSWORD' }, /secret spec "ci\/acme\/api\/db password DB_PASSWORD"/],
  ];
  for (const [name, inputs, message] of failures) {
    it(`${name}; the step fails and exports nothing`, async () => {
      const r = await runAction(runner, { ...base, ...inputs, secrets: `ci/acme/api/db password | FIRST\n${inputs.secrets}` });
      expect(r.code).to.equal(1);
      expect(r.stdout).to.match(/^::error::/m);
      expect(r.stdout).to.match(message);
      expect(runner.githubEnv()).to.deep.equal({});
      expect(runner.githubOutput()).to.deep.equal({});
      expect(r.stdout + r.stderr).to.not.match(/gh-db-pw|not-yours|\bnull\b|pwned|evil/);
    });
  }

  it('without the id-token permission (no ACTIONS_ID_TOKEN_REQUEST_URL) the step fails saying so', async () => {
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | X' }, { ACTIONS_ID_TOKEN_REQUEST_URL: '' });
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/::error::.*ACTIONS_ID_TOKEN_REQUEST_URL/);
  });
});
