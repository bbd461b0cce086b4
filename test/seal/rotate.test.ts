import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Env } from '../../nexus/config/index.js';
import { ROOT, tempDir, testEnv } from '../helpers/env.js';
import { operatorInit } from '../helpers/seal.js';
import { call, startTestServer } from '../helpers/server.js';
import { initSoftToken } from '../helpers/softhsm.js';

function rotate(env: Env, input: string, killAfterMs: number | null): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/bin/nexus-rotate-key.js'), '--json', '--batch-size', '2'], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv });
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

const sharesOf = (stdout: string): string[] | null => {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  return line ? (JSON.parse(line) as { shares: string[] }).shares : null;
};

describe('nexus-rotate-key under a seal', function () {
  this.timeout(180_000);

  it('shamir: the old shares open the rotation, new shares are printed, only they unseal, every secret reads', async () => {
    const dir = tempDir('nexus-rotate-shamir');
    const env = { NEXUS_SEAL: 'shamir' };
    const { shares } = await operatorInit(dir, env, 3, 2);
    let t = await startTestServer(env, { dir });
    for (const key of shares.slice(0, 2)) await call(t.port, t.admin, 'PUT', '/v1/sys/unseal', { key });
    for (let i = 0; i < 5; i++) expect((await call(t.port, t.admin, 'PUT', `/v1/secrets/r/s${i}`, { data: { v: `v${i}` } })).status).to.equal(201);
    const oldKcv = t.server.core.rootKey.kcv;
    await t.stop();
    const r = await rotate(testEnv(dir, env), `${shares[0]}\n${shares[1]}\n`, null);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include(`(check value ${oldKcv} -> `);
    const fresh = sharesOf(r.stdout)!;
    expect(fresh).to.have.length(3);
    t = await startTestServer(env, { dir });
    try {
      const refused = await call(t.port, t.admin, 'PUT', '/v1/sys/unseal', { key: shares[0] });
      expect(refused.status).to.equal(400);
      expect(refused.text).to.include('another split');
      for (const key of fresh.slice(1)) await call(t.port, t.admin, 'PUT', '/v1/sys/unseal', { key });
      expect(t.server.core.rootKey.kcv).to.not.equal(oldKcv);
      for (let i = 0; i < 5; i++) expect((await call(t.port, t.admin, 'GET', `/v1/secrets/r/s${i}`)).body.data).to.deep.equal({ v: `v${i}` });
    } finally {
      await t.stop();
    }
  });

  it('pkcs11: killed at random points and re-run, the server starts unattended on the new key and every secret reads', async () => {
    const token = initSoftToken();
    const saved = process.env.SOFTHSM2_CONF;
    process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
    try {
      const dir = tempDir('nexus-rotate-pkcs11');
      await operatorInit(dir, token.env, 3, 2);
      let t = await startTestServer(token.env, { dir });
      for (let i = 0; i < 20; i++) expect((await call(t.port, t.admin, 'PUT', `/v1/secrets/p/s${i}`, { data: { v: `v${i}` } })).status).to.equal(201);
      const oldKcv = t.server.core.rootKey.kcv;
      await t.stop();
      for (let i = 0; i < 3; i++) await rotate(testEnv(dir, token.env), '', 300 + Math.floor(Math.random() * 2000));
      const last = await rotate(testEnv(dir, token.env), '', null);
      expect(last.code, last.stderr).to.equal(0);
      t = await startTestServer(token.env, { dir });
      try {
        expect(t.server.core.rootKey.kcv).to.not.equal(oldKcv);
        for (let i = 0; i < 20; i++) expect((await call(t.port, t.admin, 'GET', `/v1/secrets/p/s${i}`)).body.data).to.deep.equal({ v: `v${i}` });
      } finally {
        await t.stop();
      }
    } finally {
      if (saved === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = saved;
    }
  });
});
