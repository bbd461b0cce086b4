import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Core } from '../../nexus/core.js';
import { integrityCheck } from '../../nexus/storage/db.js';
import { lockDataDir } from '../../nexus/storage/lock.js';
import { ROOT, openTestCore, runBin, tempDir, testEnv } from '../helpers/env.js';

const SECRETS = 3000;

async function seed(core: Core): Promise<Map<string, Record<string, string>>> {
  const expected = new Map<string, Record<string, string>>();
  await core.storage.tx(async () => {
    for (let i = 0; i < SECRETS; i++) {
      const p = `rot/s${i}`;
      await core.secrets.put(p, { v: `first-${i}` });
      if (i % 3 === 0) {
        await core.secrets.put(p, { v: `second-${i}` });
      }
      expected.set(p, { v: i % 3 === 0 ? `second-${i}` : `first-${i}` });
    }
  });
  await core.secrets.destroy('rot/s0', [1]);
  return expected;
}

async function expectAllReadable(dir: string, expected: Map<string, Record<string, string>>): Promise<void> {
  const core = await openTestCore(dir);
  try {
    expect(integrityCheck(core.db)).to.equal('ok');
    for (const [p, data] of expected) expect((await core.secrets.get(p)).data, p).to.deep.equal(data);
    expect((await core.secrets.get('rot/s3', 1)).data).to.deep.equal({ v: 'first-3' });
  } finally {
    core.close();
  }
}

/** Runs nexus-rotate-key and SIGKILLs it after `killAtLine` progress lines; resolves true if it finished first. */
function rotateKilledAt(dir: string, args: string[], killAtLine: number): Promise<{ finished: boolean; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/bin/nexus-rotate-key.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...testEnv(dir) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let lines = 0;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      lines += d.toString().split('\n').length - 1;
      if (lines >= killAtLine) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ finished: false, out });
      else if (code === 0) resolve({ finished: true, out });
      else reject(new Error(`nexus-rotate-key exited ${code}: ${out}`));
    });
  });
}

async function rotateThroughKills(dir: string, args: string[]): Promise<{ kills: number; out: string }> {
  for (let kills = 0; kills < 40; kills++) {
    const { finished, out } = await rotateKilledAt(dir, args, 1 + Math.floor(Math.random() * 40));
    if (finished) return { kills, out };
    // While a rotation is half done the server must refuse to start, naming the fix.
    try {
      const core = await openTestCore(dir);
      core.close(); // killed before the rotation was recorded: the old key still serves
    } catch (err) {
      expect((err as Error).message).to.include('nexus-rotate-key');
    }
  }
  throw new Error('rotation never finished');
}

describe('root key rotation', function () {
  this.timeout(300_000);

  it('re-encrypts a few thousand secrets, killed at random points and re-run, losing nothing', async () => {
    const dir = tempDir();
    const keyFile = path.join(dir, 'root.key');
    const core = await openTestCore(dir);
    const expected = await seed(core);
    const firstKeyIds = (core.db.prepare('SELECT id FROM data_keys').all() as Array<{ id: string }>).map((r) => r.id);
    core.close();
    const oldKey = fs.readFileSync(keyFile, 'utf8');

    const { kills, out } = await rotateThroughKills(dir, ['--reencrypt', '--batch-size', '50']);
    expect(out).to.match(/rotated the root key|finished an interrupted rotation/);
    expect(kills, 'the random kills should land mid-run at least once').to.be.greaterThan(0);
    const newKey = fs.readFileSync(keyFile, 'utf8');
    expect(newKey).to.not.equal(oldKey);
    expect(fs.statSync(keyFile).mode & 0o777).to.equal(0o600);
    expect(fs.existsSync(`${keyFile}.new`)).to.equal(false);
    await expectAllReadable(dir, expected);

    // Every live version now sits under one new data key; the old ones are gone.
    const after = await openTestCore(dir);
    const keyIds = after.db.prepare('SELECT DISTINCT key_id FROM secret_versions WHERE key_id IS NOT NULL').all() as Array<{ key_id: string }>;
    expect(keyIds).to.have.length(1);
    expect(firstKeyIds).to.not.include(keyIds[0]!.key_id);
    expect((after.db.prepare('SELECT count(*) AS n FROM data_keys').get() as { n: number }).n).to.equal(1);
    after.close();

    // The old key no longer opens the database.
    try {
      (await openTestCore(dir, { NEXUS_ROOT_KEY: oldKey.trim() })).close();
      expect.fail('the old root key was accepted');
    } catch (err) {
      expect((err as Error).message).to.match(/does not match this database/);
    }
  });

  it('re-wraps data keys without --reencrypt, and finishes an interrupted final swap', async () => {
    const dir = tempDir();
    const keyFile = path.join(dir, 'root.key');
    const core = await openTestCore(dir);
    const expected = await seed(core);
    core.close();
    const first = fs.readFileSync(keyFile, 'utf8');
    const r1 = await runBin('nexus-rotate-key', [], testEnv(dir));
    expect(r1.code, r1.stderr).to.equal(0);
    expect(r1.stdout).to.match(/rotated the root key: 1 data key\(s\) re-wrapped/);
    expect(r1.stdout).to.match(/rewrap 1\/1/); // progress lines when not on a TTY
    const second = fs.readFileSync(keyFile, 'utf8');
    expect(second).to.not.equal(first);
    await expectAllReadable(dir, expected);

    // Simulate a kill after the final commit but before the rename.
    fs.writeFileSync(`${keyFile}.new`, second, { mode: 0o600 });
    fs.writeFileSync(keyFile, first, { mode: 0o600 });
    try {
      (await openTestCore(dir)).close();
      expect.fail('started with the pre-rotation key');
    } catch (err) {
      expect((err as Error).message).to.match(/interrupted nexus-rotate-key/);
    }
    const r2 = await runBin('nexus-rotate-key', [], testEnv(dir));
    expect(r2.code, r2.stderr).to.equal(0);
    expect(r2.stdout).to.include('finished an interrupted rotation');
    expect(fs.readFileSync(keyFile, 'utf8')).to.equal(second);
    await expectAllReadable(dir, expected);
  });

  it('refuses to run while another process holds the data dir, or with NEXUS_ROOT_KEY', async () => {
    const dir = tempDir();
    (await openTestCore(dir)).close();
    const held = lockDataDir(dir, 'nexus-server');
    const busy = await runBin('nexus-rotate-key', [], testEnv(dir));
    held.release();
    expect(busy.code).to.equal(1);
    expect(busy.stderr).to.match(/in use by nexus-server/);
    const inline = await runBin('nexus-rotate-key', [], testEnv(dir, { NEXUS_ROOT_KEY: fs.readFileSync(path.join(dir, 'root.key'), 'utf8').trim() }));
    expect(inline.code).to.equal(1);
    expect(inline.stderr).to.match(/unset NEXUS_ROOT_KEY/);
  });
});
