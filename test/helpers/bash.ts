import { spawn } from 'node:child_process';
import path from 'node:path';

/** What a job's shell finds: node, and the base system (curl, sha256sum); no npx, no repository, no node_modules. */
export const JOB_PATH = `${path.dirname(process.execPath)}:/usr/bin:/bin`;

/** A bash step in `cwd`, as a runner runs `run:` / `script:` lines; resolves with the job log. */
export function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', '-c', script], { cwd, env: { PATH: JOB_PATH, HOME: cwd, ...env } });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, log }));
  });
}
