import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { github } from '../helpers/idp.js';
import { ROOT } from '../helpers/env.js';
import { node24 } from '../helpers/node24.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { maskProblems, runAction, startRunner, type Runner } from '../helpers/runner.js';

const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----';
const TRICKY = 'p%40ss::word "quoted" $HOME `x`';

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
    expect(a.runs.post, 'a post step runs on the same Node').to.equal(undefined);
    expect(fs.existsSync(path.join(ROOT, a.runs.main))).to.equal(true);
    expect(Object.keys(a.inputs)).to.have.members(['url', 'ca', 'server-spiffe-id', 'audience', 'role', 'secrets', 'export-env', 'revoke']);
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

  it('exchanges once, masks every value first (multi-line line by line), exports multi-line-safe and sets outputs', async () => {
    const r = await runAction(runner, { ...base, secrets: 'ci/acme/api/db password | DB_PASSWORD\nci/acme/api/db user | DB_USER\n\nci/acme/api/tls | TLS_\n', 'export-env': 'true' });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(runner.audiences.at(-1)).to.equal('nexus');
    const expected = { DB_PASSWORD: 'gh-db-pw', DB_USER: 'svc', TLS_KEY_PEM: PEM, TLS_TRICKY: TRICKY };
    expect(runner.githubEnv()).to.deep.equal(expected);
    expect(runner.githubOutput()).to.deep.equal(expected);
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
    expect(runner.githubOutput()).to.deep.equal({ DB_PASSWORD: 'gh-db-pw' });
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
