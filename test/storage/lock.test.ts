import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { lockDataDir } from '../../nexus/storage/lock.js';
import { ROOT, runBin, tempDir, testEnv } from '../helpers/env.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';

const NEXUS = path.join(ROOT, 'scripts/bin/nexus.js');

/** Waits for a server started with spawnServer to exit; kills it first if asked. */
async function killed(s: ServerProcess, signal: NodeJS.Signals): Promise<void> {
  s.child.kill(signal);
  await s.exited;
}

describe('data-dir lock', function () {
  this.timeout(180_000);

  it('a SIGKILLed server can be restarted at once, 10 times in a row', async () => {
    const dir = tempDir();
    let s = await spawnServer(testEnv(dir));
    try {
      for (let round = 0; round < 10; round++) {
        s.child.kill('SIGKILL');
        // The next start begins right away: it does not wait for the old process to be reaped.
        const next = spawnServer(testEnv(dir));
        const old = s;
        s = await next.catch((err: Error) => {
          throw new Error(`round ${round}: restart after SIGKILL failed: ${err.message}`);
        });
        await old.exited;
      }
    } finally {
      await killed(s, 'SIGTERM');
    }
  });

  it('a killed server that is still a zombie (not yet reaped by its parent) does not block a restart', async () => {
    const dir = tempDir();
    // A parent that never reaps: the shell execs sleep after starting the server.
    const parent = spawn('sh', ['-c', `"${process.execPath}" "${NEXUS}" & echo "pid:$!"; exec sleep 60`], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...testEnv(dir), NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', NEXUS_LOG_LEVEL: 'info' } as NodeJS.ProcessEnv,
    });
    try {
      let out = '';
      const pid = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
        parent.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /pid:(\d+)/.exec(out);
          if (m && /"port":"mtls"/.test(out)) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      process.kill(pid, 'SIGKILL');
      // Wait until the kernel says it is a zombie (state Z), so the test really covers that case.
      for (let i = 0; i < 200; i++) {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (/\) Z /.test(stat)) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).to.match(/\) Z /);
      const s = await spawnServer(testEnv(dir));
      await killed(s, 'SIGTERM');
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a lock file left by another pid namespace (a live pid that is not a holder) does not block start', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'nexus.lock'), `${process.pid} nexus-server\n`);
    const s = await spawnServer(testEnv(dir));
    await killed(s, 'SIGTERM');
  });

  it('two concurrent starts on one data dir: exactly one runs, the other names the holder', async () => {
    for (const fresh of [true, false]) {
      const dir = tempDir();
      if (!fresh) await killed(await spawnServer(testEnv(dir)), 'SIGTERM');
      const starts = await Promise.allSettled([spawnServer(testEnv(dir)), spawnServer(testEnv(dir))]);
      const running = starts.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const refused = starts.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
      try {
        expect(running, `fresh=${fresh}`).to.have.length(1);
        expect(refused).to.have.length(1);
        expect(refused[0]).to.match(/data dir .* is in use by nexus-server \(pid \d+\)/);
      } finally {
        for (const s of running) await killed(s, 'SIGTERM');
      }
    }
  });

  it('in one process: a second lock on the same dir is refused until the first is released', () => {
    const dir = tempDir();
    const a = lockDataDir(dir, 'first');
    expect(() => lockDataDir(dir, 'second')).to.throw(/in use by first/);
    a.release();
    lockDataDir(dir, 'second').release();
  });

  it('admin scripts that need the data dir are refused while a server holds it', async () => {
    const dir = tempDir();
    const s = await spawnServer(testEnv(dir));
    try {
      const r = await runBin('nexus-rotate-key', [], testEnv(dir));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/in use by nexus-server/);
    } finally {
      await killed(s, 'SIGTERM');
    }
  });
});
