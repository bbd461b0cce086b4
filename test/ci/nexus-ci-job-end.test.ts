import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startDbCredsStandIn, type DbCredsStandIn } from '../helpers/db-creds-standin.js';
import { ROOT, runNode, tempDir, type RunResult } from '../helpers/env.js';
import { gitlab } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { until } from '../helpers/wait.js';

const BIN = path.join(ROOT, 'scripts/ci/dist/nexus-ci.mjs');
const tokenId = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 16);

// Credentials that end with the job: nexus-ci gives its exchanged token back
// (and the server the leases minted with it) however the job's command ends,
// or in a later step (`nexus-ci revoke --token-file`, GitLab's after_script).
// The stand-in before Nexus answers db/creds (not on the server yet) and
// records the token, so each test can ask the real server whether it lives.
describe('nexus-ci: the job\'s token and leases end with the job', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  let standIn: DbCredsStandIn;
  let dir: string;
  let caFile: string;
  let jobEnv: Record<string, string>;
  const base = (...extra: string[]) => ['--jwt-env', 'NEXUS_JWT', '--url', standIn.url, '--ca', caFile, '--role', 'api-db', ...extra];
  const nexusCi = (args: string[], extraEnv: Record<string, string> = {}) => runNode([BIN, ...args], { ...jobEnv, ...extraEnv });
  const lastToken = () => standIn.tokens.at(-1)!;
  const status = async (token: string) => (await env.oidc(token, 'GET', '/v1/whoami')).status;

  before(async () => {
    env = await startOidcEnv();
    standIn = await startDbCredsStandIn(env);
    await env.admin('PUT', '/v1/secrets/ci/acme/api/db', { data: { password: 'gl-db-pw' } });
    const r = await env.admin('PUT', '/v1/oidc/roles/api-db', { issuer: 'ci', bound_claims: { project_path: 'acme/api' }, paths: ['ci/acme/api/*', 'db/creds/*'], permissions: ['read'] });
    expect(r.status, r.text).to.equal(201);
    dir = tempDir('nexus-ci-job-end');
    caFile = path.join(dir, 'ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    jobEnv = { NEXUS_JWT: await env.idp.token(gitlab('acme/api')) };
  });
  after(async () => {
    await standIn?.stop();
    await env?.stop();
  });

  describe('exec: revoked when the command ends, however it ends', () => {
    for (const code of [0, 3]) {
      it(`exit ${code}: nexus-ci exits ${code}; the token was live for the command and gets 401 afterwards`, async () => {
        const seen = path.join(dir, `seen-${code}`);
        const child = `require('fs').writeFileSync(${JSON.stringify(seen)}, 'ran'); process.exit(${code})`;
        const r = await nexusCi(base('--secret', 'ci/acme/api/db password | DB_PASSWORD', 'exec', '--', process.execPath, '-e', child));
        expect(r.code, r.stderr).to.equal(code);
        expect(fs.readFileSync(seen, 'utf8')).to.equal('ran');
        expect(r.stderr).to.equal('');
        expect(await status(lastToken())).to.equal(401);
      });
    }

    /** nexus-ci exec of a child that writes its pid to `ready` and then waits; `trap`: code it runs on SIGTERM. */
    function startWaiting(name: string, trap?: string, role = 'deploy'): { ready: string; done: Promise<RunResult>; pid: () => number } {
      const ready = path.join(dir, `${name}.pid`);
      const child = `${trap ? `process.on('SIGTERM', () => { ${trap} });` : ''} require('fs').writeFileSync(${JSON.stringify(ready)}, String(process.pid)); setInterval(() => {}, 1000)`;
      const proc = spawn(process.execPath, [BIN, ...base('--secret', 'ci/acme/api/db password | DB_PASSWORD', '--db-creds', `${role} | PG_`, 'exec', '--', process.execPath, '-e', child)], {
        env: { PATH: process.env.PATH, ...jobEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<RunResult>((resolve) => proc.on('close', (c, signal) => resolve({ code: c, signal, stdout, stderr })));
      return { ready, done, pid: () => proc.pid! };
    }

    it('SIGKILL of the command: nexus-ci exits 137 (128 + 9) and the token gets 401', async () => {
      const job = startWaiting('killed');
      await until(() => fs.existsSync(job.ready) && fs.readFileSync(job.ready, 'utf8') !== '', 'the command to start');
      const token = lastToken();
      expect(await status(token), 'live while the command runs').to.equal(200);
      process.kill(Number(fs.readFileSync(job.ready, 'utf8')), 'SIGKILL');
      const r = await job.done;
      expect(r.code, r.stderr).to.equal(137);
      expect(await status(token)).to.equal(401);
    });

    it('SIGTERM to nexus-ci: forwarded to the command, which is waited for; then the token is revoked; nexus-ci exits with the command\'s status', async () => {
      const marker = path.join(dir, 'terminated');
      const job = startWaiting('trapped', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'cleaned up'); setTimeout(() => process.exit(5), 300)`);
      await until(() => fs.existsSync(job.ready) && fs.readFileSync(job.ready, 'utf8') !== '', 'the command to start');
      const token = lastToken();
      expect(await status(token)).to.equal(200);
      process.kill(job.pid(), 'SIGTERM');
      const r = await job.done;
      expect(r.signal, 'nexus-ci itself does not die of the signal').to.equal(null);
      expect(r.code, r.stderr).to.equal(5);
      expect(fs.readFileSync(marker, 'utf8')).to.equal('cleaned up');
      expect(await status(token)).to.equal(401);
    });

    it('SIGINT to nexus-ci, a command that dies of it: exit 130 (128 + 2), token 401', async () => {
      const job = startWaiting('interrupted');
      await until(() => fs.existsSync(job.ready) && fs.readFileSync(job.ready, 'utf8') !== '', 'the command to start');
      const token = lastToken();
      process.kill(job.pid(), 'SIGINT');
      const r = await job.done;
      expect(r.code, r.stderr).to.equal(130);
      expect(await status(token)).to.equal(401);
    });

    it('SIGTERM to nexus-ci while it is still fetching: the command never starts, the token (and the lease) are given back, exit 143', async () => {
      const job = startWaiting('early', undefined, 'held');
      await until(() => standIn.held() === 1, 'nexus-ci to ask for the held credentials');
      const token = lastToken();
      process.kill(job.pid(), 'SIGTERM');
      // Nothing to observe from outside until the fetch ends: the signal is caught, not fatal.
      await until(async () => (await status(token)) === 200, 'the token to be live');
      standIn.release();
      const r = await job.done;
      expect(r.code, r.stderr).to.equal(143);
      expect(fs.existsSync(job.ready), 'the command never ran').to.equal(false);
      expect(await status(token)).to.equal(401);
    });

    it('--db-creds: PREFIX_USERNAME and PREFIX_PASSWORD reach only the command\'s environment; the lease ends with the command', async () => {
      const seen = path.join(dir, 'db-seen.json');
      const child = `require('fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ u: process.env.PG_USERNAME, p: process.env.PG_PASSWORD, r: process.env.RO_USERNAME }))`;
      const r = await nexusCi(base('--db-creds', 'deploy | PG_', '--db-creds', 'report | RO_', 'exec', '--', process.execPath, '-e', child));
      expect(r.code, r.stderr).to.equal(0);
      const [deploy, report] = standIn.leases.slice(-2);
      expect(JSON.parse(fs.readFileSync(seen, 'utf8'))).to.deep.equal({ u: deploy!.username, p: deploy!.password, r: report!.username });
      expect(r.stdout + r.stderr).to.equal('');
      expect(deploy!.token).to.equal(lastToken());
      expect(await status(lastToken())).to.equal(401);
    });

    it('--print-ids: the token id and each lease id on stderr, never a value', async () => {
      const r = await nexusCi(base('--db-creds', 'deploy | PG_', '--print-ids', 'exec', '--', 'true'));
      expect(r.code, r.stderr).to.equal(0);
      const lease = standIn.leases.at(-1)!;
      expect(r.stderr).to.include(`nexus-ci: token id ${tokenId(lastToken())}\n`);
      expect(r.stderr).to.include(`nexus-ci: lease ${lease.lease_id} (db-creds "deploy | PG_", 900 s)\n`);
      expect(r.stderr).to.not.include(lease.password);
      expect(r.stderr).to.not.include(lease.username);
      expect(r.stderr).to.not.include(lastToken());
      expect(r.stdout).to.equal('');
    });

    it('--no-revoke keeps the token (and its leases) to their TTL', async () => {
      const r = await nexusCi(base('--db-creds', 'deploy | PG_', '--no-revoke', 'exec', '--', 'true'));
      expect(r.code, r.stderr).to.equal(0);
      expect(await status(lastToken())).to.equal(200);
      expect((await env.oidc(lastToken(), 'POST', '/v1/auth/token/revoke-self')).status).to.equal(204);
    });
  });

  describe('--token-out FILE, then `nexus-ci revoke --token-file FILE` (GitLab after_script)', () => {
    const tokenFile = () => path.join(dir, 'nexus.token');
    const revoke = (file = tokenFile()) => nexusCi(['revoke', '--token-file', file, '--url', standIn.url, '--ca', caFile]);

    it('the token file: mode 0600, the token and nothing else; the token and its leases live on until revoke, which removes the file', async () => {
      const out = path.join(dir, 'db.env');
      const r = await nexusCi(base('--secret', 'ci/acme/api/db password | DB_PASSWORD', '--db-creds', 'deploy | PG_', '--token-out', tokenFile(), '--format', 'dotenv', '--out', out));
      expect(r.code, r.stderr).to.equal(0);
      const token = lastToken();
      expect(fs.statSync(tokenFile()).mode & 0o777).to.equal(0o600);
      expect(fs.readFileSync(tokenFile(), 'utf8')).to.equal(`${token}\n`);
      expect(r.stderr).to.not.include(token);
      expect(r.stderr).to.include(`token ${tokenId(token)}`);
      expect(fs.readFileSync(out, 'utf8')).to.include(`PG_PASSWORD='${standIn.leases.at(-1)!.password}'`);
      expect(await status(token)).to.equal(200);

      const done = await revoke();
      expect(done.code, done.stderr).to.equal(0);
      expect(done.stderr).to.equal(`nexus-ci: revoked the job's token ${tokenId(token)} and its leases\n`);
      expect(fs.existsSync(tokenFile())).to.equal(false);
      expect(await status(token)).to.equal(401);

      // Idempotent: a token already gone (revoked, expired) is no failure, and its file goes too.
      fs.writeFileSync(tokenFile(), `${token}\n`, { mode: 0o600 });
      const again = await revoke();
      expect(again.code, again.stderr).to.equal(0);
      expect(again.stderr).to.equal(`nexus-ci: the job's token ${tokenId(token)} was already revoked or expired\n`);
      expect(fs.existsSync(tokenFile())).to.equal(false);
    });

    it('a missing file: exit 1 saying so, nothing sent', async () => {
      const before = standIn.tokens.length;
      const r = await revoke(path.join(dir, 'absent.token'));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^nexus-ci: no token to revoke: .*absent\.token does not exist \(was it written by --token-out, in this job's directory\?\)/);
      expect(standIn.tokens.length).to.equal(before);
    });

    for (const [name, content] of [['an empty file', ''], ['a garbled file', 'not a token at all\nsecond line\n'], ['binary junk', '\u0000\u0001nxo_']] as const) {
      it(`${name}: exit 1 naming the file, nothing sent, the file left for a look`, async () => {
        const file = path.join(dir, 'garbled.token');
        fs.writeFileSync(file, content, { mode: 0o600 });
        const before = standIn.tokens.length;
        const r = await revoke(file);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.match(/^nexus-ci: .*garbled\.token does not hold a token written by --token-out/);
        expect(standIn.tokens.length).to.equal(before);
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
      const args = extra[0] === 'revoke' ? [...extra, '--url', standIn.url] : ['--jwt-env', 'NEXUS_JWT', '--url', standIn.url, '--ca', caFile, ...extra];
      const r = await nexusCi(args);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(message);
    });
  }
});
