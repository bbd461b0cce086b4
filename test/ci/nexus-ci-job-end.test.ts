import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { createTarget, putCredentialRoles, type Target } from '../helpers/dbcreds.js';
import { ROOT, runNode, tempDir, type RunResult } from '../helpers/env.js';
import { gitlab } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { requirePg } from '../helpers/pg.js';
import { startTokenTap, type TokenTap } from '../helpers/token-tap.js';
import { until } from '../helpers/wait.js';

const BIN = path.join(ROOT, 'scripts/ci/dist/nexus-ci.mjs');
const tokenId = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 16);

// Credentials that end with the job: nexus-ci gives its exchanged token back
// (and the server the leases minted with it) however the job's command ends,
// or in a later step (`nexus-ci revoke --token-file`, GitLab's after_script).
// Against the real server and a real PostgreSQL: the job's database user
// exists while the command runs and is gone (its sessions ended) afterwards.
// A pass-through tap before Nexus notes the job's token (which nexus-ci keeps
// to itself), so each test can ask the server whether it still lives.
describe('nexus-ci: the job\'s token and leases end with the job', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let tap: TokenTap;
  let target: Target;
  let deploy: string;
  let report: string;
  let dir: string;
  let caFile: string;
  let jobEnv: Record<string, string>;
  const base = (...extra: string[]) => ['--jwt-env', 'NEXUS_JWT', '--url', tap.url, '--ca', caFile, '--role', 'api-db', ...extra];
  const nexusCi = (args: string[], extraEnv: Record<string, string> = {}) => runNode([BIN, ...args], { ...jobEnv, ...extraEnv });
  const lastToken = () => tap.tokens.at(-1)!;
  const status = async (token: string) => (await env.oidc(token, 'GET', '/v1/whoami')).status;
  const alive = async (username: string) => (await target.users(username)).includes(username);
  const ended = async (c: pg.Client) => c.query('SELECT 1').then(() => false, () => true);
  /** What the command found in its environment (written by the child as JSON). */
  const seenBy = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as { u: string; p: string };
  const childRecording = (file: string) => `require('fs').writeFileSync(${JSON.stringify(file)}, JSON.stringify({ u: process.env.PG_USERNAME, p: process.env.PG_PASSWORD }));`;

  before(async function () {
    target = await createTarget(await requirePg(this));
    deploy = `dep${target.tag}`;
    report = `rep${target.tag}`;
    env = await startOidcEnv();
    tap = await startTokenTap(env);
    await putCredentialRoles(env.admin, target, [deploy, report]);
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'gl-db-pw' } });
    const r = await env.admin('PUT', '/v1/oidc/roles/api-db', { issuer: 'ci', bound_claims: { project_path: 'acme/api' }, paths: ['ci/acme/api/*', `db/creds/${deploy}`, `db/creds/${report}`], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
    dir = tempDir('nexus-ci-job-end');
    caFile = path.join(dir, 'ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    jobEnv = { NEXUS_JWT: await env.idp.token(gitlab('acme/api')) };
  });
  after(async () => {
    await tap?.stop();
    await env?.stop();
    await target?.drop();
  });

  describe('exec: revoked when the command ends, however it ends', () => {
    for (const code of [0, 3]) {
      it(`exit ${code}: nexus-ci exits ${code}; the database user existed for the command; afterwards the token gets 401 and the user is gone`, async () => {
        const seen = path.join(dir, `seen-${code}.json`);
        const aliveFile = path.join(dir, `alive-${code}`);
        // The command itself logs in with the credentials (a real pg client) before it exits.
        const pgPath = JSON.stringify(path.join(ROOT, 'node_modules/pg'));
        const child = `${childRecording(seen)} const c = new (require(${pgPath}).Client)({ host: '127.0.0.1', port: ${new URL(target.url).port || 5432}, database: ${JSON.stringify(new URL(target.url).pathname.slice(1))}, user: process.env.PG_USERNAME, password: process.env.PG_PASSWORD }); c.connect().then(() => c.query('SELECT v FROM ${target.table}')).then((r) => { require('fs').writeFileSync(${JSON.stringify(aliveFile)}, r.rows[0].v); return c.end(); }).then(() => process.exit(${code}), () => process.exit(99))`;
        const r = await nexusCi(base('--secret', 'ci/acme/api/db password | DB_PASSWORD', '--db-creds', `${deploy} | PG_`, 'exec', '--', process.execPath, '-e', child));
        expect(r.code, r.stderr).to.equal(code);
        expect(fs.readFileSync(aliveFile, 'utf8'), 'the command read with its user').to.equal('hello');
        expect(r.stderr).to.equal('');
        const { u } = seenBy(seen);
        expect(u).to.match(new RegExp(`^v_${deploy}_`));
        expect(await status(lastToken())).to.equal(401);
        expect(await alive(u), 'the database user is gone').to.equal(false);
      });
    }

    /** nexus-ci exec of a child that writes its credentials to `seen`, then its pid to `ready`, and then waits; `trap`: code it runs on SIGTERM. */
    function startWaiting(name: string, trap?: string): { ready: string; seen: string; done: Promise<RunResult>; pid: () => number } {
      const ready = path.join(dir, `${name}.pid`);
      const seen = path.join(dir, `${name}.json`);
      const child = `${trap ? `process.on('SIGTERM', () => { ${trap} });` : ''} ${childRecording(seen)} require('fs').writeFileSync(${JSON.stringify(ready)}, String(process.pid)); setInterval(() => {}, 1000)`;
      const proc = spawn(process.execPath, [BIN, ...base('--secret', 'ci/acme/api/db password | DB_PASSWORD', '--db-creds', `${deploy} | PG_`, 'exec', '--', process.execPath, '-e', child)], {
        env: { PATH: process.env.PATH, ...jobEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<RunResult>((resolve) => proc.on('close', (c, signal) => resolve({ code: c, signal, stdout, stderr })));
      return { ready, seen, done, pid: () => proc.pid! };
    }

    /** Once the command runs: its user exists, and a session of the job's is open on it (to be ended with it). */
    const jobSession = async (job: { ready: string; seen: string }) => {
      await until(() => fs.existsSync(job.ready) && fs.readFileSync(job.ready, 'utf8') !== '', 'the command to start');
      const { u, p } = seenBy(job.seen);
      expect(await alive(u), 'the user exists while the command runs').to.equal(true);
      const session = await target.login(u, p);
      expect((await session.query(`SELECT v FROM ${target.table}`)).rows).to.deep.equal([{ v: 'hello' }]);
      return { username: u, session };
    };

    it('SIGKILL of the command: nexus-ci exits 137 (128 + 9); the token gets 401, the user is gone, its session ended', async () => {
      const job = startWaiting('killed');
      const { username, session } = await jobSession(job);
      const token = lastToken();
      expect(await status(token), 'live while the command runs').to.equal(200);
      process.kill(Number(fs.readFileSync(job.ready, 'utf8')), 'SIGKILL');
      const r = await job.done;
      expect(r.code, r.stderr).to.equal(137);
      expect(await status(token)).to.equal(401);
      expect(await alive(username)).to.equal(false);
      expect(await ended(session)).to.equal(true);
    });

    it('SIGTERM to nexus-ci: forwarded to the command, which is waited for; then the token is revoked; nexus-ci exits with the command\'s status', async () => {
      const marker = path.join(dir, 'terminated');
      const job = startWaiting('trapped', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'cleaned up'); setTimeout(() => process.exit(5), 300)`);
      const { username, session } = await jobSession(job);
      const token = lastToken();
      expect(await status(token)).to.equal(200);
      process.kill(job.pid(), 'SIGTERM');
      const r = await job.done;
      expect(r.signal, 'nexus-ci itself does not die of the signal').to.equal(null);
      expect(r.code, r.stderr).to.equal(5);
      expect(fs.readFileSync(marker, 'utf8')).to.equal('cleaned up');
      expect(await status(token)).to.equal(401);
      expect(await alive(username)).to.equal(false);
      expect(await ended(session)).to.equal(true);
    });

    it('SIGINT to nexus-ci, a command that dies of it: exit 130 (128 + 2), token 401', async () => {
      const job = startWaiting('interrupted');
      const { username, session } = await jobSession(job);
      const token = lastToken();
      process.kill(job.pid(), 'SIGINT');
      const r = await job.done;
      expect(r.code, r.stderr).to.equal(130);
      expect(await status(token)).to.equal(401);
      expect(await alive(username)).to.equal(false);
      await session.end().catch(() => {});
    });

    it('SIGTERM to nexus-ci while it is still fetching: the command never starts, the token (and the lease) are given back, exit 143', async () => {
      tap.hold(`/v1/db/creds/${deploy}`);
      const job = startWaiting('early');
      await until(() => tap.held() === 1, 'nexus-ci to ask for the credentials (held)');
      const token = lastToken();
      process.kill(job.pid(), 'SIGTERM');
      // Nothing to observe from outside until the fetch ends: the signal is caught, not fatal.
      await until(async () => (await status(token)) === 200, 'the token to be live');
      tap.release();
      const r = await job.done;
      expect(r.code, r.stderr).to.equal(143);
      expect(fs.existsSync(job.ready), 'the command never ran').to.equal(false);
      expect(await status(token)).to.equal(401);
      // The lease minted after the signal went with the token: no user of the role is left.
      const leases = await env.admin('GET', `/v1/leases?prefix=db/creds/${deploy}`);
      expect((leases.body as { leases: { state: string }[] }).leases.filter((l) => l.state === 'active')).to.deep.equal([]);
      expect(await target.users(`v_${deploy}_`)).to.deep.equal([]);
    });

    it('--db-creds: PREFIX_USERNAME and PREFIX_PASSWORD reach only the command\'s environment; the lease ends with the command', async () => {
      const seen = path.join(dir, 'db-seen.json');
      const child = `require('fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ u: process.env.PG_USERNAME, p: process.env.PG_PASSWORD, r: process.env.RO_USERNAME, rp: process.env.RO_PASSWORD }))`;
      const r = await nexusCi(base('--db-creds', `${deploy} | PG_`, '--db-creds', `${report} | RO_`, '--print-ids', 'exec', '--', process.execPath, '-e', child));
      expect(r.code, r.stderr).to.equal(0);
      const got = JSON.parse(fs.readFileSync(seen, 'utf8')) as { u: string; p: string; r: string; rp: string };
      expect(got.u).to.match(new RegExp(`^v_${deploy}_`));
      expect(got.r).to.match(new RegExp(`^v_${report}_`));
      expect(got.p).to.be.a('string').with.length.greaterThan(20);
      expect(got.rp).to.be.a('string').and.not.equal(got.p);
      expect(r.stdout).to.equal('');
      for (const v of Object.values(got)) expect(r.stderr).to.not.include(v);
      // Both leases were the token's and ended with it: neither is active any more, neither user is left.
      const ids = [...r.stderr.matchAll(/lease (\S+) \(db-creds/g)].map((m) => m[1]!);
      expect(ids).to.have.length(2);
      for (const [i, role, username] of [[0, deploy, got.u], [1, report, got.r]] as const) {
        expect(ids[i]).to.match(new RegExp(`^db/creds/${role}/`));
        const listed = (await env.admin('GET', `/v1/leases?prefix=db/creds/${role}`)).body as { leases: { lease_id: string; state: string }[] };
        expect(listed.leases.filter((l) => l.lease_id === ids[i] && l.state === 'active')).to.deep.equal([]);
        expect(await alive(username)).to.equal(false);
      }
      expect(await status(lastToken())).to.equal(401);
    });

    it('--print-ids: the token id and each lease id on stderr, never a value', async () => {
      const seen = path.join(dir, 'ids-seen.json');
      const r = await nexusCi(base('--db-creds', `${deploy} | PG_`, '--print-ids', 'exec', '--', process.execPath, '-e', childRecording(seen)));
      expect(r.code, r.stderr).to.equal(0);
      const { u, p } = seenBy(seen);
      const leaseId = /lease (\S+) \(db-creds/.exec(r.stderr)?.[1];
      expect(leaseId).to.match(new RegExp(`^db/creds/${deploy}/`));
      expect(r.stderr).to.include(`nexus-ci: token id ${tokenId(lastToken())}\n`);
      expect(r.stderr).to.include(`nexus-ci: lease ${leaseId} (db-creds "${deploy} | PG_", 900 s)\n`);
      expect(r.stderr).to.not.include(p);
      expect(r.stderr).to.not.include(u);
      expect(r.stderr).to.not.include(lastToken());
      expect(r.stdout).to.equal('');
    });

    it('--no-revoke keeps the token (and its leases) to their TTL', async () => {
      const seen = path.join(dir, 'kept.json');
      const r = await nexusCi(base('--db-creds', `${deploy} | PG_`, '--no-revoke', 'exec', '--', process.execPath, '-e', childRecording(seen)));
      expect(r.code, r.stderr).to.equal(0);
      expect(await status(lastToken())).to.equal(200);
      const { u } = seenBy(seen);
      expect(await alive(u)).to.equal(true);
      expect((await env.oidc(lastToken(), 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
      expect(await alive(u)).to.equal(false);
    });
  });

  describe('--token-out FILE, then `nexus-ci revoke --token-file FILE` (GitLab after_script)', () => {
    const tokenFile = () => path.join(dir, 'nexus.token');
    const revoke = (file = tokenFile()) => nexusCi(['revoke', '--token-file', file, '--url', tap.url, '--ca', caFile]);

    it('the token file: mode 0600, the token and nothing else; the token and its leases live on until revoke, which removes the file', async () => {
      const out = path.join(dir, 'db.env');
      const r = await nexusCi(base('--secret', 'ci/acme/api/db password | DB_PASSWORD', '--db-creds', `${deploy} | PG_`, '--token-out', tokenFile(), '--format', 'dotenv', '--out', out));
      expect(r.code, r.stderr).to.equal(0);
      const token = lastToken();
      expect(fs.statSync(tokenFile()).mode & 0o777).to.equal(0o600);
      expect(fs.readFileSync(tokenFile(), 'utf8')).to.equal(`${token}\n`);
      expect(r.stderr).to.not.include(token);
      expect(r.stderr).to.include(`token ${tokenId(token)}`);
      const dotenv = fs.readFileSync(out, 'utf8');
      const username = /^PG_USERNAME='([^']+)'$/m.exec(dotenv)?.[1];
      const password = /^PG_PASSWORD='([^']+)'$/m.exec(dotenv)?.[1];
      expect(username).to.match(new RegExp(`^v_${deploy}_`));
      expect(await status(token)).to.equal(200);
      // A later step of the job uses the user; its session is still open when after_script runs.
      const session = await target.login(username!, password!);
      expect((await session.query(`SELECT v FROM ${target.table}`)).rows).to.deep.equal([{ v: 'hello' }]);

      const done = await revoke();
      expect(done.code, done.stderr).to.equal(0);
      expect(done.stderr).to.equal(`nexus-ci: revoked the job's token ${tokenId(token)} and its leases\n`);
      expect(fs.existsSync(tokenFile())).to.equal(false);
      expect(await status(token)).to.equal(401);
      expect(await alive(username!), 'the database user is gone').to.equal(false);
      expect(await ended(session), 'its session was ended').to.equal(true);

      // Idempotent: a token already gone (revoked, expired) is no failure, and its file goes too.
      fs.writeFileSync(tokenFile(), `${token}\n`, { mode: 0o600 });
      const again = await revoke();
      expect(again.code, again.stderr).to.equal(0);
      expect(again.stderr).to.equal(`nexus-ci: the job's token ${tokenId(token)} was already revoked or expired\n`);
      expect(fs.existsSync(tokenFile())).to.equal(false);
    });

    it('a missing file: exit 1 saying so, nothing sent', async () => {
      const before = tap.tokens.length;
      const r = await revoke(path.join(dir, 'absent.token'));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^nexus-ci: no token to revoke: .*absent\.token does not exist \(was it written by --token-out, in this job's directory\?\)/);
      expect(tap.tokens.length).to.equal(before);
    });

    for (const [name, content] of [['an empty file', ''], ['a garbled file', 'not a token at all\nsecond line\n'], ['binary junk', '\u0000\u0001nxo_']] as const) {
      it(`${name}: exit 1 naming the file, nothing sent, the file left for a look`, async () => {
        const file = path.join(dir, 'garbled.token');
        fs.writeFileSync(file, content, { mode: 0o600 });
        const before = tap.tokens.length;
        const r = await revoke(file);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.match(/^nexus-ci: .*garbled\.token does not hold a token written by --token-out/);
        expect(tap.tokens.length).to.equal(before);
        expect(fs.existsSync(file)).to.equal(true);
      });
    }

    it('a server that cannot be reached: exit 1, the file kept for a retry', async () => {
      const r = await nexusCi(base('--secret', 'ci/acme/api/db password | DB_PASSWORD', '--token-out', tokenFile(), '--format', 'json', '--out', path.join(dir, 'x.json')));
      expect(r.code, r.stderr).to.equal(0);
      const gone = await nexusCi(['revoke', '--token-file', tokenFile(), '--url', 'https://127.0.0.1:1', '--ca', caFile]);
      expect(gone.code).to.equal(1);
      expect(gone.stderr).to.match(/could not revoke the job's token [0-9a-f]{16} .*cannot reach/);
      expect(fs.existsSync(tokenFile())).to.equal(true);
      expect((await revoke()).code).to.equal(0);
    });
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['db-creds with --format and nothing to revoke them later', ['--db-creds', 'deploy | PG_', '--format', 'json', '--out', '/tmp/x'], /--db-creds with --format or --github-env needs --token-out FILE .*or --no-revoke/],
    ['--token-out with exec (exec gives the token back itself)', ['--secret', 'ci/acme/api/db password | X', '--token-out', '/tmp/t', 'exec', '--', 'true'], /--token-out is for a later `nexus-ci revoke`; exec gives the token back itself/],
    ['a bad db-creds line', ['--db-creds', 'deploy DB_', 'exec', '--', 'true'], /db-creds "deploy DB_": expected "ROLE \| PREFIX_"/],
    ['neither --secret nor --db-creds', ['exec', '--', 'true'], /at least one --secret or --db-creds/],
    ['revoke without --token-file', ['revoke'], /revoke needs --token-file FILE/],
  ];
  for (const [name, extra, message] of usage) {
    it(`usage error (exit 2): ${name}`, async () => {
      const args = extra[0] === 'revoke' ? [...extra, '--url', tap.url] : ['--jwt-env', 'NEXUS_JWT', '--url', tap.url, '--ca', caFile, ...extra];
      const r = await nexusCi(args);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(message);
    });
  }
});
