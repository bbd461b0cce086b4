import fs from 'node:fs';
import path from 'node:path';
import { flockSync } from 'fs-ext';
import { StartupError } from '../errors.js';

export interface DataDirLock {
  release(): void;
}

/**
 * An exclusive flock(2) on `file`, held through an open descriptor for the
 * life of the process. The kernel drops it when the descriptor closes, so a
 * killed (even not yet reaped) holder frees it at once, and no pid has to be
 * interpreted (a pid from another pid namespace means nothing here). Returns
 * null when another open file description holds it (this process included).
 */
export function tryLockFile(file: string, holder: string): DataDirLock | null {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    flockSync(fd, 'exnb');
  } catch (err) {
    fs.closeSync(fd);
    if (['EAGAIN', 'EWOULDBLOCK'].includes((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
  // Who holds it, for the refusal message only; the lock itself is the flock.
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid} ${holder}\n`, 0);
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      // Never unlink: a waiter may already hold the open file, and a new file would be a second lock.
      fs.ftruncateSync(fd, 0);
      fs.closeSync(fd);
    },
  };
}

/**
 * One process at a time may own the data dir for work that must not overlap
 * (the server, key rotation, migrations).
 */
export function lockDataDir(dataDir: string, owner: string): DataDirLock {
  const file = path.join(dataDir, 'nexus.lock');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = tryLockFile(file, owner);
  if (lock) return lock;
  // The holder writes its name just after it locks: give it a moment to land.
  let text = '';
  for (let i = 0; i < 10 && !(text = fs.readFileSync(file, 'utf8').trim()); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  const [pid, holder] = text.split(' ');
  const who = holder ? `${holder} (pid ${pid})` : 'another process';
  throw new StartupError(`the data dir ${dataDir} is in use by ${who}; stop it first`);
}

/** An exclusive flock on `file`, waiting for it: for short critical sections (a script appending to its trail). */
export function holdLock(file: string): DataDirLock {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    flockSync(fd, 'ex');
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { release: () => fs.closeSync(fd) };
}
