import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

const childEnv = (env: Env) => ({ PATH: process.env.PATH, HOME: process.env.HOME, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', ...env, NEXUS_LOG_LEVEL: 'info' }) as NodeJS.ProcessEnv;

/** Starts the real `nexus` bin (or `bin`, e.g. a compiled one) and waits for its "listening" log line (so it logs at info). */
export function spawnServer(env: Env, bin = path.join(ROOT, 'scripts/bin/nexus.js')): Promise<ServerProcess> {
  const child = spawn(process.execPath, [bin], {
    cwd: ROOT,
    env: childEnv(env),
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

export interface LoggingServerProcess {
  child: ChildProcess;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the real `nexus` bin with its stdout and stderr appended to
 * `logFile` itself (a file, as under systemd's `StandardOutput=append:`), not
 * a pipe: the server log then shares that file's disk. Waits for the
 * "listening" line it appends.
 */
export async function spawnServerLoggingTo(env: Env, logFile: string): Promise<LoggingServerProcess> {
  const fd = fs.openSync(logFile, 'a');
  const from = fs.fstatSync(fd).size;
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/bin/nexus.js')], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const out = fs.readFileSync(logFile).subarray(from).toString('utf8');
    const m = /"port":"mtls","addr":"[^"]*:(\d+)"/.exec(out);
    if (m) return { child, port: Number(m[1]), exited };
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before listening: ${out}`);
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`server did not start: ${fs.readFileSync(logFile, 'utf8')}`);
}
