import fs from 'node:fs';

/** SQLite may leave these beside a database file. */
const COMPANIONS = ['', '-wal', '-shm', '-journal'];

function removeAll(file: string): void {
  for (const suffix of COMPANIONS) fs.rmSync(`${file}${suffix}`, { force: true });
}

/**
 * Runs `fn` with a temporary file created empty with mode 0600 (so its
 * content is never readable by others, not even for a moment), removed if
 * `fn` fails or the process is interrupted (SIGINT, SIGTERM, SIGHUP).
 * `fn` renames it into place when it is complete.
 */
export async function withTempFile<T>(tmp: string, fn: (tmp: string) => Promise<T>): Promise<T> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (signal: NodeJS.Signals) => {
    removeAll(tmp);
    process.stderr.write(`interrupted (${signal}): removed ${tmp}\n`);
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
  };
  // Handlers first: a signal that lands between creating the file and
  // installing them would kill the process with the default action and leave it.
  for (const s of signals) process.once(s, onSignal);
  let created = false;
  try {
    fs.closeSync(fs.openSync(tmp, 'wx', 0o600));
    created = true;
    return await fn(tmp);
  } catch (err) {
    if (created) removeAll(tmp);
    throw err;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
