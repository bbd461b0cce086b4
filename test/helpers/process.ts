import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import type { Env } from '../../nexus/config/index.js';
import { ROOT } from './env.js';

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  port: number;
  /** The OIDC port, when NEXUS_OIDC_ADDR enables it. */
  oidcPort: number | null;
  logs(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the real `nexus` bin (or `bin`, e.g. a compiled one) and waits for its "listening" log line (so it logs at info). */
export function spawnServer(env: Env, bin = path.join(ROOT, 'scripts/bin/nexus.js')): Promise<ServerProcess> {
  const child = spawn(process.execPath, [bin], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', ...env, NEXUS_LOG_LEVEL: 'info' } as NodeJS.ProcessEnv,
  });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /"port":"mtls","addr":"[^"]*:(\d+)"/.exec(out);
      const o = /"port":"oidc","addr":"[^"]*:(\d+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), oidcPort: o ? Number(o[1]) : null, logs: () => out, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening: ${out}`));
    });
  });
}
