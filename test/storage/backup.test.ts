import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { integrityCheck } from '../../nexus/storage/db.js';
import { ROOT, openTestCore, runBin, tempDir, testEnv } from '../helpers/env.js';

describe('backup and restore', function () {
  this.timeout(60_000);

  it('copies the db consistently while another process writes, and the copy restores and reads back', async () => {
    const dir = tempDir();
    const core = await openTestCore(dir);
    const fixed = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      fixed.set(`fixed/s${i}`, `value-${i}`);
      await core.secrets.put(`fixed/s${i}`, { v: `value-${i}` });
    }
    core.close();

    // A writer keeps the db busy during the backup.
    const writer = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/busy-writer.ts')], {
      cwd: ROOT,
      env: { ...process.env, ...testEnv(dir) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let writerOut = '';
    await new Promise<void>((resolve) =>
      writer.stdout.on('data', (d: Buffer) => {
        writerOut += d.toString();
        if (writerOut.includes('ready')) resolve();
      }),
    );
    const backupFile = path.join(tempDir('nexus-backup'), 'nexus-backup.db');
    const res = await runBin('nexus-backup', [backupFile], testEnv(dir));
    writer.stdin.end();
    await new Promise((r) => writer.on('close', r));
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/backup written to .*: \d+ secret\(s\), schema \d+, integrity ok/);
    expect(writerOut).to.match(/wrote [1-9]\d*/);
    expect(fs.statSync(backupFile).mode & 0o777).to.equal(0o600);

    // Refuses to overwrite without --force.
    const again = await runBin('nexus-backup', [backupFile], testEnv(dir));
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('--force');

    // Restore as README says: a new data dir holding the copy as nexus.db, and the same root key.
    const restored = tempDir('nexus-restore');
    fs.copyFileSync(backupFile, path.join(restored, 'nexus.db'));
    fs.copyFileSync(path.join(dir, 'root.key'), path.join(restored, 'root.key'));
    const r = await openTestCore(restored);
    try {
      expect(integrityCheck(r.db)).to.equal('ok');
      for (const [p, v] of fixed) expect((await r.secrets.get(p)).data).to.deep.equal({ v });
      const busy = (await r.secrets.list({ prefix: 'busy/' })).paths;
      expect(busy.length).to.be.greaterThan(0);
      for (const p of busy) expect((await r.secrets.get(p)).data.n).to.match(/^\d+$/);
    } finally {
      r.close();
    }
  });

  it('fails clearly when there is no database', async () => {
    const res = await runBin('nexus-backup', [path.join(tempDir(), 'x.db')], testEnv(tempDir()));
    expect(res.code).to.equal(1);
    expect(res.stderr).to.match(/nexus-backup: error: no database at/);
  });
});
