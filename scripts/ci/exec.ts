// nexus-ci exec's command: run with the values in its environment only, and
// handed the signals a job gets, so that nexus-ci outlives it to give the
// token back (nexus-ci.ts does that once run() resolves).
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { Resolved } from './fetch.js';

/**
 * Signals meant for the job (GitLab's cancel, Ctrl-C, a runner's shutdown):
 * caught from the start of an exec, so that one arriving while the secrets
 * are read still ends in a revocation, then passed to the command once it runs.
 */
export class Relay {
  private child: ChildProcess | undefined;
  private pending: NodeJS.Signals | undefined;

  constructor() {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => (this.child ? this.child.kill(sig) : (this.pending ??= sig)));
  }

  /** A signal that came before the command could start: the exit code it means (128 + its number), for a command that never ran. */
  early(): number | undefined {
    return this.pending && statusOf(this.pending);
  }

  /** Runs the command with `values` in its environment only; its exit code, or 128 + the signal that ended it. */
  run(command: string[], values: Resolved[]): Promise<number> {
    const env = { ...process.env, ...Object.fromEntries(values.map((v) => [v.name, v.value])) };
    return new Promise((resolve) => {
      const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
      this.child = child;
      child.on('error', (err) => {
        process.stderr.write(`nexus-ci: cannot run ${command[0]}: ${err.message}\n`);
        resolve(127);
      });
      child.on('close', (code, signal) => resolve(code ?? (signal ? statusOf(signal) : 128)));
    });
  }
}


/** As a shell reports a process a signal ended: 128 + the signal's number. */
function statusOf(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}
