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
    // Keys chosen by whoever can write the secret, naming loader and shell hooks.
    await env.admin('PUT', '/v1/secrets/ci/acme/api/hooks', { data: { BASH_ENV: '$(touch pwned)', ld_preload: '/tmp/evil.so', 'node-options': '--require /tmp/evil.js', ok: 'fine' } });
    await env.admin('PUT', '/v1/secrets/ci/acme/api/lib', { data: { preload: '/tmp/evil.so' } });
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

  // The exchanged token outlives nothing it was for: exec gives it back when
  // the child ends (a check from inside the child sees it still live), the
  // other modes right after the read, and a failed read gives it back too.
  const liveTokens = () => (env.t.server.core.db.prepare('SELECT count(*) AS n FROM oidc_tokens').get() as { n: number }).n;
  it('revokes its exchanged token: exec when the child ends, --format/--github-env after the read, and after a failure; --no-revoke keeps it', async () => {
    const before = liveTokens();
    const during = path.join(dir, 'during.txt');
    const dbFile = env.t.server.core.config.dbFile;
    const child = `const D=require(${JSON.stringify(path.join(ROOT, 'node_modules/better-sqlite3'))}); const db=new D(${JSON.stringify(dbFile)},{readonly:true}); require('fs').writeFileSync(${JSON.stringify(during)}, String(db.prepare('SELECT count(*) AS n FROM oidc_tokens').get().n))`;
    const r = await nexusCi(args('exec', '--', process.execPath, '-e', child), ci);
    expect(r.code, r.stderr).to.equal(0);
    expect(Number(fs.readFileSync(during, 'utf8'))).to.equal(before + 1);
    expect(liveTokens()).to.equal(before);
    expect((await nexusCi(args('--format', 'json', '--out', path.join(dir, 'revoke.json')), ci)).code).to.equal(0);
    expect(liveTokens()).to.equal(before);
    const missing = await nexusCi(['--jwt-env', 'NEXUS_JWT', '--url', `https://127.0.0.1:${env.port}`, '--ca', caFile, '--secret', 'ci/acme/api/db nope | X', 'exec', '--', 'true'], ci);
    expect(missing.code).to.equal(1);
    expect(liveTokens()).to.equal(before);
    expect((await nexusCi(args('--no-revoke', '--format', 'json', '--out', path.join(dir, 'kept.json')), ci)).code).to.equal(0);
    expect(liveTokens()).to.equal(before + 1);
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

    // dotenv: single quotes, or double quotes for a value with ' and nothing a shell expands (test/ci/formats.test.ts has the rules).
    const dotenv = path.join(dir, 'secrets.env');
    fs.writeFileSync(dotenv, 'old', { mode: 0o644 });
    const dotenvArgs = (...secrets: string[]) => [...args().slice(0, 6), ...secrets.flatMap((s) => ['--secret', s]), '--format', 'dotenv', '--out', dotenv];
    expect((await nexusCi(dotenvArgs('ci/acme/api/db password | DB_PASSWORD', 'ci/acme/api/multi odd-key | ODD'), ci)).code).to.equal(0);
    expect(fs.statSync(dotenv).mode & 0o777).to.equal(0o600);
    expect(fs.readFileSync(dotenv, 'utf8')).to.equal(`DB_PASSWORD='gl-db-pw'\nODD="it's"\n`);
    // MULTI holds ', " and $ at once: no form both readers agree on, so nothing is written.
    const refused = await nexusCi(dotenvArgs('ci/acme/api/db password | DB_PASSWORD', 'ci/acme/api/multi | M_'), ci);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/^nexus-ci: M_TEXT: --format dotenv cannot write its value/);
    expect(refused.stderr).to.not.include('three');
    expect(fs.readFileSync(dotenv, 'utf8')).to.equal(`DB_PASSWORD='gl-db-pw'\nODD="it's"\n`);
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

  describe('all-keys lines (`PATH | PREFIX`): the secret\'s writer does not choose loader or shell hooks in the job', () => {
    const only = (...lines: string[]) => [...args().slice(0, 6), ...lines.flatMap((l) => ['--secret', l])];
    const outputs: Array<[string, () => string[], () => Record<string, string>]> = [
      ['exec', () => ['exec', '--', 'touch', path.join(dir, 'ran-hooks')], () => ({})],
      ['--format json', () => ['--format', 'json', '--out', path.join(dir, 'hooks.json')], () => ({})],
      ['--format dotenv', () => ['--format', 'dotenv', '--out', path.join(dir, 'hooks.env')], () => ({})],
      ['--github-env', () => ['--github-env'], () => ({ GITHUB_ENV: path.join(dir, 'hooks_github_env') })],
    ];
    for (const [mode, extra, envOf] of outputs) {
      it(`an empty prefix: refused naming the keys and the secret, nothing exported (${mode})`, async () => {
        const e = envOf();
        if (e.GITHUB_ENV) fs.writeFileSync(e.GITHUB_ENV, '');
        const r = await nexusCi([...only('ci/acme/api/db password | DB_PASSWORD', 'ci/acme/api/hooks |'), ...extra()], { ...ci, ...e });
        expect(r.code, r.stderr).to.equal(1);
        expect(r.stderr).to.match(/^nexus-ci: secret ci\/acme\/api\/hooks \("ci\/acme\/api\/hooks \|"\): .*BASH_ENV, LD_PRELOAD, NODE_OPTIONS/);
        expect(r.stderr).to.not.match(/\bOK\b|pwned|evil|gl-db-pw/);
        expect(fs.existsSync(path.join(dir, 'ran-hooks')) || fs.existsSync(path.join(dir, 'hooks.json')) || fs.existsSync(path.join(dir, 'hooks.env'))).to.equal(false);
        if (e.GITHUB_ENV) expect(fs.readFileSync(e.GITHUB_ENV, 'utf8')).to.equal('');
      });
    }

    it('a prefix that recreates a hook (LD_ + preload) is refused too', async () => {
      const r = await nexusCi([...only('ci/acme/api/lib | LD_'), 'exec', '--', 'true'], ci);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/secret ci\/acme\/api\/lib .*LD_PRELOAD/);
    });

    it('a neutral prefix, an empty prefix over harmless keys, and names the job chose itself are all fine', async () => {
      const out = path.join(dir, 'prefixed.json');
      const r = await nexusCi([...only('ci/acme/api/hooks | APP_', 'ci/acme/api/db |', 'ci/acme/api/hooks BASH_ENV | BASH_ENV'), '--format', 'json', '--out', out], ci);
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(fs.readFileSync(out, 'utf8'))).to.deep.equal({ APP_BASH_ENV: '$(touch pwned)', APP_LD_PRELOAD: '/tmp/evil.so', APP_NODE_OPTIONS: '--require /tmp/evil.js', APP_OK: 'fine', PASSWORD: 'gl-db-pw', BASH_ENV: '$(touch pwned)' });
    });
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
