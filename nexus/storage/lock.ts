import fs from 'node:fs';
import path from 'node:path';
import { StartupError } from '../errors.js';

export interface DataDirLock {
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One process at a time may own the data dir for writing work that must not
 * overlap (the server, key rotation, migrations). A lock left by a dead
 * process is taken over.
 */
export function lockDataDir(dataDir: string, owner: string): DataDirLock {
  const file = path.join(dataDir, 'nexus.lock');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, `${process.pid} ${owner}\n`);
      fs.closeSync(fd);
      return {
        release: () => {
          try {
            if (fs.readFileSync(file, 'utf8').startsWith(`${process.pid} `)) fs.unlinkSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [pidText, holder] = fs.readFileSync(file, 'utf8').trim().split(' ');
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new StartupError(`the data dir ${dataDir} is in use by ${holder ?? 'another process'} (pid ${pid}); stop it first`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new StartupError(`could not lock the data dir ${dataDir}`);
}
