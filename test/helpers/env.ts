import { spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config, type Env } from '../../nexus/config/index.js';
import { openCore, type Core } from '../../nexus/core.js';
import { silentLogger, type Logger } from '../../nexus/log.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function tempDir(label = 'nexus-test'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
}

/** The env a test server or script runs with: everything under `dataDir`. */
export function testEnv(dataDir: string, extra: Env = {}): Env {
  return { NEXUS_DATA_DIR: dataDir, NEXUS_LOG_LEVEL: 'fatal', ...extra };
}

export function testConfig(dataDir: string, extra: Env = {}): Config {
  return loadConfig(testEnv(dataDir, extra));
}

export async function openTestCore(dataDir: string, extra: Env = {}, log: Logger = silentLogger()): Promise<Core> {
  return openCore(testConfig(dataDir, extra), log);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs one of the package's bins (scripts/bin/NAME.js) with `env` added to a clean environment. */
export function runBin(name: string, args: string[], env: Env, opts: SpawnOptions & { input?: string } = {}): Promise<RunResult> {
  return runNode([path.join(ROOT, 'scripts/bin', `${name}.js`), ...args], env, opts);
}

/** Runs `node args` (`opts.node`: another Node binary than this one) with `env` added to a clean environment. */
export function runNode(args: string[], env: Env, opts: SpawnOptions & { input?: string; node?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.node ?? process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...opts,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin!.end(opts.input ?? '');
  });
}

/** Every byte of the db, its WAL and shm, for searching for plaintext. */
export function dbBytes(dbFile: string): Buffer {
  return Buffer.concat(
    [dbFile, `${dbFile}-wal`, `${dbFile}-shm`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)),
  );
}
