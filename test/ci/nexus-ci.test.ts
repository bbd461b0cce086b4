import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gitlab } from '../helpers/idp.js';
import { ROOT, runNode, tempDir } from '../helpers/env.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { maskProblems, parseFileCommands } from '../helpers/runner.js';

// The self-contained bundle (what CI images copy); the dev launcher scripts/bin/nexus-ci.js runs the same sources.
const BIN = path.join(ROOT, 'scripts/ci/dist/nexus-ci.mjs');
const nexusCi = (args: string[], env: Record<string, string>) => runNode([BIN, ...args], env);

const MULTI = 'line one\nline "two" $HOME\n\'three\'';

describe('nexus-ci: the same client for any CI', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let dir: string;
  let caFile: string;
  let ci: Record<string, string>;
  const secretsOf = ['ci/acme/api/db password | DB_PASSWORD', 'ci/acme/api/multi | M_'];
  const args = (...extra: string[]) => ['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--ca', caFile, ...secretsOf.flatMap((s) => ['--secret', s]), ...extra];

  before(async () => {
    env = await startOidcEnv();
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'gl-db-pw' } });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/multi', { data: { text: MULTI, 'odd-key': "it's" } });
    const r = await env.admin('PUT', '/v1/oidc/roles/gitlab-main', { issuer: 'ci', bound_claims: { namespace_path: 'acme', ref: 'main', ref_protected: 'true' }, paths: ['ci/{{claims.project_path}}/*'], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
    dir = tempDir('nexus-ci-cli');
    caFile = path.join(dir, 'ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    ci = { NEXUS_JWT: await env.idp.token(gitlab('acme/api')) };
  });
  after(() => env?.stop());

  it('exec -- CMD: the secrets reach only the child environment; nothing is printed; the exit code passes through', async () => {
    const seen = path.join(dir, 'seen.json');
    const child = `require('fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify({p: process.env.DB_PASSWORD, t: process.env.M_TEXT, o: process.env.M_ODD_KEY})); process.exit(7)`;
    const r = await nexusCi(args('exec', '--', process.execPath, '-e', child), ci);
    expect(r.code, r.stderr).to.equal(7);
    expect(JSON.parse(fs.readFileSync(seen, 'utf8'))).to.deep.equal({ p: 'gl-db-pw', t: MULTI, o: "it's" });
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.equal('');
  });

  it('--format json|shell|dotenv --out FILE: mode 0600, values read back exactly', async () => {
    const json = path.join(dir, 'secrets.json');
    expect((await nexusCi(args('--format', 'json', '--out', json), ci)).code).to.equal(0);
    expect(fs.statSync(json).mode & 0o777).to.equal(0o600);
    expect(JSON.parse(fs.readFileSync(json, 'utf8'))).to.deep.equal({ DB_PASSWORD: 'gl-db-pw', M_ODD_KEY: "it's", M_TEXT: MULTI });

    const sh = path.join(dir, 'secrets.sh');
    const r = await nexusCi(args('--format', 'shell', '--out', sh), ci);
    expect(r.code).to.equal(0);
    expect(r.stdout + r.stderr).to.not.include('gl-db-pw');
    expect(fs.statSync(sh).mode & 0o777).to.equal(0o600);
    const back = execFileSync('bash', ['-c', `. ${sh}; printf '%s\\0%s\\0%s' "$DB_PASSWORD" "$M_TEXT" "$M_ODD_KEY"`], { env: { PATH: process.env.PATH } }).toString();
    expect(back.split('\0')).to.deep.equal(['gl-db-pw', MULTI, "it's"]);

    const dotenv = path.join(dir, 'secrets.env');
    fs.writeFileSync(dotenv, 'old', { mode: 0o644 });
    expect((await nexusCi(args('--format', 'dotenv', '--out', dotenv), ci)).code).to.equal(0);
    expect(fs.statSync(dotenv).mode & 0o777).to.equal(0o600);
    expect(fs.readFileSync(dotenv, 'utf8')).to.equal(`DB_PASSWORD="gl-db-pw"\nM_ODD_KEY="it's"\nM_TEXT="line one\\nline \\"two\\" \\$HOME\\n'three'"\n`);
  });

  it('--github-env: masks, then appends multi-line-safe to $GITHUB_ENV', async () => {
    const ghEnv = path.join(dir, 'github_env');
    fs.writeFileSync(ghEnv, 'EARLIER=1\n');
    const r = await nexusCi(args('--github-env'), { ...ci, GITHUB_ENV: ghEnv });
    expect(r.code, r.stderr).to.equal(0);
    expect(parseFileCommands(fs.readFileSync(ghEnv, 'utf8'))).to.deep.equal({ EARLIER: '1', DB_PASSWORD: 'gl-db-pw', M_ODD_KEY: "it's", M_TEXT: MULTI });
    expect(maskProblems(r.stdout + r.stderr, ['gl-db-pw', MULTI, "it's"])).to.deep.equal([]);
  });

  it('--jwt-file works like --jwt-env', async () => {
    const jwtFile = path.join(dir, 'jwt');
    fs.writeFileSync(jwtFile, `${ci.NEXUS_JWT}\n`);
    const out = path.join(dir, 'from-file.json');
    const a = args('--format', 'json', '--out', out);
    a.splice(0, 2, '--jwt-file', jwtFile);
    const r = await nexusCi(a, {});
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).DB_PASSWORD).to.equal('gl-db-pw');
  });

  const usage: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['no mode', [], {}, /choose one of/],
    ['--format without --out (values are never printed)', ['--format', 'json'], {}, /--out/],
    ['an unknown format', ['--format', 'xml', '--out', '/tmp/x'], {}, /--format must be one of/],
    ['exec without a command', ['exec', '--'], {}, /exec -- CMD/],
    ['--github-env outside GitHub', ['--github-env'], {}, /GITHUB_ENV/],
  ];
  for (const [name, extra, e, msg] of usage) {
    it(`usage error (exit 2): ${name}`, async () => {
      const r = await nexusCi(args(...extra), { ...ci, ...e });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(msg);
    });
  }

  it('usage error (exit 2): an unset --jwt-env variable, or both JWT sources', async () => {
    expect((await nexusCi(args('--format', 'json', '--out', '/tmp/x'), {})).stderr).to.match(/\$NEXUS_JWT is empty or unset/);
    const both = await nexusCi(['--jwt-file', 'x', ...args('--format', 'json', '--out', '/tmp/x')], ci);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.match(/exactly one of --jwt-env/);
  });

  it('a missing key fails (exit 1) naming the secret and key; the command never runs', async () => {
    const marker = path.join(dir, 'ran');
    const a = ['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--ca', caFile, '--secret', 'ci/acme/api/db passwd | P', 'exec', '--', 'touch', marker];
    const r = await nexusCi(a, ci);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/secret ci\/acme\/api\/db .*no key "passwd"/);
    expect(fs.existsSync(marker)).to.equal(false);
  });

  it('refuses a server it cannot verify: without --ca the private CA is not trusted', async () => {
    const r = await nexusCi(['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--secret', 'ci/acme/api/db password | P', 'exec', '--', 'true'], ci);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/cannot reach .*certificate/);
  });
});
