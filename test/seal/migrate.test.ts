import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Env } from '../../nexus/config/index.js';
import { ROOT, runBin, tempDir, testEnv } from '../helpers/env.js';
import { call, startTestServer } from '../helpers/server.js';
import { initSoftToken, type SoftToken } from '../helpers/softhsm.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** nexus-operator migrate-seal, SIGKILLed after `killAfterMs` (or let finish). */
function migrate(env: Env, args: string[], input: string, killAfterMs: number | null): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/bin/nexus-operator.js'), 'migrate-seal', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    const timer = killAfterMs === null ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

describe('migrate-seal file -> shamir -> pkcs11 -> file, killed at random points and re-run', function () {
  this.timeout(240_000);
  let token: SoftToken;
  let dir: string;
  const saved = process.env.SOFTHSM2_CONF;
  const written: Record<string, string> = {};

  before(() => {
    token = initSoftToken();
    // The pkcs11 server below runs in this process: SoftHSM2 reads its config from here.
    process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
    dir = tempDir('nexus-migrate');
  });
  after(() => {
    if (saved === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = saved;
  });

  /** A server in `env`'s mode writes one secret and reads every earlier one. */
  async function serveOnce(env: Env, label: string, unseal: string[] = []): Promise<void> {
    const t = await startTestServer(env, { dir });
    try {
      for (const key of unseal) expect((await call(t.port, t.admin, 'PUT', '/v1/sys/unseal', { key })).status).to.equal(200);
      for (const [p, v] of Object.entries(written)) expect((await call(t.port, t.admin, 'GET', `/v1/secrets/${p}`)).body.data, `${label}: ${p}`).to.deep.equal({ v });
      const p = `m/${label}`;
      expect((await call(t.port, t.admin, 'PUT', `/v1/secrets/${p}`, { data: { v: `value-${label}` } })).status).to.equal(201);
      written[p] = `value-${label}`;
    } finally {
      await t.stop();
    }
  }

  /** Runs a migration, killing up to three attempts at random times, until one reports success; returns the shares last printed. */
  async function migrateKilled(env: Env, to: string, input = ''): Promise<string[] | null> {
    let shares: string[] | null = null;
    const take = (r: Run) => {
      const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) shares = (JSON.parse(line) as { shares: string[] }).shares;
    };
    for (let i = 0; i < 3; i++) take(await migrate(testEnv(dir, env), ['--to', to, '--shares', '3', '--threshold', '2', '--json'], input, 300 + Math.floor(Math.random() * 2500)));
    const done = await migrate(testEnv(dir, env), ['--to', to, '--shares', '3', '--threshold', '2', '--json'], input, null);
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stderr).to.match(new RegExp(`(migrated the seal: \\w+ -> ${to}|the seal is already ${to})`));
    take(done);
    return shares;
  }

  it('every secret reads in every mode, no key file is left in sealed modes, and the trail verifies', async () => {
    await serveOnce({}, 'file1');
    const keyFile = path.join(dir, 'root.key');
    expect(fs.existsSync(keyFile)).to.equal(true);

    const shamirShares = await migrateKilled({}, 'shamir');
    expect(shamirShares).to.have.length(3);
    expect(fs.existsSync(keyFile)).to.equal(false);
    await serveOnce({ NEXUS_SEAL: 'shamir' }, 'shamir', shamirShares!.slice(1));
    // Sealed, nexus-audit opens the seal as the server does: shares on stdin.
    const sealedVerify = await runBin('nexus-audit', ['verify'], testEnv(dir, { NEXUS_SEAL: 'shamir' }), { input: `${shamirShares![0]}\n${shamirShares![1]}\n` });
    expect(sealedVerify.code, sealedVerify.stdout + sealedVerify.stderr).to.equal(0);

    const recovery = await migrateKilled({ ...token.env, NEXUS_SEAL: 'shamir' }, 'pkcs11', `${shamirShares![0]}\n${shamirShares![2]}\n`);
    expect(recovery).to.have.length(3);
    await serveOnce(token.env, 'pkcs11');
    const tokenVerify = await runBin('nexus-audit', ['verify'], testEnv(dir, token.env));
    expect(tokenVerify.code, tokenVerify.stdout + tokenVerify.stderr).to.equal(0);

    expect(await migrateKilled({ ...token.env }, 'file')).to.equal(null);
    expect(fs.existsSync(keyFile)).to.equal(true);
    await serveOnce({}, 'file2');

    const verify = await runBin('nexus-audit', ['verify'], testEnv(dir));
    expect(verify.code, verify.stdout + verify.stderr).to.equal(0);
    const trail = fs.readFileSync(path.join(dir, 'audit-scripts.jsonl'), 'utf8');
    for (const m of ['file -> shamir', 'shamir -> pkcs11', 'pkcs11 -> file']) expect(trail).to.include(`seal.migrate ${m}`);
  });

  it('from shamir without a quorum on stdin: refused, nothing changed', async () => {
    const d2 = tempDir('nexus-migrate-bad');
    const init = await runBin('nexus-operator', ['init', '--shares', '3', '--threshold', '2', '--json'], testEnv(d2, { NEXUS_SEAL: 'shamir' }));
    const shares = (JSON.parse(init.stdout) as { shares: string[] }).shares;
    const one = await migrate(testEnv(d2, {}), ['--to', 'file'], `${shares[0]}\n`, null);
    expect(one.code).to.equal(1);
    expect(one.stderr).to.include('2 unseal shares are needed');
    const bad = await migrate(testEnv(d2, {}), ['--to', 'file'], `${shares[0]}\n${shares[0]!.slice(0, 30)}x\n`, null);
    expect(bad.code).to.equal(1);
    expect(fs.existsSync(path.join(d2, 'root.key'))).to.equal(false);
  });
});
